// Fault injection over real TCP and TLS sockets (loopback, port 0): peers that reset or FIN mid-package,
// slow-loris peers, peers that stop reading, a server restart under a client pool, server.close() under load,
// and application callbacks that throw. Every error provoked is checked for its stable `code`, and the codes
// seen are tallied: the last test of the file checks that each stream-transport code was met.
//
// WebSocket: the same scenarios over WS and WSS are in tests/reliability_ws.test.ts.
import assert from "node:assert/strict";
import net from "node:net";
import { after, describe, it } from "node:test";
import {
  type CloseInfo,
  ConnectError,
  EndpointClosedError,
  type GettyError,
  InvalidOptionError,
  type Session,
  setLogger,
  TcpClient,
  type TcpClientOptions,
  TcpServer,
} from "../mod.ts";
import {
  collectingClient,
  concatBytes,
  frame4,
  lengthCodec,
  recordingServer,
  sessionOf,
  type StreamTarget,
  streamTargets,
} from "./helpers/faults.ts";
import {
  closeUnderLoad,
  codeTally,
  resetMidPackage,
  restartUnderPool,
  slowLoris,
  stoppedReader,
  streamFault,
  throwingCallbacks,
  throwingHandlers,
} from "./helpers/fault_scenarios.ts";
import { current } from "./helpers/runtimes.ts";
import { assertNoLeaks, bytes, pattern, sleep, text, waitFor, within } from "./helpers/util.ts";

const T = { timeout: 30_000 };
/** The typed-error check; it tallies the codes met, for the inventory at the end. */
const { code, assertMet } = codeTally();

/** Starts a healthy echo client on `port` and returns its session and inbox. */
async function healthyClient(target: StreamTarget, port: number, options: Partial<TcpClientOptions> = {}) {
  const c = await collectingClient(target, port, options);
  const session = c.client.sessions[0];
  return { ...c, session, inbox: c.got.get(session)! };
}

/** How a connection ended when the peer vanished: a clean peer close, or ERR_CONNECTION. Returns a label. */
function peerGone(info: CloseInfo | undefined): string {
  assert.ok(info, "closed");
  if (info.error) {
    assert.equal(info.initiator, "error");
    code(info.error, ["ERR_CONNECTION"]);
    return `error ${info.error.code}`;
  }
  assert.equal(info.initiator, "peer");
  return "peer close";
}

