// The fault scenarios shared by tests/reliability_faults.test.ts (TCP, TLS) and tests/reliability_ws.test.ts (WS,
// WSS): each runs against a FaultTarget (server, client pool, raw peers and their framing) over real loopback
// sockets and asserts what holds on every transport; the test files add what is particular to theirs. Every error
// provoked goes through the caller's `code` check (which also tallies the codes met).
import assert from "node:assert/strict";
import {
  type CloseInfo,
  type Codec,
  ConnectError,
  type EndpointStats,
  type GettyError,
  HandlerError,
  type Logger,
  ReadTimeoutError,
  type Session,
  SessionBlockedError,
  SessionClosedError,
  type SessionOptions,
  setLogger,
  TcpClient,
  type TcpClientOptions,
  TcpServer,
  WriteTimeoutError,
} from "../../mod.ts";
import {
  collectSessions,
  concatBytes,
  frame4,
  lengthCodec,
  median,
  percentile,
  type RawConn,
  recordSessions,
  roundTrips,
  seqOf,
  seqPkg,
  sessionOf,
  type SessionRecord,
  type StreamTarget,
  typedCode,
} from "./faults.ts";
import { current } from "./runtimes.ts";
import { bytes, pattern, sleep, text, waitFor, within } from "./util.ts";

/** A typed-error check that returns the code (and tallies it). */
export type CodeCheck = (e: unknown, allowed?: readonly string[]) => string;

/**
 * A typed-error check (typedCode) that tallies the codes it met, and the inventory check of a test file: every code
 * of `expected` was met by the tests that ran before it.
 */
export function codeTally(): { code: CodeCheck; assertMet(expected: readonly string[]): void } {
  const seen = new Set<string>();
  return {
    code: (e, allowed) => {
      const c = typedCode(e, allowed);
      seen.add(c);
      return c;
    },
    assertMet: (expected) => {
      const missing = expected.filter((c) => !seen.has(c));
      assert.deepEqual(missing, [], `codes never provoked: ${missing.join(", ")} (seen: ${[...seen].join(", ")})`);
    },
  };
}

/** What the scenarios use of a TcpServer / WsServer. */
export interface FaultServer {
  readonly port: number;
  readonly sessions: IterableIterator<Session<Uint8Array>>;
  readonly sessionCount: number;
  stats(): EndpointStats;
  runEventLoop(newSession: (session: Session<Uint8Array>) => void | Promise<void>): Promise<void>;
  close(): Promise<void>;
}

/** Client options the scenarios set. */
export type FaultClientOptions = Pick<
  TcpClientOptions,
  "connectionNumber" | "reconnectInterval" | "maxReconnectInterval" | "reconnectAttempts" | "connectTimeout"
>;

/** One transport the scenarios run over. */
export interface FaultTarget {
  readonly name: string;
  /** The codec of the endpoints; undefined for WebSocket, where each message is one package. */
  readonly codec: Codec<Uint8Array> | undefined;
  /** A server (not started). */
  server(options?: { port?: number; session?: SessionOptions }): FaultServer;
  /** A client pool to `port` (not started). */
  client(port: number, options?: FaultClientOptions): TcpClient<Uint8Array>;
  /** A raw peer to the server (a WebSocket one is upgraded already); `stuck`: one that never reads. */
  raw(port: number, options?: { stuck?: boolean }): Promise<RawConn>;
  /** One whole package as a raw peer writes it. */
  frame(pkg: Uint8Array): Uint8Array;
  /** Resolves once a raw peer's connection ended after the server closed its session (WS: the peer answers). */
  ended(raw: RawConn): Promise<void>;
}

/** A TCP/TLS StreamTarget as a FaultTarget: TcpServer / TcpClient with the suite's length-field codec. */
export function streamFault(target: StreamTarget): FaultTarget {
  return {
    name: target.name,
    codec: lengthCodec,
    server: (options = {}) => new TcpServer<Uint8Array>({ port: 0, ...target.server(), ...options }),
    client: (port, options = {}) =>
      new TcpClient<Uint8Array>({ host: "127.0.0.1", port, ...target.client(), ...options }),
    raw: (port, options) => target.raw(port, options),
    frame: frame4,
    ended: async (raw) => void await raw.closed,
  };
}

