// `pulmo <command>`: the command table, `pulmo help [command]`, `--help` on each, and the exit codes
// (0 ok, 1 failure, 2 usage error).
import { PulmoError } from "../runtime/errors.ts";
import { formatHelp, parseArgs, UsageError, type Command } from "./args.ts";
import { checkGoldenCommand } from "./check_golden.ts";
import { benchCommand } from "./bench.ts";
import { segmentCommand } from "./segment.ts";
import { evaluateCommand } from "./evaluate.ts";
import { expandCommand } from "./expand.ts";
import { trainCommand } from "./train.ts";
import { demoCommand } from "./demo.ts";
import { phantomCommand } from "./phantom.ts";

/** Every command, in the order `pulmo help` lists them. Adding one: import it and add one line. */
export const COMMANDS: Command[] = [
  demoCommand,
  segmentCommand,
  evaluateCommand,
  expandCommand,
  trainCommand,
  phantomCommand,
  checkGoldenCommand,
  benchCommand,
];

export const EXIT = { ok: 0, failure: 1, usage: 2 } as const;

function overview(): string {
  const w = Math.max(...COMMANDS.map((c) => c.name.length)) + 2;
  return [
    "usage: pulmo <command> [options]     (pulmo help <command>, or pulmo <command> --help)",
    "",
    "commands:",
    ...COMMANDS.map((c) => `  ${c.name.padEnd(w)}${c.summary}`),
    "",
    "exit codes: 0 ok, 1 failure, 2 usage error",
  ].join("\n");
}

function find(name: string): Command | undefined {
  return COMMANDS.find((c) => c.name === name);
}

/** Runs one command's body on already-split words: parse, `--help`, run; usage mistakes → 2, our
 * own errors (PulmoError) → 1 with their message, anything else → 1 with its stack (a bug). */
export async function runCommand(c: Command, args: readonly string[]): Promise<number> {
  try {
    const parsed = parseArgs(c, args);
    if (parsed.help) {
      console.log(formatHelp(c));
      return EXIT.ok;
    }
    return await c.run(parsed);
  } catch (e) {
    if (e instanceof UsageError) {
      const msg = e.message.startsWith(`${c.name}: `) ? e.message : `${c.name}: ${e.message}`;
      console.error(`pulmo ${msg}\n(pulmo ${c.name} --help for usage)`);
      return EXIT.usage;
    }
    if (e instanceof PulmoError) console.error(`pulmo ${c.name}: ${e.message}`);
    else console.error(e);
    return EXIT.failure;
  }
}

export async function main(argv: readonly string[]): Promise<number> {
  const [cmd, ...args] = argv;
  if (cmd === undefined || cmd === "--help" || cmd === "-h") {
    console.log(overview());
    return cmd === undefined ? EXIT.usage : EXIT.ok;
  }
  if (cmd === "help") {
    if (args.length === 0) {
      console.log(overview());
      return EXIT.ok;
    }
    const c = find(args[0]!);
    if (!c) {
      console.error(`pulmo: unknown command ${JSON.stringify(args[0])}\n\n${overview()}`);
      return EXIT.usage;
    }
    console.log(formatHelp(c));
    return EXIT.ok;
  }
  const c = find(cmd);
  if (!c) {
    console.error(`pulmo: unknown command ${JSON.stringify(cmd)}\n\n${overview()}`);
    return EXIT.usage;
  }
  return runCommand(c, args);
}
