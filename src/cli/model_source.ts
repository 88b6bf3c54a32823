// Where `segment` and `train` get their network: a plain PyTorch state dict (safetensors) with
// --model NAME --config JSON, built from the registry and loaded strictly.
import { existsSync, readFileSync } from "node:fs";
import { PulmoError } from "../runtime/errors.ts";
import type { Device } from "../runtime/device.ts";
import { buildModel, MODELS, type SegmentationNet } from "../models/index.ts";
import { UsageError } from "./args.ts";
import { readInput } from "./files.ts";

/** `--config` as inline JSON (starting with "{") or a path to a JSON file; absent → {} (paper values). */
export function parseConfig(raw: string | undefined): Record<string, unknown> {
  if (raw === undefined) return {};
  let text = raw;
  if (!raw.trimStart().startsWith("{")) {
    if (!existsSync(raw)) throw new UsageError(`--config ${raw}: neither JSON (starting with "{") nor an existing file`);
    text = readFileSync(raw, "utf8");
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new UsageError(`--config ${raw === text ? "" : `${raw} `}is not valid JSON (${(e as Error).message})`);
  }
  if (!v || typeof v !== "object" || Array.isArray(v)) throw new UsageError(`--config must be a JSON object, got ${JSON.stringify(v)}`);
  return v as Record<string, unknown>;
}

export function checkModelName(name: string): void {
  if (!(name in MODELS)) throw new UsageError(`--model ${name}: unknown model (known: ${Object.keys(MODELS).join(", ")})`);
}

/** A loadStateDict failure, shortened to the first few problems (a wrong file lists hundreds). */
function shorten(message: string, keep = 4): string {
  const m = /^loadStateDict: (\d+) problem\(s\): (.*)$/s.exec(message);
  if (!m) return message;
  const parts = m[2]!.split("; ");
  return `${m[1]} problem(s): ${parts.slice(0, keep).join("; ")}${parts.length > keep ? `; … and ${parts.length - keep} more` : ""}`;
}

/** Builds `model` with `config` and loads the state dict in `weightsPath` strictly; a file for
 * another model (or another config) is a PulmoError naming both. */
export function loadStateDictModel(device: Device, model: string, config: Record<string, unknown>, weightsPath: string | undefined): SegmentationNet {
  checkModelName(model);
  const bytes = weightsPath === undefined ? undefined : readInput(weightsPath, "weights");
  const net = buildModel(device, model, config);
  if (bytes) {
    try {
      net.loadSafetensors(bytes, { strict: true });
    } catch (e) {
      net.dispose();
      if (!(e instanceof PulmoError)) throw e;
      throw new PulmoError(`weights ${weightsPath} do not fit model '${model}' with config ${JSON.stringify(config)}: ${shorten(e.message)}`);
    }
  }
  return net;
}
