// TLS: the same Session API as TCP; the client verifies the server against a custom CA (always on).
// Run: deno run -A examples/tls_quickstart.ts | bun examples/tls_quickstart.ts
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { LineCodec, TcpClient, TcpServer } from "../mod.ts";

const pem = (name: string) =>
  readFileSync(fileURLToPath(new URL(`../tests/fixtures/tls/${name}`, import.meta.url).href), "utf8");

const server = new TcpServer<string>({ port: 0, tls: { cert: pem("leaf.crt"), key: pem("leaf.key") } });
await server.runEventLoop((s) => {
  s.setPkgHandler(new LineCodec());
  s.setEventListener({ onMessage: (s, line) => void s.writePkg(line.toUpperCase()) });
});

let answer!: (line: string) => void;
const reply = new Promise<string>((resolve) => (answer = resolve));
const client = new TcpClient<string>({ host: "localhost", port: server.port, tls: { caCerts: [pem("ca.crt")] } });
await client.runEventLoop((s) => {
  s.setPkgHandler(new LineCodec());
  s.setEventListener({ onMessage: (_s, line) => answer(line) });
});
await client.sessions[0].writePkg("hello over tls");
console.log(`tls reply: ${await reply}`);
await client.close();
await server.close();
