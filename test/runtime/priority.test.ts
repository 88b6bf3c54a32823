import { getPriority } from "node:os";
import { describe, expect, it } from "vitest";
import { createDevice, deprioritizeMainThread, Tensor } from "../../src/node.ts";

// Dawn-node's completion polling busy-loops on the main thread; deprioritizeMainThread hands the
// cores to the driver's threads (src/platform/node.ts). It only lowers this test process's thread.
describe("deprioritizeMainThread", () => {
  it("lowers the calling thread's priority on Linux only, and the device keeps working", async () => {
    const d = await createDevice();
    const applied = deprioritizeMainThread();
    expect(applied).toBe(process.platform === "linux");
    if (applied) expect(getPriority()).toBe(19);
    const x = Tensor.from(d, [1, 2, 3, 4], [4]);
    expect([...(await x.read())]).toEqual([1, 2, 3, 4]);
    x.dispose();
  });
});