for (const target of streamTargets()) {
  const fault = streamFault(target);

  describe(`faults over ${target.name} (${current})`, T, () => {
    after(assertNoLeaks);

    it(
      "peer reset mid-package: the half frame is never delivered, the session ends typed, others live",
      T,
      () => resetMidPackage(fault, frame4(pattern(1000, 1)).subarray(0, 500), (rec) => peerGone(rec.info)),
    );

    it(
      "a write to a peer that reset fails with ERR_CONNECTION (session not reading, so it cannot see EOF)",
      T,
      async () => {
        let release!: () => void;
        const blocked = new Promise<void>((r) => (release = r));
        const records: Array<{ session: Session<Uint8Array>; info?: CloseInfo; errors: GettyError[] }> = [];
        const server = new TcpServer<Uint8Array>({ port: 0, ...target.server(), session: { inboundQueueLimit: 1 } });
        await server.runEventLoop((session) => {
          const rec: (typeof records)[number] = { session, errors: [] };
          records.push(rec);
          session.setPkgHandler(lengthCodec);
          session.setEventListener({
            onMessage: () => blocked, // never returns until released: the session stops reading
            onError: (_s, e) => void rec.errors.push(e),
            onClose: (_s, info) => void (rec.info = info),
          });
        });
        const raw = await target.raw(server.port);
        const rec = await sessionOf(records, raw);
        await raw.write(concatBytes([frame4(bytes("1")), frame4(bytes("2")), frame4(bytes("3"))]));
        await sleep(50);
        raw.reset();
        await sleep(100);
        // Write until the kernel reports the reset (the first write may still be accepted).
        let failure: unknown;
        for (let i = 0; i < 50 && failure === undefined && !rec.session.isClosed(); i++) {
          await rec.session.writePkg(pattern(1024, i)).catch((e) => (failure = e));
          await sleep(10);
        }
        release();
        await within(rec.session.closed, 5_000, "session closed");
        assert.ok(failure !== undefined || rec.info?.error !== undefined, "the reset was reported");
        if (failure !== undefined) code(failure, ["ERR_CONNECTION", "ERR_SESSION_CLOSED"]);
        assert.equal(rec.info?.initiator, "error");
        assert.equal(code(rec.info!.error, ["ERR_CONNECTION"]), "ERR_CONNECTION");
        await server.close();
      },
    );

    // BUG (Deno only): after a peer half-closes (FIN), the replies to the packages it sent just before are lost and the
    // session reports ERR_CONNECTION ("write failed: BadResource: connection is closed"). On EOF,
    // DenoTransport#readLoop calls #end() (src/runtime/deno.ts:154, `if (result.n === null) return this.#end()`), and
    // #end() (deno.ts:164-167) calls this.close() — closing the whole Deno.Conn — before telling the sink; the
    // session's graceful close then flushes the replies into a closed resource (Outbound writeFailed → ConnectionError,
    // and the replies never leave). Bun keeps the write side open (BunTransport.onEnd → socket.end() flushes first).
    // Suggested fix: on a clean EOF, do not close the conn in #end(); call sink.closed() and let Session#finish →
    // transport.close() release it after the flush (close at once only on read errors). The README promises that "when
    // the peer closes cleanly, the packages it sent before closing are all handled first"; their replies must reach the
    // half-closed peer too (request + shutdown(SHUT_WR) clients, e.g. `nc -N`, rely on it).
    it(
      "peer FIN mid-package: earlier packages are handled and answered, the half frame is dropped, close is 'peer'",
      T,
      async () => {
        const { server, records } = await recordingServer(target);
        try {
          const raw = await target.raw(server.port);
          const rec = await sessionOf(records, raw);
          await raw.write(concatBytes([frame4(bytes("a")), frame4(bytes("b")), frame4(pattern(300)).subarray(0, 120)]));
          raw.end(); // half-close: the peer still reads
          await within(rec.session.closed, 5_000, "session closed after FIN");
          assert.deepEqual(rec.packages.map(text), ["a", "b"]);
          // NOTE: the truncated frame is dropped silently (as Netty and getty do): no error is reported for the
          // 120 bytes left at EOF. A CodecError for bytes left at EOF would make that loss visible (see report).
          assert.deepEqual(rec.errors.map((e) => `${e.code}: ${e.message}`), [], "no error for a clean half-close");
          assert.equal(rec.info?.initiator, "peer");
          assert.equal(rec.info?.error, undefined);
          await within(raw.closed, 5_000, "the server closes its side after the replies");
          assert.deepEqual(
            raw.received(),
            concatBytes([frame4(bytes("a")), frame4(bytes("b"))]),
            "the replies reached the half-closed peer",
          );
        } finally {
          await server.close();
        }
      },
    );

    it(
      "slow-loris peers (partial header, then silence) are closed by readTimeout; others' round trips stay fast",
      T,
      () =>
        slowLoris(fault, code, {
          count: 20,
          loris: async (port) => {
            const raw = await target.raw(port);
            await raw.write(Uint8Array.of(0, 0));
            return raw;
          },
        }),
    );

    if (target.name === "tls") {
      // Fixed (was a BUG): a TLS peer that never finishes its handshake held a socket forever. Both adapters now
      // close a connection whose handshake is not done within TcpServer's handshakeTimeout (default 10 s). On Deno
      // 2.9 a TLS connection closed before its handshake completes keeps its TCP socket open until the peer acts
      // (a runtime limit, see README); there the test checks that the server gives up on every one in time.
      it("a TLS peer that stalls its handshake is closed within a bounded time", T, async () => {
        const readTimeout = 300;
        const server = new TcpServer<Uint8Array>({
          port: 0,
          ...target.server(),
          maxConnections: 4,
          handshakeTimeout: 500,
          session: { readTimeout },
        });
        await server.runEventLoop((s) => s.setPkgHandler(lengthCodec));
        const timedOut: string[] = [];
        setLogger({
          debug: (m, f) =>
            void (m === "accept failed" && /handshake not completed/.test(String(f?.error)) && timedOut.push(m)),
          info() {},
          warn() {},
          error() {},
        });
        const sockets: net.Socket[] = [];
        const closed: Array<Promise<void>> = [];
        for (let i = 0; i < 8; i++) {
          const s = net.connect(server.port, "127.0.0.1");
          s.on("error", () => {});
          closed.push(new Promise<void>((resolve) => s.on("close", () => resolve())));
          // Half of them send the first 3 bytes of a TLS record header, the rest nothing at all.
          if (i % 2 === 0) s.on("connect", () => void s.write(Uint8Array.of(0x16, 0x03, 0x01)));
          sockets.push(s);
        }
        try {
          if (current === "deno") {
            await waitFor(() => timedOut.length === 8, readTimeout + 3_000, "every stalled handshake to time out");
          } else {
            await within(Promise.all(closed), readTimeout + 3_000, "the server to close stalled TLS handshakes");
          }
          assert.equal(server.sessionCount, 0);
        } finally {
          setLogger();
          for (const s of sockets) s.destroy();
          await server.close();
        }
      });
    }

    it(
      "a peer that stops reading: pendingBytes never exceeds outboundCap; writes fail typed; the session closes",
      T,
      () => stoppedReader(fault, code).then(() => {}),
    );

    it(
      "server.close() under load: reading peers get everything within waitTime, stuck ones are forced after it",
      T,
      () => closeUnderLoad(fault, code, 1_500).then(() => {}),
    );

    it(
      "handlers that throw or reject (onMessage, onCron, onWritabilityChange) are reported as ERR_HANDLER; everything lives on",
      T,
      () => throwingHandlers(fault, code),
    );

    it(
      "onClose, close callbacks, newSession and onOpen that throw: logged or refused as ERR_HANDLER; the server lives on",
      T,
      () => throwingCallbacks(fault, code),
    );

    /** Set by the restart test: writes that resolved but reached neither server. */
    let lostAcrossRestart: number[] | undefined;

    it(
      "server restart under a client pool: backoff reconnects, gap writes fail fast and typed, no duplicates",
      T,
      async () => {
        lostAcrossRestart = (await restartUnderPool(fault, code)).lost;
      },
    );

    // BUG: a write that resolved (README: "resolves once every byte was handed to the socket") can still be lost when
    // the server closes gracefully: 4–64 of ~25,000–50,000 resolved writes per restart never reached either server in
    // this suite. server.close() → Session#closeWith (src/session.ts:647) pauses the transport and #onData
    // (session.ts:774) drops everything once the state is not "open"; #finish (session.ts:663) closes the socket with
    // client bytes still unread in the kernel (the kernel answers with RST and discards them), while the client keeps
    // resolving writes into that connection until it processes the FIN. Suggested fix: make the graceful close a
    // lingering close — half-close the write side first (FIN), keep reading and dispatching onMessage until the peer's
    // EOF or waitTime, then close; the client already refuses writes once it has seen EOF, so every write that resolved
    // would then reach the application. Otherwise the README must say that a resolved write is only handed to the
    // kernel, and that delivery across a server shutdown needs application-level acks.
    it("…and nothing reported as sent across the restart was lost", () => {
      assert.ok(lostAcrossRestart !== undefined, "the restart test ran");
      assert.deepEqual(lostAcrossRestart, [], "every write that resolved arrived at one of the servers");
    });
  });
}

