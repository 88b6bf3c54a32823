import type { Device } from "../runtime/index.ts";
import { readSafetensors } from "../../weights/safetensors.ts";
import { PulmoError } from "../runtime/errors.ts";
import { parseCase, runCase, type CaseResult } from "./runner.ts";
import { runModelCase } from "./model_runner.ts";

/** Runs one golden file, op case or whole-model case (told apart by a `model` key in its metadata). */
export async function runGoldenFile(device: Device, name: string, bytes: Uint8Array): Promise<CaseResult> {
  const file = readSafetensors(bytes);
  const raw = file.metadata.case;
  if (!raw) throw new PulmoError(`${name}: no __metadata__.case`);
  const meta = JSON.parse(raw);
  if (typeof meta.model === "string") return runModelCase(device, { name, meta, file });
  return runCase(device, parseCase(name, bytes));
}
