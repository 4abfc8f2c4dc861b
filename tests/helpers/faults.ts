// Fault-injection helpers for the reliability and fuzz suites: raw peers on node:net / node:tls that can send
// arbitrary bytes, stop reading, half-close or reset mid-frame; a chunk probe on the runtime adapter (what the
// session read path really received); echo endpoints per stream transport; RSS sampling with a trend check.
//
// Transports: TCP and TLS here; WebSocket targets (the same four members as a StreamTarget, plus `url`) and the WS
// fault hooks are in tests/helpers/ws_faults.ts.
import assert from "node:assert/strict";
import net from "node:net";
import tls from "node:tls";
import v8 from "node:v8";
import vm from "node:vm";
import {
  type CloseInfo,
  type Codec,
  type GettyError,
  LengthFieldCodec,
  type Session,
  TcpClient,
  type TcpClientOptions,
  TcpServer,
  type TcpServerOptions,
} from "../../mod.ts";
import { runtimeAdapter } from "../../src/runtime/select.ts";
import type { RuntimeAdapter, TransportSink } from "../../src/transport.ts";
import { tlsFixtures } from "./tls.ts";
import { sleep, waitFor, within } from "./util.ts";

// ---- bytes ----------------------------------------------------------------------------------------------

/** Joins byte arrays. */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Splits `bytes` at the cut points (modulo its length + 1, deduplicated); chunks are copies, never empty. */
export function splitAt(bytes: Uint8Array, cuts: readonly number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].filter((p) => p > 0 && p < bytes.length)
    .sort((a, b) => a - b);
  const chunks: Uint8Array[] = [];
  let from = 0;
  for (const p of [...points, bytes.length]) {
    if (p > from) chunks.push(bytes.slice(from, p));
    from = p;
  }
  return chunks;
}

/** The default framing of the suite: a 4-byte big-endian length, then the body. */
export const lengthCodec: LengthFieldCodec = new LengthFieldCodec();

/** `body` framed with a 4-byte big-endian length. */
export function frame4(body: Uint8Array): Uint8Array {
  return lengthCodec.write(undefined, body);
}

/** A package carrying a sequence number (4 bytes big-endian) and `pad` filler bytes. */
export function seqPkg(seq: number, pad = 0): Uint8Array {
  const out = new Uint8Array(4 + pad);
  new DataView(out.buffer).setUint32(0, seq);
  for (let i = 4; i < out.length; i++) out[i] = (seq + i) & 0xff;
  return out;
}

/** The sequence number of a {@link seqPkg}. */
export function seqOf(pkg: Uint8Array): number {
  return new DataView(pkg.buffer, pkg.byteOffset, pkg.byteLength).getUint32(0);
}

// ---- errors ---------------------------------------------------------------------------------------------

/** Every stable code of src/errors.ts. */
export const ERROR_CODES: readonly string[] = [
  "ERR_SESSION_CLOSED",
  "ERR_WRITE_TIMEOUT",
  "ERR_READ_TIMEOUT",
  "ERR_SESSION_BLOCKED",
  "ERR_MESSAGE_TOO_LONG",
  "ERR_CODEC",
  "ERR_CONNECT",
  "ERR_CONNECTION",
  "ERR_INVALID_OPTION",
  "ERR_HANDLER",
  "ERR_ENDPOINT_CLOSED",
];

/** Asserts `e` is a typed library error (a GettyError with one of the stable codes) and returns its code. */
export function typedCode(e: unknown, allowed: readonly string[] = ERROR_CODES): string {
  assert.ok(e instanceof Error, `not an Error: ${String(e)}`);
  const code = (e as GettyError).code;
  assert.ok(
    typeof code === "string" && ERROR_CODES.includes(code),
    `untyped error ${e.name}: ${e.message} (code ${String(code)})`,
  );
  assert.equal(e.name, e.constructor.name);
  assert.ok(allowed.includes(code), `unexpected code ${code} (${e.message}); allowed: ${allowed.join(", ")}`);
  return code;
}

/** What the server saw of each session: errors reported to onError and the close info. */
export interface SessionRecord {
  readonly session: Session<Uint8Array>;
  readonly packages: Uint8Array[];
  readonly errors: GettyError[];
  info?: CloseInfo;
}

// ---- raw peers --------------------------------------------------------------------------------------------

