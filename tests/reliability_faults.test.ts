// Fault injection over real TCP and TLS sockets (loopback, port 0): peers that reset or FIN mid-package,
// slow-loris peers, peers that stop reading, a server restart under a client pool, server.close() under load,
// and application callbacks that throw. Every error provoked is checked for its stable `code`, and the codes
// seen are tallied: the last test of the file checks that each stream-transport code was met.
//
// WebSocket: TODO(ws) — the same scenarios apply (see WsFaultHooks in tests/helpers/faults.ts); add a "ws"
// StreamTarget in streamTargets() and they run here unchanged where the raw peer can speak the protocol.
import assert from "node:assert/strict";
import net from "node:net";
import { after, describe, it } from "node:test";
import {
  type CloseInfo,
  ConnectError,
  EndpointClosedError,
  type GettyError,
  HandlerError,
  InvalidOptionError,
  type Logger,
  ReadTimeoutError,
  type Session,
  SessionBlockedError,
  SessionClosedError,
  setLogger,
  TcpClient,
  type TcpClientOptions,
  TcpServer,
  WriteTimeoutError,
} from "../mod.ts";
import {
  collectingClient,
  concatBytes,
  frame4,
  lengthCodec,
  median,
  percentile,
  type RawConn,
  recordingServer,
  roundTrips,
  seqOf,
  seqPkg,
  type StreamTarget,
  streamTargets,
  typedCode,
} from "./helpers/faults.ts";
import { current } from "./helpers/runtimes.ts";
import { assertNoLeaks, bytes, pattern, sleep, text, waitFor, within } from "./helpers/util.ts";

const T = { timeout: 30_000 };
/** Codes met in this file, for the inventory at the end. */
const seen = new Set<string>();
function code(e: unknown, allowed?: readonly string[]): string {
  const c = typedCode(e, allowed);
  seen.add(c);
  return c;
}

