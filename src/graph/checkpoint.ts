import { PulmoError, checkFinite } from "../runtime/index.ts";
import { readSafetensors, writeSafetensors, type TensorToWrite } from "../../weights/safetensors.ts";
import type { Module, HostArray } from "./module.ts";
import type { Optimizer } from "./optim.ts";
import type { Schedule } from "./schedule.ts";

/** Everything needed to resume training, in one safetensors file: model tensors under their
 * state-dict names, optimizer state under `optimizer.<param index>.<name>`, and the step count,
 * schedule state, epoch and config as JSON in `__metadata__`. */
export interface CheckpointParts {
  model: Module;
  optimizer?: Optimizer;
  schedule?: Schedule;
  epoch?: number;
  config?: unknown;
}

export async function checkpointBytes(parts: CheckpointParts): Promise<Uint8Array> {
  const tensors: Record<string, TensorToWrite> = {};
  for (const [k, t] of parts.model.stateDict()) tensors[k] = { shape: t.shape, data: await t.readFloat() };
  if (parts.optimizer)
    for (const [k, t] of parts.optimizer.state()) tensors[`optimizer.${k}`] = { shape: t.shape, data: await t.readFloat() };
  const metadata: Record<string, string> = {
    format: "pulmo-checkpoint-1",
    epoch: String(parts.epoch ?? 0),
  };
  if (parts.optimizer) metadata.optimizer_step = String(parts.optimizer.stepCount);
  if (parts.optimizer) metadata.optimizer_lr = String(parts.optimizer.lr);
  if (parts.schedule) metadata.schedule = JSON.stringify(parts.schedule.state());
  if (parts.config !== undefined) metadata.config = JSON.stringify(parts.config);
  return writeSafetensors(tensors, metadata);
}

/** Restores model, optimizer and schedule in place; returns the epoch and config stored. */
export function loadCheckpoint(bytes: Uint8Array, parts: CheckpointParts): { epoch: number; config: unknown } {
  const file = readSafetensors(bytes);
  const model = new Map<string, HostArray>();
  const optim = new Map<string, Float32Array>();
  for (const name of file.names) {
    const data = Float32Array.from(file.float32(name));
    checkFinite(data, `checkpoint tensor '${name}'`);
    if (name.startsWith("optimizer.")) optim.set(name.slice("optimizer.".length), data);
    else model.set(name, { data, shape: file.tensors.get(name)!.shape });
  }
  parts.model.loadStateDict(model, { strict: true });
  if (parts.optimizer) {
    if (file.metadata.optimizer_step === undefined) throw new PulmoError("checkpoint has no optimizer state");
    parts.optimizer.loadState(optim, Number(file.metadata.optimizer_step));
    if (file.metadata.optimizer_lr !== undefined) parts.optimizer.lr = Number(file.metadata.optimizer_lr);
  }
  if (parts.schedule && file.metadata.schedule) parts.schedule.loadState(JSON.parse(file.metadata.schedule));
  return { epoch: Number(file.metadata.epoch ?? 0), config: file.metadata.config ? JSON.parse(file.metadata.config) : undefined };
}
