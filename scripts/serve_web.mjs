// `npm run serve:web [-- --port N]`: serves dist/web on 127.0.0.1 (a secure context, as WebGPU
// needs) with plain Node http. Also imported by the browser test (startServer).
import { createServer } from "node:http";
import { createReadStream, statSync } from "node:fs";
import { extname, join, normalize, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";

const MIME = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json",
  ".map": "application/json",
  ".wasm": "application/wasm",
  ".safetensors": "application/octet-stream",
  ".nii": "application/octet-stream",
  // served as the file it is (no Content-Encoding), so the page receives the gzip bytes themselves
  ".gz": "application/gzip",
  ".png": "image/png",
  ".svg": "image/svg+xml",
  ".ico": "image/x-icon",
};

export function contentType(path) {
  return MIME[extname(path).toLowerCase()] ?? "application/octet-stream";
}

/** Serves `root` on host:port (port 0 picks a free one); resolves to { url, close }. */
export function startServer({ root, port = 8080, host = "127.0.0.1" }) {
  const base = resolve(root);
  const server = createServer((req, res) => {
    const send = (code, text) => {
      res.writeHead(code, { "content-type": "text/plain; charset=utf-8" });
      res.end(text);
    };
    if (req.method !== "GET" && req.method !== "HEAD") return send(405, "method not allowed");
    let path;
    try {
      path = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname);
    } catch {
      return send(400, "bad path");
    }
    let file = normalize(join(base, path));
    if (file !== base && !file.startsWith(base + sep)) return send(403, "outside the served folder");
    let st;
    try {
      st = statSync(file);
      if (st.isDirectory()) st = statSync((file = join(file, "index.html")));
    } catch {
      return send(404, `not found: ${path}`);
    }
    res.writeHead(200, { "content-type": contentType(file), "content-length": st.size, "cache-control": "no-cache" });
    if (req.method === "HEAD") return res.end();
    createReadStream(file).on("error", () => res.destroy()).pipe(res);
  });
  return new Promise((ok, fail) => {
    server.once("error", fail);
    server.listen(port, host, () => {
      const { port: p } = server.address();
      ok({ url: `http://${host}:${p}/`, close: () => new Promise((r) => server.close(() => r())) });
    });
  });
}

function portArg(argv) {
  const i = argv.indexOf("--port");
  const raw = i >= 0 ? argv[i + 1] : (argv.find((a) => a.startsWith("--port="))?.slice(7) ?? process.env.PORT ?? "8080");
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0 || n > 65535) {
    console.error(`serve:web: bad port '${raw}' (use --port N or PORT=N, 0-65535)`);
    process.exit(2);
  }
  return n;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const root = join(fileURLToPath(new URL("..", import.meta.url)), "dist", "web");
  try {
    statSync(join(root, "index.html"));
  } catch {
    console.error("serve:web: dist/web/index.html missing; run `npm run build:web` first");
    process.exit(2);
  }
  const { url } = await startServer({ root, port: portArg(process.argv.slice(2)) });
  console.log(`serving dist/web at ${url}`);
}