/** A started server recording every session (see recordSessions); with `echo` (default), packages are echoed. */
export async function recordingOn(
  target: FaultTarget,
  options: { port?: number; session?: SessionOptions } = {},
  behaviour: { echo?: boolean } = {},
): Promise<{ server: FaultServer; records: SessionRecord[] }> {
  const records: SessionRecord[] = [];
  const server = target.server(options);
  try {
    await server.runEventLoop(recordSessions(records, { ...behaviour, codec: target.codec }));
  } catch (error) {
    await server.close(); // e.g. the port is still taken: an endpoint that failed to start still counts until closed
    throw error;
  }
  return { server, records };
}

/** A started client pool collecting every package per session, its errors and close infos. */
export async function collectingOn(target: FaultTarget, port: number, options: FaultClientOptions = {}) {
  const got = new Map<Session<Uint8Array>, Uint8Array[]>();
  const errors: GettyError[] = [];
  const closes: CloseInfo[] = [];
  const client = target.client(port, options);
  await client.runEventLoop(collectSessions(got, errors, target.codec, closes));
  return { client, got, errors, closes };
}

/** A started echo client of one session, with its inbox. */
export async function healthyOn(target: FaultTarget, port: number, options: FaultClientOptions = {}) {
  const c = await collectingOn(target, port, options);
  const session = c.client.sessions[0];
  return { ...c, session, inbox: c.got.get(session)! };
}

/**
 * A raw peer sends a whole package and `half` (the start of a 1,000-byte one), then resets. Only the whole package
 * is delivered; `lost` checks how the session ended and returns a label; another session lives on.
 */
export async function resetMidPackage(
  target: FaultTarget,
  half: Uint8Array,
  lost: (rec: SessionRecord) => string,
): Promise<void> {
  const { server, records } = await recordingOn(target);
  const healthy = await healthyOn(target, server.port);
  const raw = await target.raw(server.port);
  const rec = await sessionOf(records, raw);
  const before = target.frame(bytes("before"));
  await raw.write(concatBytes([before, half]));
  // A stream session also reports the half frame as read (a WebSocket runtime does not report partial frames).
  const read = target.codec ? before.length + half.length : 0;
  await waitFor(() => rec.packages.length === 1 && rec.session.stat().readBytes >= read, 5_000, "the reads");
  const how = raw.reset();
  await within(rec.session.closed, 5_000, "session closed after reset");
  const ending = lost(rec);
  assert.deepEqual(rec.packages.map(text), ["before"], "only the whole package");
  // Another session of the same server is untouched.
  const lat = await roundTrips(healthy.session, healthy.inbox, 150, 20);
  assert.ok(lat.length > 0);
  assert.equal(healthy.session.state, "open");
  assert.deepEqual(healthy.errors, []);
  console.log(`  [${target.name}/${current}] reset via ${how}: server session ended by ${ending}`);
  await healthy.client.close();
  await server.close();
}

/**
 * Slow-loris peers (from `loris`: a partial header, then silence) are closed by readTimeout while a healthy client's
 * round trips stay fast. `bystanders` are more attackers that never become sessions (checked by the caller's
 * `afterAttack`); `release` ends a loris' connection after its session closed (default: `target.ended`).
 */
