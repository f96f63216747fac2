// A tiny static server for e2e tests and screenshots: serves the built UI
// (ui/dist) and injects the mocked shell (e2e/.harness/harness.js) into
// index.html before the app's own script. Listens on 127.0.0.1, a free port.
import { createServer } from "node:http";
import { readFile } from "node:fs/promises";
import { extname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";

const ui = fileURLToPath(new URL("..", import.meta.url));
const TYPES = { ".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml", ".png": "image/png", ".ico": "image/x-icon" };

export async function startServer() {
  const server = createServer(async (req, res) => {
    const url = new URL(req.url, "http://x");
    try {
      if (url.pathname === "/__harness.js") {
        res.writeHead(200, { "content-type": "text/javascript" });
        return res.end(await readFile(join(ui, "e2e/.harness/harness.js")));
      }
      const rel = url.pathname === "/" ? "index.html" : normalize(url.pathname).replace(/^[/\\]+/, "");
      if (rel.startsWith("..")) throw new Error("outside");
      let body = await readFile(join(ui, "dist", rel));
      if (rel === "index.html") body = Buffer.from(String(body).replace("<script", '<script type="module" src="/__harness.js"></script>\n    <script'));
      res.writeHead(200, { "content-type": TYPES[extname(rel)] ?? "application/octet-stream" });
      res.end(body);
    } catch {
      res.writeHead(404); res.end("not found");
    }
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address();
  return { url: `http://127.0.0.1:${port}/`, close: () => new Promise((r) => server.close(r)) };
}
