// The one argument parser of the `pulmo` commands: `--name value`, `--name=value`, boolean flags,
// repeatable list flags, positional arguments, `--` to end the flags, `--help`/`-h`. Every mistake is
// a UsageError naming the flag (exit code 2); help text is generated from the same spec.
import { PulmoError } from "../runtime/errors.ts";

/** A mistake in how a command was called: exit code 2, and the message says which flag or argument. */
export class UsageError extends PulmoError {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

export interface FlagSpec {
  /** string; number (finite); int (safe integer); boolean (no value, or `=true`/`=false`);
   * list (repeatable string, in the order given) */
  type: "string" | "number" | "int" | "boolean" | "list";
  help: string;
  /** placeholder in the help text (default FILE/N/X/VALUE by type) */
  value?: string;
  default?: string | number | boolean;
  /** inclusive bounds for number/int */
  min?: number;
  max?: number;
  /** exclusive upper bound for number */
  below?: number;
  choices?: readonly string[];
  /** a short alias such as "-o" */
  alias?: string;
}

export interface PositionalSpec {
  name: string;
  help: string;
  /** least and most positional arguments (default 0 and 0) */
  min?: number;
  max?: number;
}

/** A `pulmo` sub-command: its flags, its help text and its body. */
export interface Command {
  name: string;
  /** one line for `pulmo help` */
  summary: string;
  /** e.g. "pulmo segment INPUT [options]" */
  usage: string;
  /** paragraphs after the usage line */
  description?: string;
  flags: Record<string, FlagSpec>;
  positionals?: PositionalSpec;
  examples?: string[];
  /** returns the exit code (0 ok, 1 failure); throws UsageError for usage mistakes */
  run(args: ParsedArgs): Promise<number>;
}

type Value = string | number | boolean | string[];

/** The parsed command line with typed getters that know the spec (asking for an undeclared flag is a bug). */
export class ParsedArgs {
  constructor(
    readonly command: Pick<Command, "name" | "flags">,
    readonly values: ReadonlyMap<string, Value>,
    readonly positionals: readonly string[],
    readonly help: boolean,
  ) {}

  private get(name: string, type: FlagSpec["type"][]): Value | undefined {
    const spec = this.command.flags[name];
    if (!spec || !type.includes(spec.type)) throw new Error(`internal: ${this.command.name} reads --${name} as ${type.join("/")}`);
    return this.values.get(name) ?? spec.default;
  }

  /** true when the flag was given on the command line (not just defaulted) */
  has(name: string): boolean {
    return this.values.has(name);
  }

  str(name: string): string | undefined {
    return this.get(name, ["string"]) as string | undefined;
  }

  /** a string flag that must be given */
  need(name: string): string {
    const v = this.str(name);
    if (v === undefined) throw new UsageError(`${this.command.name}: --${name} is required`);
    return v;
  }

  num(name: string): number | undefined {
    return this.get(name, ["number", "int"]) as number | undefined;
  }

  /** a number flag that must be given (or has a default) */
  needNum(name: string): number {
    const v = this.num(name);
    if (v === undefined) throw new UsageError(`${this.command.name}: --${name} is required`);
    return v;
  }

  bool(name: string): boolean {
    return Boolean(this.get(name, ["boolean"]));
  }

  list(name: string): string[] {
    return (this.get(name, ["list"]) as string[] | undefined) ?? [];
  }
}

const PLACEHOLDER: Record<FlagSpec["type"], string> = { string: "VALUE", number: "X", int: "N", boolean: "", list: "VALUE" };

function convert(cmd: string, name: string, spec: FlagSpec, raw: string): Value {
  const bad = (what: string): never => {
    throw new UsageError(`${cmd}: --${name} ${what}, got ${JSON.stringify(raw)}`);
  };
  switch (spec.type) {
    case "boolean":
      if (raw === "true" || raw === "1") return true;
      if (raw === "false" || raw === "0") return false;
      return bad("takes no value (or =true / =false)");
    case "number":
    case "int": {
      const v = raw.trim() === "" ? NaN : Number(raw);
      if (!Number.isFinite(v)) bad(`must be a ${spec.type === "int" ? "whole " : ""}number`);
      if (spec.type === "int" && !Number.isSafeInteger(v)) bad("must be a whole number");
      const range = `${spec.min ?? "-∞"}, ${spec.below !== undefined ? `${spec.below})` : `${spec.max ?? "∞"}]`}`;
      if ((spec.min !== undefined && v < spec.min) || (spec.max !== undefined && v > spec.max) || (spec.below !== undefined && v >= spec.below))
        bad(`must be in [${range}`);
      return v;
    }
    default:
      if (spec.choices && !spec.choices.includes(raw)) bad(`must be one of ${spec.choices.join(", ")}`);
      return raw;
  }
}

