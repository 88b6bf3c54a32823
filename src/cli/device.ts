// The device every `pulmo` command runs on.
import { createDevice, deprioritizeMainThread, type Device } from "../node.ts";

/** createDevice, then the main thread's priority lowered: Dawn-node polls for GPU completion in a
 * busy loop on this thread, which on a CPU adapter takes a core from the driver (src/platform/node.ts).
 * Only after the device exists, so the driver's threads keep the normal priority. */
export async function commandDevice(): Promise<Device> {
  const device = await createDevice();
  deprioritizeMainThread();
  return device;
}