export async function slowLoris(
  target: FaultTarget,
  code: CodeCheck,
  o: {
    count: number;
    loris: (port: number) => Promise<RawConn>;
    release?: (raw: RawConn) => Promise<void>;
    bystanders?: (port: number) => Promise<RawConn[]>;
    afterAttack?: (server: FaultServer, bystanders: RawConn[]) => Promise<void>;
  },
): Promise<void> {
  const readTimeout = 400;
  const { server, records } = await recordingOn(target, { session: { readTimeout } });
  const healthy = await healthyOn(target, server.port);
  // Baseline latency before the attack.
  const base = await roundTrips(healthy.session, healthy.inbox, 200, 40);
  const started = Date.now();
  const [lorises, bystanders] = await Promise.all([
    Promise.all(Array.from({ length: o.count }, () => o.loris(server.port))),
    o.bystanders?.(server.port) ?? [],
  ]);
  const recs = await Promise.all(lorises.map((r) => sessionOf(records, r)));
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
  const droppedAtOnce = lorises.filter((r) => r.isClosed()).length;
  await Promise.all(lorises.map((r) => within((o.release ?? target.ended)(r), 5_000, "raw peer sees the close")));
  await o.afterAttack?.(server, bystanders);
  assert.ok(closedAfter >= readTimeout - 20, `closed after ${closedAfter} ms`);
  assert.ok(closedAfter <= readTimeout + 2_500, `closed after ${closedAfter} ms (readTimeout ${readTimeout})`);
  assert.equal(healthy.session.state, "open", "the healthy session was never idle");
  const p50 = median(during);
  const p99 = percentile(during, 99);
  console.log(
    `  [${target.name}/${current}] ${o.count} slow-loris closed after ${closedAfter} ms (${droppedAtOnce} ` +
      `connections already dropped by the server); ${bystanders.length} bystanders; healthy round trips: before p50 ` +
      `${median(base).toFixed(2)} ms, during p50 ${p50.toFixed(2)} ms p99 ${
        p99.toFixed(2)
      } ms (${during.length} trips)`,
  );
  assert.ok(during.length >= 10, `only ${during.length} round trips during the attack`);
  assert.ok(p50 < 50, `median round trip ${p50} ms during the attack`);
  assert.ok(p99 < 500, `p99 round trip ${p99} ms during the attack`);
  await healthy.client.close();
  await server.close();
  for (const b of bystanders) await within(b.closed, 5_000, "a bystander released by close()");
}

/**
 * A server session writes 16 KiB packages as fast as it may to a peer that stopped reading: pendingBytes never
 * exceeds outboundCap, writes past it fail with ERR_SESSION_BLOCKED, and the write timeout closes the session.
 * `sample` runs with the session every few ms (for what the caller also bounds). Returns the session's record.
 */