/** A raw client connection (node:net or node:tls) under the test's full control. */
export interface RawConn {
  /** The node socket (undefined for a Deno-native stuck TLS peer, see {@link rawConnect}). */
  readonly socket: net.Socket | undefined;
  /** The client's local port: the server session's remoteAddr is `127.0.0.1:<localPort>`. */
  readonly localPort: number;
  /** Bytes received so far (the socket keeps reading unless paused). */
  readonly received: () => Uint8Array;
  readonly receivedBytes: () => number;
  /** Resolves once the socket closed; `error` is the socket error code, if any. */
  readonly closed: Promise<{ error?: string }>;
  /** Whether the socket has closed. */
  readonly isClosed: () => boolean;
  /** Writes and resolves once the runtime took the bytes (resolves too if the socket is already gone). */
  write(data: Uint8Array): Promise<void>;
  /** Half-closes (FIN) after what was written. */
  end(): void;
  /** Hard reset (RST) where the runtime supports it, else destroy(); returns which one was used. */
  reset(): "reset" | "destroy";
  /** Stops reading: the peer's writes back up into the kernel buffers. */
  pause(): void;
  /** Closes the socket at once. */
  destroy(): void;
}

/** Resets `socket` with RST (`resetAndDestroy`, Node ≥ 16.17, present on Deno 2.9 and Bun 1.4) or destroys it. */
export function resetSocket(socket: net.Socket): "reset" | "destroy" {
  const s = socket as net.Socket & { resetAndDestroy?: () => void };
  if (typeof s.resetAndDestroy === "function") {
    try {
      s.resetAndDestroy();
      return "reset";
    } catch {
      // fall through
    }
  }
  socket.destroy();
  return "destroy";
}

interface DenoTlsConn {
  readonly localAddr: { port: number };
  handshake(): Promise<unknown>;
  read(into: Uint8Array): Promise<number | null>;
  write(data: Uint8Array): Promise<number>;
  close(): void;
}
const DenoNs = (globalThis as { Deno?: { connectTls(o: object): Promise<DenoTlsConn> } }).Deno;

/**
 * Connects a raw peer to 127.0.0.1:`port`; with `tls`, over TLS trusting the fixture CA. With `stuck`, the peer
 * never reads at all. (On Deno, pausing a node:tls socket does not stop the compat layer from reading the TCP
 * socket underneath — 700 MiB were drained from a "paused" peer in 3 s — so a stuck TLS peer on Deno is a
 * `Deno.connectTls` connection that is simply never read.)
 */
export async function rawConnect(
  port: number,
  options: { tls?: boolean; noDelay?: boolean; stuck?: boolean } = {},
): Promise<RawConn> {
  if (options.tls && options.stuck && DenoNs) return await denoStuckTls(port);
  const parts: Uint8Array[] = [];
  let bytes = 0;
  let closedFlag = false;
  let lastError: string | undefined;
  let tcp: net.Socket | undefined;
  let socket: net.Socket;
  const connected = new Promise<void>((resolve) => {
    if (options.tls) {
      // Over a plain socket we own, so reset() can send a real RST under the TLS layer.
      tcp = net.connect(port, "127.0.0.1");
      tcp.on("error", () => {});
      socket = tls.connect({ socket: tcp, ca: tlsFixtures().ca, servername: "localhost" }, () => resolve());
    } else {
      socket = net.connect(port, "127.0.0.1", () => resolve());
    }
  });
  const s = socket!;
  const failed = new Promise<never>((_, reject) => s.once("error", reject));
  failed.catch(() => {});
  s.setNoDelay(options.noDelay ?? true);
  s.on("error", (e: Error & { code?: string }) => void (lastError = e.code ?? e.message));
  s.on("data", (d: Uint8Array) => {
    parts.push(new Uint8Array(d));
    bytes += d.length;
  });
  const closed = new Promise<{ error?: string }>((resolve) =>
    s.on("close", () => {
      closedFlag = true;
      resolve(lastError ? { error: lastError } : {});
    })
  );
  if (options.stuck) {
    s.pause();
    tcp?.pause();
  }
  await within(Promise.race([connected, failed]), 5_000, `raw ${options.tls ? "tls" : "tcp"} connect`);
  return {
    socket: s,
    localPort: (tcp ?? s).localPort!,
    received: () => concatBytes(parts),
    receivedBytes: () => bytes,
    closed,
    isClosed: () => closedFlag,
    write: (data) =>
      new Promise<void>((resolve) => {
        if (s.destroyed) return resolve();
        s.write(data, () => resolve());
      }),
    end: () => void s.end(),
    reset: () => {
      if (tcp) {
        const how = resetSocket(tcp);
        s.destroy();
        return how;
      }
      return resetSocket(s);
    },
    pause: () => {
      s.pause();
      tcp?.pause();
    },
    destroy: () => {
      s.destroy();
      tcp?.destroy();
    },
  };
}

