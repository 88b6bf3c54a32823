import { PulmoError } from "../runtime/errors.ts";
import { checkGolden } from "./check_golden.ts";

const COMMANDS: Record<string, { run: (args: string[]) => Promise<number>; help: string }> = {
  "check-golden": { run: checkGolden, help: "check-golden DIR...   run every golden case (op or whole model) in each DIR on the GPU" },
};

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...args] = argv;
  const c = cmd ? COMMANDS[cmd] : undefined;
  if (!c) {
    console.log(`usage: pulmo <command>\n${Object.values(COMMANDS).map((c) => `  ${c.help}`).join("\n")}`);
    return cmd && cmd !== "help" && cmd !== "--help" ? 2 : 0;
  }
  try {
    return await c.run(args);
  } catch (e) {
    // Our own errors are the message a user needs; anything else is a bug worth its stack.
    if (e instanceof PulmoError) console.error(`pulmo: ${e.message}`);
    else console.error(e);
    return 1;
  }
}