export async function stoppedReader(
  target: FaultTarget,
  code: CodeCheck,
  sample: (s: Session<Uint8Array>) => void = () => {},
): Promise<SessionRecord> {
  const outboundCap = 256 * 1024;
  const writeTimeout = 800;
  const writeCodes: string[] = [];
  let maxPending = 0;
  let writer: Promise<void> | undefined;
  const records: SessionRecord[] = [];
  const server = target.server({
    session: { outboundCap, highWaterMark: 64 * 1024, lowWaterMark: 16 * 1024, writeTimeout, waitTime: 200 },
  });
  await server.runEventLoop((session) => {
    const rec: SessionRecord = { session, packages: [], errors: [] };
    records.push(rec);
    if (target.codec) session.setPkgHandler(target.codec);
    session.setEventListener({
      onOpen: (s) => {
        // Write as fast as the session allows for up to 8 s: 16 KiB packages, never awaited.
        writer = (async () => {
          const until = Date.now() + 8_000;
          for (let i = 0; !s.isClosed() && Date.now() < until; i++) {
            s.writePkg(pattern(16 * 1024, i)).catch((e) => void writeCodes.push(code(e)));
            maxPending = Math.max(maxPending, s.pendingBytes);
            sample(s);
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
  const sampler = setInterval(() => {
    maxPending = Math.max(maxPending, rec.session.pendingBytes);
    if (!rec.session.isClosed()) sample(rec.session);
  }, 5);
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
  const counts = Object.fromEntries([...new Set(writeCodes)].map((c) => [c, writeCodes.filter((x) => x === c).length]));
  console.log(
    `  [${target.name}/${current}] stuck peer: max pendingBytes ${maxPending} (cap ${outboundCap}); write ` +
      `failures ${JSON.stringify(counts)}`,
  );
  raw.destroy();
  await server.close();
  return rec;
}

/**
 * server.close() while 4 reading clients are each sent 300 × 1 KiB and 2 stuck peers 12 MiB: the readers get
 * everything in order, the stuck ones hold the close for waitTime and are forced (their queued writes fail
 * ERR_SESSION_CLOSED); afterwards connects fail ERR_CONNECT and runEventLoop ERR_ENDPOINT_CLOSED. `slackMs` is how
 * much longer than waitTime close() may take. Returns how the clients saw their sessions close.
 */
export async function closeUnderLoad(target: FaultTarget, code: CodeCheck, slackMs: number): Promise<CloseInfo[]> {
  const waitTime = 700;
  const PKGS = 300;
  let goes = 0;
  const stuckWrites: Array<Promise<unknown>> = [];
  const server = target.server({ session: { waitTime } });
  await server.runEventLoop((session) => {
    if (target.codec) session.setPkgHandler(target.codec);
    session.setEventListener({
      onMessage: (s, pkg) => {
        if (text(pkg) === "go") {
          // 300 × 1 KiB queued in one tick for a reading client.
          for (let i = 0; i < PKGS; i++) void s.writePkg(seqPkg(i, 1020)).catch(() => {});
          goes++;
        } else if (text(pkg) === "stuck") {
          // 12 MiB for a peer that does not read: most of it is still queued at close().
          for (let i = 0; i < 48; i++) stuckWrites.push(s.writePkg(pattern(256 * 1024, i)).then(() => "ok", (e) => e));
          goes++;
        }
      },
    });
  });
  const pool = await collectingOn(target, server.port, { connectionNumber: 4, reconnectAttempts: 0 });
  const stuck = await Promise.all([1, 2].map(() => target.raw(server.port, { stuck: true })));
  for (const r of stuck) await r.write(target.frame(bytes("stuck")));
  for (const s of pool.client.sessions) await s.writePkg(bytes("go"));
  await waitFor(() => goes === 6, 5_000, "every request handled");
  const t0 = Date.now();
  await within(server.close(), waitTime + slackMs + 1_500, "server.close()");
  const took = Date.now() - t0;
  // Every reading client got all 300 packages, in order.
  await waitFor(() => [...pool.got.values()].every((g) => g.length === PKGS), 5_000, "all packages");
  for (const g of pool.got.values()) assert.deepEqual(g.map(seqOf), Array.from({ length: PKGS }, (_, i) => i));
  await waitFor(() => pool.closes.length === 4, 5_000, "the clients to see the close");
  for (const c of pool.closes) assert.ok(c.initiator === "peer" && !c.error, `client close ${JSON.stringify(c)}`);
  // Stuck peers held the close for waitTime, then were forced; their queued writes failed typed.
  assert.ok(took >= waitTime - 30, `close() took ${took} ms, less than waitTime ${waitTime}`);
  assert.ok(took <= waitTime + slackMs, `close() took ${took} ms, waitTime ${waitTime}`);
  const outcomes = await Promise.all(stuckWrites);
  const failed = outcomes.filter((o) => o !== "ok");
  assert.ok(failed.length > 0, "some stuck writes were still queued at the forced close");
  for (const e of failed) assert.equal(code(e), "ERR_SESSION_CLOSED");
  assert.ok(failed.every((e) => e instanceof SessionClosedError));
  console.log(
    `  [${target.name}/${current}] server.close() under load took ${took} ms (waitTime ${waitTime}); ` +
      `${outcomes.length - failed.length}/${outcomes.length} stuck writes had left, the rest failed ERR_SESSION_CLOSED`,
  );
  // After close(): no new connections, and the client sees typed errors.
  await assert.rejects(
    target.client(server.port, { connectTimeout: 1_000 }).runEventLoop(() => {}),
    (e: unknown) => code(e) === "ERR_CONNECT" && e instanceof ConnectError,
  );
  await assert.rejects(server.runEventLoop(() => {}), (e: unknown) => code(e) === "ERR_ENDPOINT_CLOSED");
  for (const r of stuck) r.destroy();
  await pool.client.close();
  return pool.closes;
}

const BIG = 64 * 1024;
const BIG_BURST = 64;

/** onMessage, onCron and onWritabilityChange that throw or reject are reported as ERR_HANDLER; everything lives on. */
export async function throwingHandlers(target: FaultTarget, code: CodeCheck): Promise<void> {
  const errors: GettyError[] = [];
  let crons = 0;
  const server = target.server({ session: { cronPeriod: 40, highWaterMark: 1024, lowWaterMark: 0 } });
  await server.runEventLoop((session) => {
    if (target.codec) session.setPkgHandler(target.codec);
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
          // Crosses the high water mark. A WebSocket message goes straight to the runtime when nothing is queued,
          // so only the runtime's backpressure makes writes wait: 4 MiB in one go (the client, in this process,
          // cannot read meanwhile) is more than the runtime's buffer and the kernel's take.
          for (let i = 0; i < BIG_BURST; i++) void s.writePkg(new Uint8Array(BIG)).catch(() => {});
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
  const server2 = target.server();
  await server2.runEventLoop((session) => {
    if (target.codec) session.setPkgHandler(target.codec);
    session.setEventListener({
      onMessage: (s, pkg) => {
        if (text(pkg) === "throw") throw new Error("plain sync throw");
        void s.writePkg(pkg);
      },
      onError: (_s, e) => void syncErrors.push(e),
    });
  });
  const c = await healthyOn(target, server.port);
  const c2 = await healthyOn(target, server2.port);
  for (const m of ["throw", "one", "reject", "two", "later", "three", "big"]) await c.session.writePkg(bytes(m));
  for (const m of ["throw", "ok", "throw", "ok2"]) await c2.session.writePkg(bytes(m));
  await waitFor(() => c.inbox.length >= 4 + BIG_BURST && c2.inbox.length >= 2, 10_000, "echoes after the throws");
  assert.deepEqual(c.inbox.map((p) => (p.length > 100 ? p.length : text(p))), [
    "one",
    "two",
    "three",
    ...new Array(BIG_BURST).fill(BIG),
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
  assert.deepEqual([...c.errors, ...c2.errors], []);
  await Promise.all([c.client.close(), c2.client.close()]);
  await Promise.all([server.close(), server2.close()]);
}

/**
 * onClose and a close callback that throw are logged and the other callbacks still run; newSession and onOpen that
 * throw refuse their connection only (ERR_HANDLER); the server serves the next one.
 */
export async function throwingCallbacks(target: FaultTarget, code: CodeCheck): Promise<void> {
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
    const server = target.server();
    await server.runEventLoop((session) => {
      const i = n++;
      if (i === 1) throw new Error("newSession refuses");
      if (target.codec) session.setPkgHandler(target.codec);
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
    const c0 = await healthyOn(target, server.port, { reconnectAttempts: 0 }); // no reconnect after s0 closes
    await c0.session.writePkg(bytes("x"));
    await waitFor(() => c0.inbox.length === 1);
    const s0 = [...server.sessions][0];
    await within(s0.close(), 5_000, "close with throwing callbacks");
    assert.deepEqual(order, ["onClose 0", "cb-a 0", "cb-b 0"]);
    // Sessions 1 and 2 are refused (newSession throws, onOpen rejects): the clients see the server hang up.
    for (let k = 0; k < 2; k++) {
      const raw = await target.raw(server.port);
      await within(target.ended(raw), 5_000, "refused connection closed");
    }
    // Session 3 works as if nothing happened.
    const c3 = await healthyOn(target, server.port);
    await c3.session.writePkg(bytes("still"));
    await waitFor(() => c3.inbox.length === 1);
    assert.equal(text(c3.inbox[0]), "still");
    assert.equal(server.stats().refused, 2);
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
}

/** What a restart left: per connection, what was written, and what resolved but never arrived. */
export interface RestartOutcome {
  /** Writes that resolved and reached neither server. */
  readonly lost: number[];
  /** Of those, per connection the first server closed: how many (always a tail of what was written on it). */
  readonly lostTails: number[];
}

/**
 * A pool of 4 sessions writes (4 writers, each awaiting its writes) while its server closes, stays away for 0.6 s
 * and comes back on the same port. Checked on every transport: reconnects with backoff (a handful of dials in the
 * gap), writes on the lost sessions fail fast with ERR_SESSION_CLOSED, no package arrives twice or unwritten, and per
 * connection what arrived is what was written on it, in order, with no hole: whatever resolved and was lost is the
 * tail of a connection the first server closed; the second server's connections lose nothing.
 */
export async function restartUnderPool(target: FaultTarget, code: CodeCheck): Promise<RestartOutcome> {
  const first = await recordingOn(target, {}, { echo: false });
  const port = first.server.port;
  let second: Awaited<ReturnType<typeof recordingOn>> | undefined;
  const pool = await collectingOn(target, port, {
    connectionNumber: 4,
    reconnectInterval: 40,
    maxReconnectInterval: 300,
    reconnectAttempts: 1_000,
  });
  let stop = false;
  try {
    /** Per client session (by id): the sequence numbers written on it, in the order they were queued. */
    const writtenOn = new Map<number, number[]>();
    const resolved = new Set<number>();
    const failures: Array<{ code: string; ms: number }> = [];
    let next = 0;
    // Four writers, each awaiting its own writes, round-robin over the open sessions. A package carries its sequence
    // number and the id of the client session that sent it.
    const writers = Array.from({ length: 4 }, async (_, w) => {
      while (!stop) {
        const open = pool.client.sessions;
        if (open.length === 0) {
          await sleep(2);
          continue;
        }
        const n = next++;
        const s = open[(n + w) % open.length];
        if (!writtenOn.has(s.id)) writtenOn.set(s.id, []);
        writtenOn.get(s.id)!.push(n);
        const t0 = performance.now();
        try {
          await s.writePkg(concatBytes([seqPkg(n), seqPkg(s.id, 56)]));
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
        second = await recordingOn(target, { port }, { echo: false });
      } catch (e) {
        if (attempt > 20) throw e;
        await sleep(50); // the old listener may take a moment to release the port
      }
    }
    await waitFor(() => pool.client.sessions.length === 4, 10_000, "the pool to refill");
    await sleep(250);
    stop = true;
    await Promise.all(writers);
    const arrivals = (rs: SessionRecord[]) => rs.flatMap((r) => r.packages);
    const arrived = () => arrivals(second!.records).length + arrivals(first.records).length;
    await waitFor(() => arrived() >= resolved.size, 1_000, "what resolved to arrive").catch(() => {});
    const atFirst = arrivals(first.records);
    const atSecond = arrivals(second.records);
    const all = [...atFirst, ...atSecond];
    const seqs = new Set(all.map(seqOf));
    assert.equal(seqs.size, all.length, "no package arrived twice");
    assert.ok([...seqs].every((n) => resolved.has(n) || n < next), "nothing arrived that was never written");
    const byConn = new Map<number, number[]>();
    for (const p of all) {
      const id = seqOf(p.subarray(4));
      if (!byConn.has(id)) byConn.set(id, []);
      byConn.get(id)!.push(seqOf(p));
    }
    const secondIds = new Set(atSecond.map((p) => seqOf(p.subarray(4))));
    const lostTails: number[] = [];
    for (const [id, written] of writtenOn) {
      const got = byConn.get(id) ?? [];
      assert.deepEqual(got, written.slice(0, got.length), `connection ${id}: a hole or reordering`);
      const lostHere = written.slice(got.length).filter((n) => resolved.has(n));
      if (secondIds.has(id)) assert.deepEqual(lostHere, [], `connection ${id} to the second server lost packages`);
      else lostTails.push(lostHere.length);
    }
    const lost = [...resolved].filter((n) => !seqs.has(n));
    const slowest = Math.max(0, ...failures.map((f) => f.ms)).toFixed(1);
    console.log(
      `  [${target.name}/${current}] restart: ${resolved.size} writes resolved (${atFirst.length} reached the first ` +
        `server, ${atSecond.length} the second); ${failures.length} failed typed ` +
        `(${[...new Set(failures.map((f) => f.code))].join(", ")}; slowest ${slowest} ms); ${gapConnects} dials ` +
        `during the 0.6 s gap; resolved but lost: ${lost.length} (per closed connection: ${lostTails.join(", ")})`,
    );
    assert.ok(atFirst.length > 0 && atSecond.length > 0, "traffic reached both servers");
    // Backoff: with a 40 ms base doubling to 300 ms, a 0.6 s gap costs a handful of dials, not hundreds.
    assert.ok(gapConnects >= 1 && gapConnects <= 12, `${gapConnects} dials during the gap`);
    for (const f of failures) assert.ok(f.ms < 1_000, `a gap write took ${f.ms} ms to fail`);
    return { lost, lostTails };
  } finally {
    stop = true;
    await pool.client.close();
    await first.server.close();
    await second?.server.close();
  }
}