/**
 * A Deno-native TLS peer that never reads. With `prelude`, it first writes `prelude.request` and reads until
 * `prelude.done(bytes so far)` (e.g. a WebSocket upgrade and its response); `received()` then returns those bytes.
 */
export async function denoStuckTls(
  port: number,
  prelude?: { request: Uint8Array; done(received: Uint8Array): boolean },
): Promise<RawConn> {
  const conn = await DenoNs!.connectTls({ hostname: "127.0.0.1", port, caCerts: [tlsFixtures().ca] });
  await conn.handshake();
  let got: Uint8Array = new Uint8Array(0);
  if (prelude) {
    for (let off = 0; off < prelude.request.length;) off += await conn.write(prelude.request.subarray(off));
    const buf = new Uint8Array(16 * 1024);
    while (!prelude.done(got)) {
      const n = await within(conn.read(buf), 5_000, "the prelude's answer");
      if (n === null) break;
      got = concatBytes([got, buf.subarray(0, n)]);
    }
  }
  let closedFlag = false;
  let resolveClosed!: (v: { error?: string }) => void;
  const closed = new Promise<{ error?: string }>((resolve) => (resolveClosed = resolve));
  const destroy = () => {
    if (closedFlag) return;
    closedFlag = true;
    try {
      conn.close();
    } catch {
      // already closed
    }
    resolveClosed({});
  };
  return {
    socket: undefined,
    localPort: conn.localAddr.port,
    received: () => got,
    receivedBytes: () => got.length,
    closed,
    isClosed: () => closedFlag,
    write: async (data) => {
      for (let off = 0; off < data.length && !closedFlag;) {
        off += await conn.write(data.subarray(off)).catch(() => data.length);
      }
    },
    end: destroy,
    reset: () => (destroy(), "destroy"),
    pause: () => {},
    destroy,
  };
}

// ---- the chunk probe --------------------------------------------------------------------------------------

/** What the transports of a probed adapter delivered to their sessions. */
export interface ChunkProbe {
  /** Largest chunk delivered to any session. */
  max: number;
  /** Size of the chunk being delivered right now (valid inside a reader called from the read path). */
  current: number;
}

/**
 * Wraps the runtime's adapter so that every accepted transport reports the size of each chunk it hands to its
 * session. A reader can then check that the session never buffers more than `maxMsgLen` plus the chunk being
 * delivered (the memory bound of the read path). Pass the result as the (internal) `adapter` option.
 */
export async function probedAdapter(): Promise<{ adapter: RuntimeAdapter; probe: ChunkProbe }> {
  const real = await runtimeAdapter();
  const probe: ChunkProbe = { max: 0, current: 0 };
  const adapter: RuntimeAdapter = {
    name: `probed-${real.name}`,
    connectTcp: (o) => real.connectTcp(o),
    listenTcp: (o) =>
      real.listenTcp({
        ...o,
        onConnection: (transport) => {
          const start = transport.start.bind(transport);
          transport.start = (sink: TransportSink) =>
            start(withData(sink, (chunk, from) => {
              probe.current = chunk.length;
              if (chunk.length > probe.max) probe.max = chunk.length;
              sink.data(chunk, from);
            }));
          o.onConnection(transport);
        },
      }),
  };
  return { adapter, probe };
}

/**
 * `sink` with its `data` replaced; every other method delegates to it. (A session's sink is a class instance
 * whose methods live on its prototype, so `{ ...sink }` would drop them.)
 */
export function withData(sink: TransportSink, data: TransportSink["data"]): TransportSink {
  return {
    data,
    closed: (error, info) => sink.closed(error, info),
    drain: sink.drain && (() => sink.drain!()),
    pong: sink.pong && (() => sink.pong!()),
  };
}

/**
 * A reader wrapper that records the largest `data` it was given and asserts the read-path memory bound:
 * `data.length <= maxMsgLen + chunk`, where `chunk` is the size of the chunk being delivered.
 */
export class BoundedReader<P> implements Codec<P> {
  maxSeen = 0;
  violations: string[] = [];
  constructor(readonly inner: Codec<P>, readonly maxMsgLen: number, readonly chunk: () => number) {}
  read(s: Session<P> | undefined, data: Uint8Array) {
    if (data.length > this.maxSeen) this.maxSeen = data.length;
    const bound = this.maxMsgLen + this.chunk();
    if (data.length > bound) this.violations.push(`reader saw ${data.length} bytes > maxMsgLen + chunk = ${bound}`);
    return this.inner.read(s, data);
  }
  write(s: Session<P> | undefined, pkg: P) {
    return this.inner.write(s, pkg);
  }
}

