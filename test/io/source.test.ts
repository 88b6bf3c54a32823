import { describe, expect, it } from "vitest";
import { createServer } from "node:http";
import { readBytes } from "../../src/io/source.ts";
import { PulmoError } from "../../src/runtime/errors.ts";

describe("readBytes", () => {
  const bytes = new Uint8Array([1, 2, 3, 250]);
  it("takes Uint8Array, ArrayBuffer, other views and Blobs", async () => {
    expect(await readBytes(bytes)).toBe(bytes);
    expect([...(await readBytes(bytes.buffer))]).toEqual([1, 2, 3, 250]);
    expect([...(await readBytes(new DataView(bytes.buffer, 1, 2)))]).toEqual([2, 3]);
    expect([...(await readBytes(new Blob([bytes])))]).toEqual([1, 2, 3, 250]);
  });
  it("fetches URLs and names HTTP failures and bad inputs", async () => {
    const server = createServer((req, res) => {
      if (req.url === "/w") res.end(Buffer.from(bytes));
      else {
        res.statusCode = 404;
        res.end();
      }
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const base = `http://127.0.0.1:${(server.address() as any).port}`;
    try {
      expect([...(await readBytes(`${base}/w`))]).toEqual([1, 2, 3, 250]);
      expect([...(await readBytes(new URL(`${base}/w`)))]).toEqual([1, 2, 3, 250]);
      await expect(readBytes(`${base}/missing`, "weights")).rejects.toThrow(/weights: fetching .*missing gave HTTP 404/);
      await expect(readBytes("not a url/at all.safetensors")).rejects.toThrow(PulmoError);
      await expect(readBytes(42 as any)).rejects.toThrow(/expected a File, Blob, ArrayBuffer/);
    } finally {
      server.close();
    }
  });
});
