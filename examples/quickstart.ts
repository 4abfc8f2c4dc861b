// A JSON request/response service over TCP: a custom codec on top of the length-field codec, a server, a
// client pool, awaited writes and a graceful shutdown. Run: deno run -A examples/quickstart.ts | bun examples/quickstart.ts
import { type Codec, LengthFieldCodec, type Session, TcpClient, TcpServer } from "../mod.ts";

type Msg = { op: string; n: number };

/** JSON packages framed by a 4-byte big-endian length. */
class JsonCodec implements Codec<Msg> {
  #frame = new LengthFieldCodec({ maxFrameLength: 64 * 1024 });
  read(_s: Session<Msg> | undefined, data: Uint8Array) {
    const r = this.#frame.read(undefined, data);
    if (r === undefined || !("pkg" in r)) return r; // need more, or a declared length
    return { pkg: JSON.parse(new TextDecoder().decode(r.pkg)) as Msg, length: r.length };
  }
  write(_s: Session<Msg> | undefined, msg: Msg) {
    return this.#frame.write(undefined, new TextEncoder().encode(JSON.stringify(msg)));
  }
}

const server = new TcpServer<Msg>({ host: "127.0.0.1", port: 0 });
await server.runEventLoop((session) => {
  session.setPkgHandler(new JsonCodec());
  session.setEventListener({
    onMessage: (s, msg) => void s.writePkg({ op: "square", n: msg.n * msg.n }),
  });
});

const answers: number[] = [];
const client = new TcpClient<Msg>({ host: "127.0.0.1", port: server.port, connectionNumber: 2 });
await client.runEventLoop((session) => {
  session.setPkgHandler(new JsonCodec());
  session.setEventListener({ onMessage: (_s, msg) => void answers.push(msg.n) });
});

const [session] = client.sessions;
const { total, sent } = await session.writePkg({ op: "square", n: 7 }); // resolves once handed to the socket
console.log(`sent ${sent}/${total} bytes`);
while (answers.length === 0) await new Promise((r) => setTimeout(r, 5));
console.log(`7 squared is ${answers[0]}; ${session.stat()}`);

await client.close();
await server.close(); // flushes and closes every live session