// ---- stream transports ------------------------------------------------------------------------------------

/** One stream transport the fault tests run over. */
export interface StreamTarget {
  readonly name: "tcp" | "tls";
  /** Extra TcpServer options (TLS material). */
  server(): Partial<TcpServerOptions>;
  /** Extra TcpClient options (TLS trust). */
  client(): Partial<TcpClientOptions>;
  /** A raw peer to the server's port; `stuck`: one that never reads. */
  raw(port: number, options?: { stuck?: boolean }): Promise<RawConn>;
}

/** TCP and TLS (WebSocket: `wsTargets()` in tests/helpers/ws_faults.ts). */
export function streamTargets(): StreamTarget[] {
  const { cert, key, ca } = tlsFixtures();
  return [
    { name: "tcp", server: () => ({}), client: () => ({}), raw: (port, o) => rawConnect(port, o) },
    {
      name: "tls",
      server: () => ({ tls: { cert, key } }),
      client: () => ({ tls: { caCerts: [ca], serverName: "localhost" } }),
      raw: (port, o) => rawConnect(port, { ...o, tls: true }),
    },
  ];
}

/** The server session of a raw peer (matched by the peer's local port: remoteAddr is `127.0.0.1:<localPort>`). */
export async function sessionOf<R extends { session: { readonly remoteAddr: string } }>(
  records: readonly R[],
  raw: { readonly localPort: number },
): Promise<R> {
  const remote = `127.0.0.1:${raw.localPort}`;
  let found: R | undefined;
  await waitFor(() => (found = records.find((r) => r.session.remoteAddr === remote)), 5_000, "server session");
  return found!;
}

/**
 * The newSession callback of a recording server: every session is recorded in `records` (packages, errors, close
 * info) and, unless `echo` is false, every package is written back (failures are recorded by onError like any
 * other). `codec` frames the packages; without one, each chunk (a WebSocket message) is a package.
 */
export function recordSessions(
  records: SessionRecord[],
  behaviour: { echo?: boolean; codec?: Codec<Uint8Array> } = {},
): (session: Session<Uint8Array>) => void {
  return (session) => {
    const record: SessionRecord = { session, packages: [], errors: [] };
    records.push(record);
    if (behaviour.codec) session.setPkgHandler(behaviour.codec);
    session.setEventListener({
      onMessage: (s, pkg) => {
        record.packages.push(pkg.slice());
        if (behaviour.echo !== false) void s.writePkg(pkg).catch(() => {});
      },
      onError: (_s, e) => void record.errors.push(e),
      onClose: (_s, info) => void (record.info = info),
    });
  };
}

/**
 * A TCP/TLS server that records every session (packages, errors, close info). With `echo`, every package is
 * written back (failures are recorded by onError like any other).
 */
export async function recordingServer(
  target: StreamTarget,
  options: Partial<TcpServerOptions> = {},
  behaviour: { echo?: boolean; codec?: Codec<Uint8Array> } = {},
): Promise<{ server: TcpServer<Uint8Array>; records: SessionRecord[] }> {
  const records: SessionRecord[] = [];
  const server = new TcpServer<Uint8Array>({ port: 0, ...target.server(), ...options });
  await server.runEventLoop(recordSessions(records, { ...behaviour, codec: behaviour.codec ?? lengthCodec }));
  return { server, records };
}

/**
 * The newSession callback of a collecting client: each session's packages go to `got`, errors to `errors`, close
 * infos to `closes`. `codec` frames the packages; without one, each chunk (a WebSocket message) is a package.
 */
export function collectSessions(
  got: Map<Session<Uint8Array>, Uint8Array[]>,
  errors: GettyError[],
  codec?: Codec<Uint8Array>,
  closes?: CloseInfo[],
): (session: Session<Uint8Array>) => void {
  return (s) => {
    got.set(s, []);
    if (codec) s.setPkgHandler(codec);
    s.setEventListener({
      onMessage: (s, pkg) => void got.get(s)!.push(pkg.slice()),
      onError: (_s, e) => void errors.push(e),
      onClose: closes && ((_s, info) => void closes.push(info)),
    });
  };
}

