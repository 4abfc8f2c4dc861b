// WebSocket: one message per package; text stays text, binary stays binary. Run:
// deno run -A examples/ws_quickstart.ts | bun examples/ws_quickstart.ts
import { WsClient, type WsMessage, WsServer } from "../mod.ts";

const server = new WsServer({ port: 0, path: "/ws" });
await server.runEventLoop((s) => s.setEventListener({ onMessage: (s, msg) => void s.writePkg(msg) }));

const replies: WsMessage[] = [];
const client = new WsClient({ url: server.url! });
await client.runEventLoop((s) => s.setEventListener({ onMessage: (_s, msg) => void replies.push(msg) }));
const [session] = client.sessions;
await session.writePkg("hello"); // a text message
await session.writePkg(new Uint8Array([1, 2, 3])); // a binary message
while (replies.length < 2) await new Promise((r) => setTimeout(r, 5));
console.log(`ws replies: ${JSON.stringify(replies[0])} (text), ${replies[1] instanceof Uint8Array} (binary)`);
await client.close();
await server.close();
