import { describe, expect, it } from "vitest";
import { formatHelp, parseArgs, UsageError, type Command } from "../../src/cli/args.ts";
import { progressBar } from "../../src/cli/progress.ts";

const cmd: Command = {
  name: "demo-cmd",
  summary: "a command for the parser tests",
  usage: "pulmo demo-cmd IN [options]",
  flags: {
    out: { type: "string", help: "output", alias: "-o" },
    overlap: { type: "number", min: 0, below: 1, default: 0.5, help: "overlap" },
    batch: { type: "int", min: 1, default: 1, help: "batch" },
    mirror: { type: "boolean", help: "mirror" },
    oar: { type: "list", help: "OAR" },
    mode: { type: "string", choices: ["a", "b"], help: "mode" },
    shift: { type: "number", help: "may be negative" },
  },
  positionals: { name: "IN", help: "input", min: 1, max: 2 },
  run: async () => 0,
};

const usage = (argv: string[]) => {
  try {
    parseArgs(cmd, argv);
  } catch (e) {
    expect(e).toBeInstanceOf(UsageError);
    return (e as Error).message;
  }
  throw new Error(`no usage error for ${argv.join(" ")}`);
};

describe("parseArgs", () => {
  it("reads --name value, --name=value, aliases, booleans, lists, positionals and defaults", () => {
    const a = parseArgs(cmd, ["in.nii", "--out", "o.nii", "--overlap=0.25", "--mirror", "--oar", "heart=h.nii", "--oar=eso=e.nii", "--shift", "-3.5", "x"]);
    expect(a.positionals).toEqual(["in.nii", "x"]);
    expect(a.str("out")).toBe("o.nii");
    expect(a.num("overlap")).toBe(0.25);
    expect(a.num("batch")).toBe(1);
    expect(a.has("batch")).toBe(false);
    expect(a.bool("mirror")).toBe(true);
    expect(a.list("oar")).toEqual(["heart=h.nii", "eso=e.nii"]);
    expect(a.num("shift")).toBe(-3.5);
    expect(parseArgs(cmd, ["i", "-o", "p"]).str("out")).toBe("p");
    expect(parseArgs(cmd, ["i", "--mirror=false"]).bool("mirror")).toBe(false);
    expect(parseArgs(cmd, ["--", "--weird-name"]).positionals).toEqual(["--weird-name"]);
  });

  it("names the flag in every usage error", () => {
    expect(usage(["i", "--bogus", "1"])).toMatch(/unknown option --bogus .*--out/);
    expect(usage(["i", "--overlap", "abc"])).toMatch(/--overlap must be a number, got "abc"/);
    expect(usage(["i", "--overlap", "1"])).toMatch(/--overlap must be in \[0, 1\)/);
    expect(usage(["i", "--batch", "1.5"])).toMatch(/--batch must be a whole number/);
    expect(usage(["i", "--batch", "0"])).toMatch(/--batch must be in \[1, ∞\]/);
    expect(usage(["i", "--out"])).toMatch(/--out needs a value/);
    expect(usage(["i", "--out", "--mirror"])).toMatch(/--out needs a value/);
    expect(usage(["i", "--mode", "c"])).toMatch(/--mode must be one of a, b/);
    expect(usage(["i", "--mirror=yes"])).toMatch(/--mirror takes no value/);
    expect(usage(["i", "--out", "a", "--out", "b"])).toMatch(/--out given twice/);
    expect(usage([])).toMatch(/missing IN/);
    expect(usage(["a", "b", "c"])).toMatch(/too many arguments/);
    expect(() => parseArgs(cmd, ["i"]).need("out")).toThrow(/--out is required/);
  });

  it("--help skips the positional checks, and the help text lists every flag", () => {
    expect(parseArgs(cmd, ["--help"]).help).toBe(true);
    expect(parseArgs(cmd, ["-h"]).help).toBe(true);
    const h = formatHelp(cmd);
    for (const f of Object.keys(cmd.flags)) expect(h).toContain(`--${f}`);
    expect(h).toContain("default 0.5");
    expect(h).toContain("exit codes: 0 ok, 1 failure, 2 usage error");
  });
});

describe("progressBar", () => {
  it("redraws in place on a TTY and writes plain lines without control characters otherwise", () => {
    const tty: string[] = [];
    const b = progressBar("seg", 4, { stream: { write: (s: string) => tty.push(s) }, tty: true });
    b.update(2);
    b.finish("done");
    expect(tty[0]).toMatch(/^\r.*seg \[#{12}\.{12}\] 2\/4/);
    expect(tty.at(-1)).toMatch(/done\x1b\[K\n$/);
    const plain: string[] = [];
    const p = progressBar("seg", 4, { stream: { write: (s: string) => plain.push(s) }, tty: false, plainInterval: 60_000 });
    p.update(1);
    p.update(2);
    p.finish("ok");
    expect(plain).toHaveLength(1);
    expect(plain[0]).toMatch(/^seg \[.*\] 2\/4 .* ok\n$/);
    expect(plain.join("")).not.toMatch(/[\r\x1b]/);
  });
});