/** Parses `argv` (the words after the command name) against the command's spec. */
export function parseArgs(command: Pick<Command, "name" | "flags" | "positionals">, argv: readonly string[]): ParsedArgs {
  const cmd = command.name;
  const flags = command.flags;
  const aliases = new Map(Object.entries(flags).flatMap(([n, s]) => (s.alias ? [[s.alias, n] as const] : [])));
  const values = new Map<string, Value>();
  const positionals: string[] = [];
  let help = false;
  let flagsDone = false;
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i]!;
    if (flagsDone || !word.startsWith("-") || word === "-" || /^-\d/.test(word)) {
      positionals.push(word);
      continue;
    }
    if (word === "--") {
      flagsDone = true;
      continue;
    }
    if (word === "--help" || word === "-h") {
      help = true;
      continue;
    }
    const eq = word.indexOf("=");
    const key = eq >= 0 ? word.slice(0, eq) : word;
    const name = key.startsWith("--") ? key.slice(2) : aliases.get(key);
    const spec = name !== undefined ? flags[name] : undefined;
    if (name === undefined || !spec) {
      const known = Object.keys(flags).map((f) => `--${f}`);
      throw new UsageError(`${cmd}: unknown option ${key}${known.length ? ` (known: ${known.join(", ")}, --help)` : " (this command takes no options)"}`);
    }
    let raw: string | undefined = eq >= 0 ? word.slice(eq + 1) : undefined;
    if (raw === undefined && spec.type !== "boolean") {
      const next = argv[i + 1];
      // A following "--flag" is a missing value, but "-3" is a negative number.
      if (next === undefined || (next.startsWith("--") && next.length > 2) || (next.startsWith("-") && !/^-[\d.]/.test(next) && next !== "-"))
        throw new UsageError(`${cmd}: --${name} needs a value`);
      raw = next;
      i++;
    }
    const v = raw === undefined ? true : convert(cmd, name, spec, raw);
    if (spec.type === "list") values.set(name, [...((values.get(name) as string[] | undefined) ?? []), v as string]);
    else {
      if (values.has(name)) throw new UsageError(`${cmd}: --${name} given twice`);
      values.set(name, v);
    }
  }
  if (!help) {
    const p = command.positionals;
    const min = p?.min ?? 0,
      max = p?.max ?? 0;
    if (positionals.length < min) throw new UsageError(`${cmd}: missing ${p!.name}${min > 1 ? ` (at least ${min})` : ""}`);
    if (positionals.length > max)
      throw new UsageError(
        max === 0 ? `${cmd}: unexpected argument ${JSON.stringify(positionals[0])}` : `${cmd}: too many arguments (${positionals.length}, at most ${max}): ${positionals.join(" ")}`,
      );
  }
  return new ParsedArgs(command, values, positionals, help);
}

/** The `--help` text of a command, generated from its spec. */
export function formatHelp(c: Command): string {
  const lines = [`usage: ${c.usage}`, "", c.summary];
  if (c.description) lines.push("", c.description);
  if (c.positionals) lines.push("", "arguments:", `  ${c.positionals.name.padEnd(26)} ${c.positionals.help}`);
  const entries = Object.entries(c.flags);
  lines.push("", "options:");
  for (const [name, s] of entries) {
    const ph = s.type === "boolean" ? "" : ` ${s.value ?? PLACEHOLDER[s.type]}`;
    const left = `${s.alias ? `${s.alias}, ` : ""}--${name}${ph}`;
    const extra = [
      s.choices ? `one of ${s.choices.join(", ")}` : "",
      s.type === "list" ? "repeatable" : "",
      s.default !== undefined && s.type !== "boolean" ? `default ${typeof s.default === "number" ? +s.default.toPrecision(4) : s.default}` : "",
    ].filter(Boolean);
    lines.push(`  ${left.padEnd(26)} ${s.help}${extra.length ? ` (${extra.join("; ")})` : ""}`);
  }
  lines.push(`  ${"-h, --help".padEnd(26)} this help`);
  if (c.examples?.length) lines.push("", "examples:", ...c.examples.map((e) => `  ${e}`));
  lines.push("", "exit codes: 0 ok, 1 failure, 2 usage error");
  return lines.join("\n");
}
