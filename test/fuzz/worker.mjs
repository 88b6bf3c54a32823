// Worker entry: registers tsx so the TypeScript worker (and the parsers) load in a worker thread.
import { register } from "tsx/esm/api";
register();
await import("./worker.ts");