describe(`typed errors and logging (${current})`, () => {
  after(assertNoLeaks);

  it("payloads are never logged, even at debug level, through errors, garbage and handler failures", T, async () => {
    const MARK = "PAYLOAD-7f3c-SECRET";
    const lines: string[] = [];
    const flat = (v: unknown, depth = 0): string => {
      if (depth > 4 || v === null || v === undefined) return String(v);
      if (v instanceof Error) return `${v.name}: ${v.message} ${flat((v as { cause?: unknown }).cause, depth + 1)}`;
      if (v instanceof Uint8Array) return new TextDecoder().decode(v);
      if (typeof v === "object") return Object.entries(v).map(([k, x]) => `${k}=${flat(x, depth + 1)}`).join(" ");
      return String(v);
    };
    const log = (message: string, fields?: Record<string, unknown>) => void lines.push(`${message} ${flat(fields)}`);
    setLogger({ debug: log, info: log, warn: log, error: log });
    try {
      const [target] = streamTargets();
      const server = new TcpServer<Uint8Array>({ port: 0, session: { maxMsgLen: 64 } });
      await server.runEventLoop((s) => {
        s.setPkgHandler(lengthCodec);
        s.setEventListener({
          onMessage: (s, p) => {
            void s.writePkg(p);
            if (text(p).endsWith("!")) throw new Error("handler failed");
          },
          onClose: () => {
            throw new Error("onClose failed");
          },
        });
      });
      const c = await healthyClient(target, server.port);
      await c.session.writePkg(bytes(`${MARK} hello`));
      await c.session.writePkg(bytes(`${MARK}!`));
      await waitFor(() => c.inbox.length === 2);
      const raw = await target.raw(server.port);
      await raw.write(concatBytes([bytes(MARK), bytes(MARK)])); // garbage: a huge declared length
      await within(raw.closed, 5_000, "garbage peer closed");
      const raw2 = await target.raw(server.port);
      await raw2.write(frame4(bytes(`${MARK}${MARK}${MARK}${MARK}${MARK}`))); // over maxMsgLen 64
      await within(raw2.closed, 5_000, "oversized peer closed");
      await c.client.close();
      await server.close();
    } finally {
      setLogger();
    }
    assert.ok(lines.length > 5, `the library logged (${lines.length} lines)`);
    const leaks = lines.filter((l) => l.includes(MARK) || l.includes("PAYLOAD"));
    assert.deepEqual(leaks, [], "no log line carries payload bytes");
  });

  it("option and endpoint misuse fails with ERR_INVALID_OPTION / ERR_ENDPOINT_CLOSED / ERR_CONNECT", async () => {
    assert.throws(() => new TcpServer({ session: { maxMsgLen: 0 } }), (e: unknown) => {
      assert.ok(e instanceof InvalidOptionError);
      assert.equal(e.option, "TcpServer.session.maxMsgLen");
      return code(e) === "ERR_INVALID_OPTION";
    });
    assert.throws(
      () => new TcpClient({ host: "127.0.0.1", port: 1, tls: { caCerts: ["not a pem"] } }),
      (e: unknown) => code(e) === "ERR_INVALID_OPTION",
    );
    assert.throws(
      () => new TcpClient({ host: "127.0.0.1", port: 1, ...({ insecure: true } as object) }),
      (e: unknown) => code(e) === "ERR_INVALID_OPTION",
    );
    const closed = new TcpServer({ port: 0 });
    await closed.close();
    await assert.rejects(
      closed.runEventLoop(() => {}),
      (e: unknown) => e instanceof EndpointClosedError && code(e) === "ERR_ENDPOINT_CLOSED",
    );
    // Refused: a port nobody listens on.
    const probe = new TcpServer<Uint8Array>({ port: 0 });
    await probe.runEventLoop(() => {});
    const dead = probe.port;
    await probe.close();
    await assert.rejects(
      new TcpClient({ host: "127.0.0.1", port: dead, connectTimeout: 1_000 }).runEventLoop(() => {}),
      (e: unknown) => e instanceof ConnectError && code(e) === "ERR_CONNECT",
    );
  });

  it("every stream-transport error code was met by the tests above", () => {
    const expected = [
      "ERR_SESSION_CLOSED",
      "ERR_WRITE_TIMEOUT",
      "ERR_READ_TIMEOUT",
      "ERR_SESSION_BLOCKED",
      "ERR_CONNECT",
      "ERR_CONNECTION",
      "ERR_INVALID_OPTION",
      "ERR_HANDLER",
      "ERR_ENDPOINT_CLOSED",
    ];
    // ERR_CODEC and ERR_MESSAGE_TOO_LONG are provoked by tests/fuzz_session.test.ts.
    assertMet(expected);
  });
});
