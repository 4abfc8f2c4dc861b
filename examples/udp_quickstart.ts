// UDP: one datagram per package; the endpoint sees each sender and answers it with writePkg(pkg, { to }).
// Run: deno run -A examples/udp_quickstart.ts | bun examples/udp_quickstart.ts (Deno: add --unstable-net to use
// Deno.listenDatagram; without it node:dgram is used, no flag needed).
import { LengthFieldCodec, UdpClient, UdpEndpoint } from "../mod.ts";

const endpoint = new UdpEndpoint<Uint8Array>({ host: "127.0.0.1", port: 0 });
await endpoint.runEventLoop((session) => {
  session.setPkgHandler(new LengthFieldCodec());
  session.setEventListener({ onMessage: (s, pkg, from) => void s.writePkg(pkg.reverse(), { to: from! }) });
});

let answer!: (pkg: Uint8Array) => void;
const reply = new Promise<Uint8Array>((resolve) => (answer = resolve));
const client = new UdpClient<Uint8Array>({ host: "127.0.0.1", port: endpoint.port });
await client.runEventLoop((s) => {
  s.setPkgHandler(new LengthFieldCodec());
  s.setEventListener({ onMessage: (_s, pkg) => answer(pkg) });
});
await client.sessions[0].writePkg(new Uint8Array([1, 2, 3]));
console.log(`udp reply: ${(await reply).join(",")} via ${endpoint.driver}`);
await client.close();
await endpoint.close();