/** The server session of a raw peer (matched by the peer's local port). */
async function sessionOf<R extends { session: Session<Uint8Array> }>(records: R[], raw: RawConn): Promise<R> {
  const remote = `127.0.0.1:${raw.localPort}`;
  let found: R | undefined;
  await waitFor(() => (found = records.find((r) => r.session.remoteAddr === remote)), 5_000, "server session");
  return found!;
}

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
  describe(`faults over ${target.name} (${current})`, T, () => {
    after(assertNoLeaks);

    it(
      "peer reset mid-package: the half frame is never delivered, the session ends typed, others live",
      T,
      async () => {
        const { server, records } = await recordingServer(target);
        const healthy = await healthyClient(target, server.port);
        const raw = await target.raw(server.port);
        const rec = await sessionOf(records, raw);
        const half = frame4(pattern(1000, 1)).subarray(0, 500);
        await raw.write(concatBytes([frame4(bytes("before")), half]));
        await waitFor(() => rec.session.stat().readBytes >= 10 + 500, 5_000, "server to read the half frame");
        const how = raw.reset();
        await within(rec.session.closed, 5_000, "session closed after reset");
        const ending = peerGone(rec.info);
        assert.deepEqual(rec.packages.map(text), ["before"], "only the whole package");
        // Another session of the same server is untouched.
        const lat = await roundTrips(healthy.session, healthy.inbox, 150, 20);
        assert.ok(lat.length > 0);
        assert.equal(healthy.session.state, "open");
        assert.deepEqual(healthy.errors, []);
        console.log(`  [${target.name}/${current}] reset via ${how}: server session ended by ${ending}`);
        await healthy.client.close();
        await server.close();
      },
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
      async () => {
        const readTimeout = 400;
        const { server, records } = await recordingServer(target, { session: { readTimeout } });
        const healthy = await healthyClient(target, server.port);
        // Baseline latency before the attack.
        const base = await roundTrips(healthy.session, healthy.inbox, 200, 40);
        const lorises = await Promise.all(Array.from({ length: 20 }, () => target.raw(server.port)));
        const started = Date.now();
        const recs = await Promise.all(lorises.map((r) => sessionOf(records, r)));
        await Promise.all(lorises.map((r) => r.write(Uint8Array.of(0, 0))));
        // Meanwhile the healthy client keeps talking (its traffic keeps its own session alive).
        const during = await roundTrips(healthy.session, healthy.inbox, readTimeout + 400, 200);
        await Promise.all(recs.map((r) => within(r.session.closed, 5_000, "slow-loris closed")));
        const closedAfter = Date.now() - started;
        for (const r of recs) {
          assert.equal(r.info?.initiator, "error");
          assert.ok(r.info?.error instanceof ReadTimeoutError);
          assert.equal(code(r.info!.error), "ERR_READ_TIMEOUT");
          assert.equal(r.packages.length, 0);
        }
        await Promise.all(lorises.map((r) => within(r.closed, 5_000, "raw peer sees the close")));
        assert.ok(closedAfter >= readTimeout - 20, `closed after ${closedAfter} ms`);
        assert.ok(closedAfter <= readTimeout + 2_500, `closed after ${closedAfter} ms (readTimeout ${readTimeout})`);
        assert.equal(healthy.session.state, "open", "the healthy session was never idle");
        const p50 = median(during);
        const p99 = percentile(during, 99);
        console.log(
          `  [${target.name}/${current}] 20 slow-loris closed after ${closedAfter} ms; healthy round trips: ` +
            `before p50 ${median(base).toFixed(2)} ms, during p50 ${p50.toFixed(2)} ms p99 ${p99.toFixed(2)} ms ` +
            `(${during.length} trips)`,
        );
        assert.ok(during.length >= 10, `only ${during.length} round trips during the attack`);
        assert.ok(p50 < 50, `median round trip ${p50} ms during the attack`);
        assert.ok(p99 < 500, `p99 round trip ${p99} ms during the attack`);
        await healthy.client.close();
        await server.close();
      },
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
      async () => {
        const outboundCap = 256 * 1024;
        const writeTimeout = 800;
        const writeCodes: string[] = [];
        let maxPending = 0;
        let writer: Promise<void> | undefined;
        const records: Array<{ session: Session<Uint8Array>; info?: CloseInfo; errors: GettyError[] }> = [];
        const server = new TcpServer<Uint8Array>({
          port: 0,
          ...target.server(),
          session: { outboundCap, highWaterMark: 64 * 1024, lowWaterMark: 16 * 1024, writeTimeout, waitTime: 200 },
        });
        await server.runEventLoop((session) => {
          const rec: (typeof records)[number] = { session, errors: [] };
          records.push(rec);
          session.setPkgHandler(lengthCodec);
          session.setEventListener({
            onOpen: (s) => {
              // Write as fast as the session allows for up to 8 s: 16 KiB packages, never awaited.
              writer = (async () => {
                const until = Date.now() + 8_000;
                for (let i = 0; !s.isClosed() && Date.now() < until; i++) {
                  s.writePkg(pattern(16 * 1024, i)).catch((e) => void writeCodes.push(code(e)));
                  maxPending = Math.max(maxPending, s.pendingBytes);
                  if (i % 4 === 0) await sleep(1);
                }
              })();
            },
            onError: (_s, e) => void rec.errors.push(e),
            onClose: (_s, info) => void (rec.info = info),
          });
        });
        const raw = await target.raw(server.port, { stuck: true });
        const rec = await sessionOf(records, raw);
        const sampler = setInterval(() => (maxPending = Math.max(maxPending, rec.session.pendingBytes)), 5);
        await within(rec.session.closed, 10_000, "the stuck session to close");
        clearInterval(sampler);
        await writer;
        assert.ok(maxPending <= outboundCap, `pendingBytes reached ${maxPending} > outboundCap ${outboundCap}`);
        assert.ok(maxPending > outboundCap / 2, `the cap was approached (${maxPending})`);
        assert.ok(writeCodes.includes("ERR_SESSION_BLOCKED"), "writes past the cap were refused");
        assert.equal(rec.info?.initiator, "error");
        assert.ok(rec.info?.error instanceof WriteTimeoutError);
        assert.equal(code(rec.info!.error), "ERR_WRITE_TIMEOUT");
        for (const c of new Set(writeCodes)) {
          assert.ok(["ERR_SESSION_BLOCKED", "ERR_WRITE_TIMEOUT", "ERR_SESSION_CLOSED"].includes(c), c);
        }
        for (const e of rec.errors) code(e, ["ERR_SESSION_BLOCKED", "ERR_WRITE_TIMEOUT"]);
        assert.ok(rec.errors.some((e) => e instanceof SessionBlockedError));
        console.log(
          `  [${target.name}/${current}] stuck peer: max pendingBytes ${maxPending} (cap ${outboundCap}); write ` +
            `failures ${
              JSON.stringify(
                Object.fromEntries([...new Set(writeCodes)].map((c) => [c, writeCodes.filter((x) => x === c).length])),
              )
            }`,
        );
        raw.destroy();
        await server.close();
      },
    );

    it(
      "server.close() under load: reading peers get everything within waitTime, stuck ones are forced after it",
      T,
      async () => {
        const waitTime = 700;
        const PKGS = 300;
        let goes = 0;
        const stuckWrites: Array<Promise<unknown>> = [];
        const server = new TcpServer<Uint8Array>({ port: 0, ...target.server(), session: { waitTime } });
        await server.runEventLoop((session) => {
          session.setPkgHandler(lengthCodec);
          session.setEventListener({
            onMessage: (s, pkg) => {
              if (text(pkg) === "go") {
                // 300 × 1 KiB queued in one tick for a reading client.
                for (let i = 0; i < PKGS; i++) void s.writePkg(seqPkg(i, 1020)).catch(() => {});
                goes++;
              } else if (text(pkg) === "stuck") {
                // 12 MiB for a peer that does not read: most of it is still queued at close().
                for (let i = 0; i < 48; i++) {
                  stuckWrites.push(s.writePkg(pattern(256 * 1024, i)).then(() => "ok", (e) => e));
                }
                goes++;
              }
            },
          });
        });
        const pool = await collectingClient(target, server.port, { connectionNumber: 4 });
        const stuck = await Promise.all([1, 2].map(() => target.raw(server.port, { stuck: true })));
        for (const r of stuck) await r.write(frame4(bytes("stuck")));
        for (const s of pool.client.sessions) await s.writePkg(bytes("go"));
        await waitFor(() => goes === 6, 5_000, "every request handled");
        const t0 = Date.now();
        await within(server.close(), waitTime + 3_000, "server.close()");
        const took = Date.now() - t0;
        // Every reading client got all 300 packages, in order.
        await waitFor(() => [...pool.got.values()].every((g) => g.length === PKGS), 5_000, "all packages");
        for (const g of pool.got.values()) assert.deepEqual(g.map(seqOf), Array.from({ length: PKGS }, (_, i) => i));
        // Stuck peers held the close for waitTime, then were forced; their queued writes failed typed.
        assert.ok(took >= waitTime - 30, `close() took ${took} ms, less than waitTime ${waitTime}`);
        assert.ok(took <= waitTime + 1_500, `close() took ${took} ms, waitTime ${waitTime}`);
        const outcomes = await Promise.all(stuckWrites);
        const failed = outcomes.filter((o) => o !== "ok");
        assert.ok(failed.length > 0, "some stuck writes were still queued at the forced close");
        for (const e of failed) assert.equal(code(e), "ERR_SESSION_CLOSED");
        assert.ok(failed.every((e) => e instanceof SessionClosedError));
        console.log(
          `  [${target.name}/${current}] server.close() under load took ${took} ms (waitTime ${waitTime}); ` +
            `${
              outcomes.length - failed.length
            }/${outcomes.length} stuck writes had left, the rest failed ERR_SESSION_CLOSED`,
        );
        // After close(): no new connections, and the client sees typed errors.
        await assert.rejects(
          new TcpClient<Uint8Array>({ host: "127.0.0.1", port: server.port, ...target.client(), connectTimeout: 1_000 })
            .runEventLoop(() => {}),
          (e: unknown) => code(e) === "ERR_CONNECT" && e instanceof ConnectError,
        );
        await assert.rejects(server.runEventLoop(() => {}), (e: unknown) => code(e) === "ERR_ENDPOINT_CLOSED");
        for (const r of stuck) r.destroy();
        await pool.client.close();
      },
    );

    it(
      "handlers that throw or reject (onMessage, onCron, onWritabilityChange) are reported as ERR_HANDLER; everything lives on",
      T,
      async () => {
        const errors: GettyError[] = [];
        let crons = 0;
        const server = new TcpServer<Uint8Array>({
          port: 0,
          ...target.server(),
          session: { cronPeriod: 40, highWaterMark: 1024, lowWaterMark: 0 },
        });
        await server.runEventLoop((session) => {
          session.setPkgHandler(lengthCodec);
          session.setEventListener({
            onMessage: async (s, pkg) => {
              const t = text(pkg);
              if (t === "throw") throw new Error("sync-looking throw in an async handler");
              if (t === "reject") return Promise.reject(new TypeError("rejected"));
              if (t === "later") {
                await sleep(5);
                throw new RangeError("thrown after an await");
              }
              if (t === "big") {
                void s.writePkg(new Uint8Array(4096)).catch(() => {}); // crosses the high water mark
              }
              await s.writePkg(pkg);
            },
            onCron: () => {
              crons++;
              if (crons % 2 === 0) throw new Error("cron throws");
              return Promise.reject(new Error("cron rejects"));
            },
            onWritabilityChange: () => {
              throw new Error("writability handler throws");
            },
            onError: (_s, e) => void errors.push(e),
          });
        });
        const syncErrors: GettyError[] = [];
        const server2 = new TcpServer<Uint8Array>({ port: 0, ...target.server() });
        await server2.runEventLoop((session) => {
          session.setPkgHandler(lengthCodec);
          session.setEventListener({
            onMessage: (s, pkg) => {
              if (text(pkg) === "throw") throw new Error("plain sync throw");
              void s.writePkg(pkg);
            },
            onError: (_s, e) => void syncErrors.push(e),
          });
        });
        const c = await healthyClient(target, server.port);
        const c2 = await healthyClient(target, server2.port);
        for (const m of ["throw", "one", "reject", "two", "later", "three", "big"]) await c.session.writePkg(bytes(m));
        for (const m of ["throw", "ok", "throw", "ok2"]) await c2.session.writePkg(bytes(m));
        await waitFor(() => c.inbox.length >= 5 && c2.inbox.length >= 2, 5_000, "echoes after the throws");
        assert.deepEqual(c.inbox.map((p) => (p.length > 100 ? p.length : text(p))), [
          "one",
          "two",
          "three",
          4096,
          "big",
        ]);
        assert.deepEqual(c2.inbox.map(text), ["ok", "ok2"]);
        await waitFor(() => crons >= 4, 5_000, "cron keeps running");
        await waitFor(() => errors.some((e) => (e as HandlerError).handler === "onWritabilityChange"), 5_000, "w");
        const handlers = new Set(errors.map((e) => (e as HandlerError).handler));
        for (const e of [...errors, ...syncErrors]) {
          assert.ok(e instanceof HandlerError);
          assert.equal(code(e), "ERR_HANDLER");
          assert.ok(e.cause instanceof Error, "the original error is the cause");
        }
        assert.deepEqual([...handlers].sort(), ["onCron", "onMessage", "onWritabilityChange"]);
        assert.equal(errors.filter((e) => (e as HandlerError).handler === "onMessage").length, 3);
        assert.equal(syncErrors.length, 2);
        assert.equal(c.session.state, "open");
        assert.equal(c2.session.state, "open");
        assert.equal(server.sessionCount, 1);
        await Promise.all([c.client.close(), c2.client.close()]);
        await Promise.all([server.close(), server2.close()]);
      },
    );

    it(
      "onClose, close callbacks, newSession and onOpen that throw: logged or refused as ERR_HANDLER; the server lives on",
      T,
      async () => {
        const logged: Array<{ message: string; error?: unknown }> = [];
        const capture: Logger = {
          debug: () => {},
          info: () => {},
          warn: (message, fields) => void logged.push({ message, error: fields?.error }),
          error: (message, fields) => void logged.push({ message, error: fields?.error }),
        };
        setLogger(capture);
        try {
          const order: string[] = [];
          const refusals: GettyError[] = [];
          let n = 0;
          const server = new TcpServer<Uint8Array>({ port: 0, ...target.server() });
          await server.runEventLoop((session) => {
            const i = n++;
            if (i === 1) throw new Error("newSession refuses");
            session.setPkgHandler(lengthCodec);
            session.setEventListener({
              onOpen: () => {
                if (i === 2) return Promise.reject(new Error("onOpen refuses"));
              },
              onMessage: (s, p) => void s.writePkg(p),
              onError: (_s, e) => void refusals.push(e),
              onClose: () => {
                order.push(`onClose ${i}`);
                throw new Error("onClose throws");
              },
            });
            session.addCloseCallback("t", "a", () => {
              order.push(`cb-a ${i}`);
              throw new Error("callback a throws");
            });
            session.addCloseCallback("t", "b", () => void order.push(`cb-b ${i}`));
          });
          // Session 0: works, then closes; its throwing onClose and callback must not stop callback b.
          const c0 = await healthyClient(target, server.port, { reconnectAttempts: 0 }); // no reconnect after s0 closes
          await c0.session.writePkg(bytes("x"));
          await waitFor(() => c0.inbox.length === 1);
          const s0 = [...server.sessions][0];
          await within(s0.close(), 5_000, "close with throwing callbacks");
          assert.deepEqual(order, ["onClose 0", "cb-a 0", "cb-b 0"]);
          // Sessions 1 and 2 are refused (newSession throws, onOpen rejects): the clients see the server hang up.
          for (let k = 0; k < 2; k++) {
            const raw = await target.raw(server.port);
            await within(raw.closed, 5_000, "refused connection closed");
          }
          // Session 3 works as if nothing happened.
          const c3 = await healthyClient(target, server.port);
          await c3.session.writePkg(bytes("still"));
          await waitFor(() => c3.inbox.length === 1);
          assert.equal(text(c3.inbox[0]), "still");
          const st = server.stats();
          assert.equal(st.refused, 2);
          // A throwing newSession runs before any listener is set, so only the onOpen refusal reaches onError.
          for (const e of refusals) code(e, ["ERR_HANDLER"]);
          assert.deepEqual(refusals.map((e) => (e as HandlerError).handler), ["onOpen"]);
          const loggedHandlers = logged.map((l) => l.error).filter((e) => e instanceof HandlerError) as HandlerError[];
          for (const e of loggedHandlers) code(e, ["ERR_HANDLER"]);
          assert.ok(loggedHandlers.some((e) => e.handler === "onClose"), "onClose throw logged");
          assert.ok(loggedHandlers.some((e) => e.handler === "closeCallback"), "close callback throw logged");
          await Promise.all([c0.client.close(), c3.client.close()]);
          await server.close();
        } finally {
          setLogger();
        }
      },
    );

    /** Set by the restart test: writes that resolved but reached neither server. */
    let lostAcrossRestart: number[] | undefined;

    it(
      "server restart under a client pool: backoff reconnects, gap writes fail fast and typed, no duplicates",
      T,
      async () => {
        const first = await recordingServer(target, {}, { echo: false });
        const port = first.server.port;
        let second: Awaited<ReturnType<typeof recordingServer>> | undefined;
        const pool = await collectingClient(target, port, {
          connectionNumber: 4,
          reconnectInterval: 40,
          maxReconnectInterval: 300,
          reconnectAttempts: 1_000,
        });
        let stop = false;
        try {
          const resolved = new Set<number>();
          const failures: Array<{ code: string; ms: number }> = [];
          let next = 0;
          // Four writers, each awaiting its own writes, round-robin over the open sessions.
          const writers = Array.from({ length: 4 }, async (_, w) => {
            while (!stop) {
              const open = pool.client.sessions;
              if (open.length === 0) {
                await sleep(2);
                continue;
              }
              const n = next++;
              const t0 = performance.now();
              try {
                await open[(n + w) % open.length].writePkg(seqPkg(n, 60));
                resolved.add(n);
              } catch (e) {
                const c = code(e, ["ERR_SESSION_CLOSED", "ERR_CONNECTION", "ERR_WRITE_TIMEOUT"]);
                failures.push({ code: c, ms: performance.now() - t0 });
              }
              if (n % 16 === 0) await sleep(1);
            }
          });
          await sleep(250);
          const stale = pool.client.sessions;
          const connectsBefore = pool.client.stats().connects;
          await first.server.close();
          await waitFor(() => pool.client.sessions.length === 0, 5_000, "the pool to notice");
          // Writes into the gap, on the sessions we held: typed, and fast (no waiting for a timeout).
          for (const s of stale) {
            const t0 = performance.now();
            await assert.rejects(s.writePkg(seqPkg(999_999)), (e: unknown) => code(e) === "ERR_SESSION_CLOSED");
            assert.ok(performance.now() - t0 < 50, "gap writes fail fast");
          }
          await sleep(600);
          const gapConnects = pool.client.stats().connects - connectsBefore;
          for (let attempt = 0; !second; attempt++) {
            try {
              second = await recordingServer(target, { port }, { echo: false });
            } catch (e) {
              if (attempt > 20) throw e;
              await sleep(50); // the old listener may take a moment to release the port
            }
          }
          await waitFor(() => pool.client.sessions.length === 4, 10_000, "the pool to refill");
          await sleep(250);
          stop = true;
          await Promise.all(writers);
          const received = (rs: typeof first.records) => rs.flatMap((r) => r.packages.map(seqOf));
          const arrived = () => received(second!.records).length + received(first.records).length;
          await waitFor(() => arrived() >= resolved.size, 1_000, "what resolved to arrive").catch(() => {});
          const atFirst = received(first.records);
          const atSecond = received(second.records);
          const all = new Set([...atFirst, ...atSecond]);
          assert.equal(all.size, atFirst.length + atSecond.length, "no package arrived twice");
          assert.ok([...all].every((n) => resolved.has(n) || n < next), "nothing arrived that was never written");
          lostAcrossRestart = [...resolved].filter((n) => !all.has(n));
          const slowest = Math.max(0, ...failures.map((f) => f.ms)).toFixed(1);
          console.log(
            `  [${target.name}/${current}] restart: ${resolved.size} writes resolved (${atFirst.length} reached ` +
              `the first server, ${atSecond.length} the second); ${failures.length} failed typed ` +
              `(${[...new Set(failures.map((f) => f.code))].join(", ")}; slowest ${slowest} ms); ` +
              `${gapConnects} dials during the 0.6 s gap; resolved but lost: ${lostAcrossRestart.length}`,
          );
          assert.ok(atFirst.length > 0 && atSecond.length > 0, "traffic reached both servers");
          // Backoff: with a 40 ms base doubling to 300 ms, a 0.6 s gap costs a handful of dials, not hundreds.
          assert.ok(gapConnects >= 1 && gapConnects <= 12, `${gapConnects} dials during the gap`);
          for (const f of failures) assert.ok(f.ms < 1_000, `a gap write took ${f.ms} ms to fail`);
        } finally {
          stop = true;
          await pool.client.close();
          await first.server.close();
          await second?.server.close();
        }
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
    const missing = expected.filter((c) => !seen.has(c));
    assert.deepEqual(missing, [], `codes never provoked: ${missing.join(", ")} (seen: ${[...seen].join(", ")})`);
  });
});