/** A client pool with the suite's codec that collects every package per session. */
export async function collectingClient(
  target: StreamTarget,
  port: number,
  options: Partial<TcpClientOptions> = {},
): Promise<{ client: TcpClient<Uint8Array>; got: Map<Session<Uint8Array>, Uint8Array[]>; errors: GettyError[] }> {
  const got = new Map<Session<Uint8Array>, Uint8Array[]>();
  const errors: GettyError[] = [];
  const client = new TcpClient<Uint8Array>({ host: "127.0.0.1", port, ...target.client(), ...options });
  await client.runEventLoop(collectSessions(got, errors, lengthCodec));
  return { client, got, errors };
}

/**
 * Round trips on `session` (an echo peer) for `ms` milliseconds, one package at a time; returns each latency.
 * `inbox` is where the session's onMessage pushes echoed packages.
 */
export async function roundTrips(
  session: Session<Uint8Array>,
  inbox: Uint8Array[],
  ms: number,
  maxCount = 10_000,
): Promise<number[]> {
  const latencies: number[] = [];
  const end = Date.now() + ms;
  for (let i = 0; Date.now() < end && i < maxCount; i++) {
    const want = inbox.length + 1;
    const t0 = performance.now();
    await session.writePkg(seqPkg(i, 16));
    await waitFor(() => inbox.length >= want, 5_000, `echo ${i}`);
    latencies.push(performance.now() - t0);
    await sleep(2);
  }
  return latencies;
}

/** The p-th percentile (0..100) of `xs`. */
export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}

/** Median of `xs`. */
export function median(xs: readonly number[]): number {
  return percentile(xs, 50);
}

// ---- memory -----------------------------------------------------------------------------------------------

/**
 * Samples `process.memoryUsage().rss` every `intervalMs` until stopped, after a full garbage collection when the
 * runtime allows one (see {@link tryGc}), so that the samples show live memory rather than GC lag.
 */
export class RssSampler {
  readonly samples: number[] = [];
  /** Heap used at each sample (for the report). */
  readonly heap: number[] = [];
  #timer: ReturnType<typeof setInterval> | undefined;
  start(intervalMs = 1_000): this {
    this.#sample();
    this.#timer = setInterval(() => this.#sample(), intervalMs);
    return this;
  }
  stop(): number[] {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#sample();
    return this.samples;
  }
  #sample(): void {
    tryGc();
    const m = process.memoryUsage();
    this.samples.push(m.rss);
    this.heap.push(m.heapUsed);
  }
}

/**
 * The no-upward-trend check: median of the last quarter <= median of the first quarter × `factor` + `slack`.
 * Returns the two medians (MiB) for the report.
 */
export function assertNoUpwardTrend(
  samples: readonly number[],
  factor = 1.5,
  slackBytes = 20 * 1024 * 1024,
): { firstMiB: number; lastMiB: number } {
  assert.ok(samples.length >= 4, `need at least 4 samples, got ${samples.length}`);
  const q = Math.max(1, Math.floor(samples.length / 4));
  const first = median(samples.slice(0, q));
  const last = median(samples.slice(samples.length - q));
  const mib = (n: number) => Math.round((n / 1048576) * 10) / 10;
  assert.ok(
    last <= first * factor + slackBytes,
    `RSS grew: last-quarter median ${mib(last)} MiB > first-quarter median ${mib(first)} MiB × ${factor} + ` +
      `${mib(slackBytes)} MiB; samples (MiB): ${samples.map(mib).join(" ")}`,
  );
  return { firstMiB: mib(first), lastMiB: mib(last) };
}

let v8Gc: (() => void) | undefined | null;

/**
 * Runs a full garbage collection when the runtime lets a test do it: `Bun.gc(true)` on Bun; on Deno (V8), the `gc`
 * function that `--expose-gc` makes available, turned on at run time through node:v8 and fetched from a fresh
 * node:vm context. Returns whether a collection ran.
 */
export function tryGc(): boolean {
  const g = globalThis as { Bun?: { gc(force: boolean): void }; gc?: () => void };
  if (g.Bun) {
    g.Bun.gc(true);
    return true;
  }
  if (v8Gc === undefined) {
    v8Gc = null;
    try {
      v8.setFlagsFromString("--expose-gc");
      const f = vm.runInNewContext("typeof gc === 'function' ? gc : undefined");
      if (typeof f === "function") v8Gc = f as () => void;
    } catch {
      // not available: samples then include garbage not yet collected
    }
  }
  (v8Gc ?? g.gc)?.();
  return v8Gc !== null || g.gc !== undefined;
}
