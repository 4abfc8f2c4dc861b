/**
 * The Session: one connection (or one UDP socket / peer) with its codec, listener, timers, statistics and
 * outbound buffer. The same class serves every transport and runtime; it talks to the socket only through
 * the {@link Transport} contract.
 *
 * Lifecycle (a strict state machine): `new` → `open` (after `onOpen`) → `closing` (reads stop, outbound
 * data flushes for up to `waitTime`) → `closed`. Closing calls `onError` when there was an error, then
 * `onClose` exactly once, then the close callbacks in the order added; `session.closed` resolves last.
 *
 * @module
 */
import type { Codec, Reader, ReadResult, Writer } from "./codec.ts";
import { CloseCallbacks } from "./close_callbacks.ts";
import type { EndPoint, EndPointType } from "./endpoint.ts";
import {
  CodecError,
  ConnectionError,
  GettyError,
  HandlerError,
  MessageTooLongError,
  ReadTimeoutError,
  SessionClosedError,
  type WriteTimeoutError,
} from "./errors.ts";
import type { HandlerPool } from "./handler_pool.ts";
import { getLogger } from "./logger.ts";
import { isExactWriter } from "./codec/exact.ts";
import { PACKAGE_COPY_MAX } from "./codec/package_bytes.ts";
import { checkMs } from "./options.ts";
import { NOW_UNKNOWN, Outbound, type OutboundHost, rejected, type WriteResult } from "./outbound.ts";
import { latestReadTime, type ReadTurn, readTurn } from "./read_turn.ts";
import { scheduler } from "./scheduler.ts";
import { checkInt, checkWaterMarks, type SessionConfig } from "./session_options.ts";
import type { CloseFrame, Framing, PeerAddress, Transport, TransportSink } from "./transport.ts";

export type { WriteResult } from "./outbound.ts";

/** Why a session closed; passed to `onClose` and resolved by `session.closed`. */
export interface CloseInfo {
  /** Who ended it: this side (`close()`), the peer (EOF / clean close) or an error. */
  readonly initiator: "local" | "peer" | "error";
  /** The error that closed the session, when there was one. */
  readonly error?: GettyError;
  /** WebSocket close code: received from the peer, or sent by this side. */
  readonly code?: number;
  /** WebSocket close reason. */
  readonly reason?: string;
}

/** Options of a single write. */
export interface WriteOptions {
  /** Overrides the session's writeTimeout for this package, ms (0 = none). */
  readonly timeoutMs?: number;
  /** Destination peer, required on an unconnected UDP endpoint session (getty's UDPContext.PeerAddr). */
  readonly to?: PeerAddress;
}

/** The application's callbacks (getty's EventListener). Every callback is optional. */
export interface EventListener<P> {
  /** The session is ready. Throwing or rejecting refuses the session, which is then closed. */
  onOpen?(session: Session<P>): void | Promise<void>;
  /** The session closed (called exactly once, after `onError` when there was an error). */
  onClose?(session: Session<P>, info: CloseInfo): void;
  /** Something failed: the error that closes the session, or a failed write or handler that does not. */
  onError?(session: Session<P>, error: GettyError): void;
  /** Called every `cronPeriod` ms from the shared timer. */
  onCron?(session: Session<P>): void | Promise<void>;
  /**
   * One decoded package. An async handler is awaited before the session's next package. `from` is the
   * sender on a UDP endpoint session (getty's UDPContext.PeerAddr), undefined elsewhere.
   */
  onMessage?(session: Session<P>, pkg: P, from?: PeerAddress): void | Promise<void>;
  /** Pending outbound bytes crossed the high (false) or low (true) water mark. */
  onWritabilityChange?(session: Session<P>, writable: boolean): void;
}

/** A statistics snapshot. `toString()` gives getty's one-line form. */
export interface SessionStat {
  /** Bytes received from the socket. */
  readonly readBytes: number;
  /** Bytes handed to the socket. */
  readonly writeBytes: number;
  /** Packages decoded. */
  readonly readPkgs: number;
  /** Packages handed to the socket. */
  readonly writePkgs: number;
  /** getty's `Stat()` line. */
  toString(): string;
}

/** The lifecycle state. */
export type SessionState = "new" | "open" | "closing" | "closed";

/** What a session needs from the endpoint that created it. @internal */
export interface SessionHost {
  readonly endpoint: EndPoint;
  readonly pool: HandlerPool;
  /** Called once when the session reached `closed`. */
  sessionClosed(session: Session<never>): void;
  /** Called for every error reported to onError (for endpoint counters). */
  sessionError?(error: GettyError): void;
}

let nextSessionId = 1;
let liveSessions = 0;
/** The empty inbound queue every session starts with (replaced by its own array on the first push). */
const NO_PKGS: unknown[] = [];

/** How a {@link SessionPort} reaches a session's private handlers (set by Session's static block). */
interface PortHandlers {
  data(s: Session<unknown>, chunk: Uint8Array | string, from: PeerAddress | undefined): boolean;
  closed(s: Session<unknown>, error: unknown, frame: CloseFrame | undefined): void;
  pong(s: Session<unknown>): void;
  writabilityChanged(s: Session<unknown>, writable: boolean): void;
  writeFailed(s: Session<unknown>, error: unknown): void;
  writeTimedOut(s: Session<unknown>, error: WriteTimeoutError, midFrame: boolean): void;
  wakeAt(s: Session<unknown>, at: number): void;
}
let portHandlers: PortHandlers;

/** A session's side of its transport and outbound buffer: one object per session instead of a closure per callback. */
class SessionPort implements TransportSink, OutboundHost {
  readonly #s: Session<unknown>;
  constructor(session: Session<unknown>) {
    this.#s = session;
  }
  data(chunk: Uint8Array | string, from?: PeerAddress): boolean {
    return portHandlers.data(this.#s, chunk, from);
  }
  closed(error?: unknown, frame?: CloseFrame): void {
    portHandlers.closed(this.#s, error, frame);
  }
  pong(): void {
    portHandlers.pong(this.#s);
  }
  writabilityChanged(writable: boolean): void {
    portHandlers.writabilityChanged(this.#s, writable);
  }
  writeFailed(error: unknown): void {
    portHandlers.writeFailed(this.#s, error);
  }
  writeTimedOut(error: WriteTimeoutError, midFrame: boolean): void {
    portHandlers.writeTimedOut(this.#s, error, midFrame);
  }
  wakeAt(at: number): void {
    portHandlers.wakeAt(this.#s, at);
  }
}

/** @internal Sessions created and not yet closed, process-wide (for leak checks in tests). */
export function liveSessionCount(): number {
  return liveSessions;
}
const encoder = new TextEncoder();
/** Smallest buffer a session copies a partial frame into (see `#cum`). */
const CUM_MIN = 1024;
/**
 * Largest: a longer pending frame stays where it was read (so a peer that declares large frames and sends little
 * cannot make each session allocate for the whole frame at once).
 */
const CUM_MAX = 64 * 1024;

/**
 * One connection. Sessions are created by servers, clients and {@link createMemorySessionPair}; configure them
 * in the `newSession` callback.
 *
 * @typeParam P the package type the codec produces and accepts.
 */
export class Session<P = Uint8Array> {
  /** Process-unique id. */
  readonly id: number = nextSessionId++;
  /** @internal scheduler bucket. */
  _bucket?: number = undefined;
  /** @internal slot in the scheduler bucket (declared here so scheduling never changes the object's shape). */
  _slot?: number = undefined;

  readonly #transport: Transport;
  readonly #framing: Framing;
  readonly #host: SessionHost;
  /** The endpoint's handler pool when it is bounded (maxConcurrentHandlers); unbounded pools are not consulted. */
  readonly #pool: HandlerPool | undefined;
  #config: SessionConfig;
  readonly #out: Outbound;
  /** Bytes of an incomplete frame, as owned chunks (joined once the frame can be complete). */
  #acc: Uint8Array[] | undefined;
  #accLen = 0;
  /** Bytes the pending frame needs in total (its declared length), 0 when unknown. */
  #need = 0;
  /**
   * With `reuseReadBuffer` on a transport that reuses released reads: where the pending frame's bytes are copied, so
   * the read they came from can be released. Reused while reads keep ending mid-frame; dropped by a read that ends on
   * a frame boundary, or once a package in it is kept.
   */
  #cum: Uint8Array | undefined;
  /** Created on first use: most sessions have no attributes or close callbacks (memory per idle session). */
  #attrs: Map<unknown, unknown> | undefined;
  #callbacks: CloseCallbacks | undefined;
  /** The endpoint's settings until a setter changes one; then this session's own copy. */
  #configOwned = false;
  #name: string;
  #listener: EventListener<P> = {};
  #reader: Reader<P> | undefined;
  #writer: Writer<P> | undefined;
  /** Whether the writer fills every byte it reserves (built-in codecs); else reservations are zeroed first. */
  #writerExact = false;
  /** Whether packages are encoded straight into the outbound slab (stream transport, `encodeInto` writer). */
  #encodeInPlace = false;
  /** Datagrams are encoded into the outbound slab too (each stays a write of its own). */
  #datagramInPlace = false;
  #state: SessionState = "new";
  #started = false;
  #transportDead = false;
  #readPaused = false;
  #error: GettyError | undefined;
  #initiator: CloseInfo["initiator"] = "local";
  #closeFrame: CloseFrame | undefined;
  /** A graceful close that keeps reading until the peer's FIN (see #closeWith). */
  #lingering = false;
  #active = Date.now();
  /** When the last read arrived (ms since epoch); a message read's is folded in from #readTurn when asked. */
  #lastRead = this.#active;
  /**
   * With #readsInTurns: the turn of the latest read not yet folded into #lastRead and #active (a read stamped with
   * a turn instead of a clock read each: see read_turn.ts). Otherwise always undefined.
   */
  #readTurn: ReadTurn | undefined = undefined;
  #nextCron = Infinity;
  /**
   * No write deadline comes before this (the outbound buffer reports each new earliest one through `wakeAt`);
   * it may be stale-early once writes complete, which only costs one extra check.
   */
  #writeDeadline = Infinity;
  /** Whether the transport sends heartbeats on cron ticks (WebSocket). */
  readonly #pings: boolean;
  /** The transport reads over (or detaches) chunks the session released: see {@link #readChunk}. */
  readonly #reclaimsReads: boolean;
  /** The transport's {@link Transport.retainableChunks}: packages may be views of what it hands over. */
  readonly #ownedChunks: boolean;
  /** Reads are stamped with a read turn ({@link Transport.readsInTurns} on a message or datagram transport). */
  readonly #readsInTurns: boolean;
  #closeDeadline = Infinity;
  #readBytes = 0;
  #readPkgs = 0;
  // inbound dispatch
  #inbound: P[] = NO_PKGS as P[];
  /** Senders of the queued packages (datagram sessions only; otherwise stays empty). */
  #inboundFrom: Array<PeerAddress | undefined> = NO_PKGS as undefined[];
  #busy = false;
  #eofPending = false;
  /** True while a read is being handled (`#onData`): writes use the read's timestamp (and on a stream are corked). */
  #inRead = false;
  /** This read's bytes are still referenced by the session (queued package, readable, partial frame). */
  #retained = false;
  /**
   * With reuseReadBuffer, on a transport that reclaims released chunks ({@link Transport.reclaimsReleasedChunks}),
   * during a read: its chunk, whose buffer the transport may read over or detach, so #queueEncoded copies a pending
   * write that is a view of it. Elsewhere it stays unset and the check is skipped: on JavaScriptCore, reading a
   * view's `buffer` costs an allocation.
   */
  #readChunk: Uint8Array | undefined;
  #readable: ReadableStream<P> | undefined;
  #readableController: ReadableStreamDefaultController<P> | undefined;
  #writable: WritableStream<P> | undefined;
  /** `closed`, created on first use; resolved with `#closeInfo`. */
  #closed: Promise<CloseInfo> | undefined;
  #resolveClosed: ((info: CloseInfo) => void) | undefined;
  #closeInfo: CloseInfo | undefined;
  /** What the transport and the outbound buffer call back: one small object, no closures. */
  readonly #port: SessionPort;

  /** @internal Sessions are created by endpoints; use a server, a client or `createMemorySessionPair`. */
  constructor(transport: Transport, host: SessionHost, config: SessionConfig, name: string) {
    this.#transport = transport;
    this.#framing = transport.framing;
    this.#pings = typeof transport.ping === "function";
    this.#reclaimsReads = transport.reclaimsReleasedChunks === true;
    this.#ownedChunks = transport.retainableChunks === true;
    this.#readsInTurns = transport.framing !== "stream" && transport.readsInTurns === true;
    this.#host = host;
    this.#pool = host.pool.limit === Infinity ? undefined : host.pool;
    this.#config = config;
    this.#name = name;
    this.#port = new SessionPort(this as Session<unknown>);
    this.#out = new Outbound(transport, this.#port, config);
    liveSessions++;
  }

  // ---- identity -------------------------------------------------------------------------------------------

  /** The session's name (default from the endpoint kind, e.g. `tcp-session`). */
  get name(): string {
    return this.#name;
  }

  /** Renames the session. */
  setName(name: string): void {
    this.#name = String(name);
  }

  /** The server or client that owns this session. */
  endPoint(): EndPoint {
    return this.#host.endpoint;
  }

  /** Local address, `host:port`. */
  get localAddr(): string {
    return this.#transport.localAddr;
  }

  /** Remote address, `host:port`. */
  get remoteAddr(): string {
    return this.#transport.remoteAddr;
  }

  /** Current lifecycle state. */
  get state(): SessionState {
    return this.#state;
  }

  /** True once the session is closing or closed: no more writes are accepted. */
  isClosed(): boolean {
    return this.#state === "closing" || this.#state === "closed";
  }

  /** Resolves (never rejects) once the session is fully closed, after `onClose` and the close callbacks. */
  get closed(): Promise<CloseInfo> {
    if (this.#closed === undefined) {
      const info = this.#closeInfo;
      this.#closed = info ? Promise.resolve(info) : new Promise((resolve) => (this.#resolveClosed = resolve));
    }
    return this.#closed;
  }

  /** A snapshot of the counters. */
  stat(): SessionStat {
    const s = {
      readBytes: this.#readBytes,
      writeBytes: this.#out.writtenBytes,
      readPkgs: this.#readPkgs,
      writePkgs: this.#out.writtenPkgs,
    };
    const token = this.isClosed() ? "session-closed" : "session";
    const type: EndPointType = this.#host.endpoint.endPointType;
    const line = `${token} {${this.#name}:${type}:${this.id}:${this.localAddr}<->${this.remoteAddr}}, ` +
      `Read Bytes: ${s.readBytes}, Write Bytes: ${s.writeBytes}, Read Pkgs: ${s.readPkgs}, Write Pkgs: ${s.writePkgs}`;
    return { ...s, toString: () => line };
  }

  /**
   * Time of the last complete package (or open), ms since epoch. For a message or datagram on a transport that
   * stamps reads with a read turn (Bun's WebSocket server and UDP sockets; see README, Timers) it is the end of
   * that turn: never older than the package, newer by at most the batch of I/O callbacks it arrived in.
   */
  getActive(): number {
    if (this.#readTurn !== undefined) this.#foldReadTurn(Date.now()); // no clock read on a session without turns
    return this.#active;
  }

  /** Marks the session active now. */
  updateActive(): void {
    this.#active = Date.now();
  }

  // ---- configuration ---------------------------------------------------------------------------------------

  /** Sets the largest accepted package, in bytes. */
  setMaxMsgLen(bytes: number): void {
    this.#ownConfig().maxMsgLen = checkInt("maxMsgLen", bytes, 1);
  }

  /** The largest accepted package, in bytes. */
  get maxMsgLen(): number {
    return this.#config.maxMsgLen;
  }

  /** Sets the callbacks. */
  setEventListener(listener: EventListener<P>): void {
    if (typeof listener !== "object" || listener === null) {
      throw new TypeError("setEventListener: listener must be an object");
    }
    this.#listener = listener;
    this.#reschedule();
  }

  /** Sets both the reader and the writer (getty's SetPkgHandler). */
  setPkgHandler(codec: Codec<P>): void {
    this.#reader = codec;
    this.setWriter(codec);
  }

  /** Sets the reader. Without one, each received chunk is delivered as a `Uint8Array` package. */
  setReader(reader: Reader<P> | undefined): void {
    this.#reader = reader;
  }

  /** Sets the writer. Without one, packages must be `Uint8Array` (or `string`, sent as UTF-8). */
  setWriter(writer: Writer<P> | undefined): void {
    this.#writer = writer;
    this.#writerExact = isExactWriter(writer);
    const inPlace = typeof writer?.encodeInto === "function" && typeof writer.encodedLength === "function";
    this.#encodeInPlace = inPlace && this.#framing === "stream";
    this.#datagramInPlace = inPlace && this.#framing === "datagram";
  }

  /** Sets the cron period in ms (0 = off); takes effect at once. */
  setCronPeriod(ms: number): void {
    this.#ownConfig().cronPeriod = checkMs("cronPeriod", ms, true);
    this.#nextCron = Infinity;
    this.#reschedule();
  }

  /** Sets how long a graceful close waits for outbound data, in ms. */
  setWaitTime(ms: number): void {
    this.#ownConfig().waitTime = checkMs("waitTime", ms, true);
  }

  /** Closes the session when nothing was received for `ms` (0 = off). */
  setReadTimeout(ms: number): void {
    this.#ownConfig().readTimeout = checkMs("readTimeout", ms, true);
    this.#reschedule();
  }

  /** Default timeout for writes, in ms (0 = none). */
  setWriteTimeout(ms: number): void {
    this.#ownConfig().writeTimeout = checkMs("writeTimeout", ms, true);
  }

  /** Sets the outbound water marks and hard cap, in bytes. */
  setWaterMarks(marks: { highWaterMark?: number; lowWaterMark?: number; outboundCap?: number }): void {
    const next = {
      highWaterMark: checkInt("highWaterMark", marks.highWaterMark ?? this.#config.highWaterMark, 1),
      lowWaterMark: checkInt("lowWaterMark", marks.lowWaterMark ?? this.#config.lowWaterMark, 0),
      outboundCap: checkInt("outboundCap", marks.outboundCap ?? this.#config.outboundCap, 1),
    };
    checkWaterMarks("session", next);
    Object.assign(this.#ownConfig(), next);
  }

  /** The settings in force. */
  get config(): Readonly<SessionConfig> {
    return this.#config;
  }

  /** This session's own settings object (copied from the endpoint's on the first change). */
  #ownConfig(): SessionConfig {
    if (!this.#configOwned) {
      this.#configOwned = true;
      this.#config = { ...this.#config };
      this.#out.limits = this.#config;
    }
    return this.#config;
  }

  // ---- attributes and close callbacks ----------------------------------------------------------------------

  /** Reads an attribute (undefined when absent). */
  getAttribute<T = unknown>(key: unknown): T | undefined {
    return this.#attrs?.get(key) as T | undefined;
  }

  /** Sets an attribute; keys may be any value. */
  setAttribute(key: unknown, value: unknown): void {
    (this.#attrs ??= new Map()).set(key, value);
  }

  /** Removes an attribute. */
  removeAttribute(key: unknown): void {
    this.#attrs?.delete(key);
  }

  /**
   * Adds a callback run once after `onClose`. The same (handler, key) replaces the earlier function in place.
   * Ignored once the session is closed.
   */
  addCloseCallback(handler: unknown, key: unknown, fn: () => void): void {
    if (this.#state === "closed" || typeof fn !== "function") return;
    (this.#callbacks ??= new CloseCallbacks()).add(handler, key, fn);
  }

  /** Removes the callback under (handler, key). */
  removeCloseCallback(handler: unknown, key: unknown): void {
    this.#callbacks?.remove(handler, key);
  }

  // ---- writing ---------------------------------------------------------------------------------------------

  /** False while pending outbound bytes are above the high water mark (until they fall below the low one). */
  isWritable(): boolean {
    return this.#out.writable;
  }

  /** Outbound bytes queued or being written. */
  get pendingBytes(): number {
    return this.#out.pendingBytes;
  }

  /**
   * Encodes `pkg` and queues it. Resolves with `{ total, sent }` once every byte is handed to the socket;
   * rejects with a typed error otherwise (the error also reaches `onError`; an unawaited failed write never
   * becomes an unhandled rejection). Everything written in one tick leaves in one socket write.
   * On a WebSocket session each package is exactly one message (a `string` from the writer is a text
   * message); on a UDP session one datagram.
   *
   * @param options a timeout in ms overriding the session's writeTimeout (0 = none), or {@link WriteOptions}
   * (timeout and, on an unconnected UDP endpoint, the destination `to`).
   */
  writePkg(pkg: P, options?: number | WriteOptions): Promise<WriteResult> {
    if (this.isClosed()) return rejected(new SessionClosedError("writePkg: session is closed"));
    try {
      return this.#queuePkg(pkg, options, true)!;
    } catch (error) {
      return this.#writeRejected(asWriteError(error));
    }
  }

  /**
   * Like {@link writePkg} without a promise (Netty's `voidPromise`): the cheapest way to write when the
   * caller does not wait for each package. Returns false when the package was refused (closed session,
   * encode error, outbound cap); every failure, now or later, reaches `onError`.
   */
  send(pkg: P, options?: number | WriteOptions): boolean {
    if (this.isClosed()) return false;
    try {
      // A message without a writer (a WebSocket echo or relay) goes to the outbound buffer as it is: the general
      // path's steps (encoding, destination, options) are nothing for it, but cost a call each.
      if (
        options === undefined && this.#writer === undefined && this.#out.takesMessages &&
        (typeof pkg === "string" || pkg instanceof Uint8Array)
      ) {
        this.#out.enqueueBorrowedMessage(pkg, this.#config.writeTimeout, this.#readNow);
      } else {
        this.#queuePkg(pkg, options, false);
      }
      return true;
    } catch (error) {
      this.#emitError(asWriteError(error));
      return false;
    }
  }

  /** Queues raw bytes, bypassing the writer. */
  writeBytes(bytes: Uint8Array, options?: number | WriteOptions): Promise<WriteResult> {
    return this.#writeBuffers([bytes], options, "writeBytes");
  }

  /** Queues several buffers as one write (one message on message transports). */
  writeBytesArray(...buffers: Uint8Array[]): Promise<WriteResult> {
    return this.#writeBuffers(buffers, undefined, "writeBytesArray");
  }

  #writeBuffers(
    buffers: Uint8Array[],
    options: number | WriteOptions | undefined,
    what: string,
  ): Promise<WriteResult> {
    if (this.isClosed()) return rejected(new SessionClosedError(`${what}: session is closed`));
    try {
      let len = 0;
      for (const b of buffers) {
        if (!(b instanceof Uint8Array)) throw new CodecError(`${what} takes Uint8Arrays`);
        len += b.length;
      }
      const timeout = this.#timeoutOf(options);
      const now = this.#readNow;
      if (this.#framing === "stream") {
        const out = this.#out;
        let off = out.reserve(len);
        const start = off;
        for (const b of buffers) {
          out.target.set(b, off);
          off += b.length;
        }
        return out.commit(start, len, buffers.length, timeout, now, true)!;
      }
      if (buffers.length === 1) return this.#enqueueMessage(buffers[0], 1, timeout, now, options, true, true)!;
      return this.#enqueueMessage(concat(buffers, len), buffers.length, timeout, now, options, true)!;
    } catch (error) {
      return this.#writeRejected(asWriteError(error));
    }
  }

  /** Encodes and queues one package; throws on refusal. */
  #queuePkg(
    pkg: P,
    options: number | WriteOptions | undefined,
    withPromise: boolean,
  ): Promise<WriteResult> | undefined {
    const timeout = this.#timeoutOf(options);
    const now = this.#readNow;
    if (!this.#encodeInPlace) return this.#queueEncoded(pkg, options, timeout, now, withPromise);
    // The fast path (kept small so the engine inlines it): encode straight into the outbound slab.
    const w = this.#writer!;
    const out = this.#out;
    const len = w.encodedLength!(this, pkg);
    const off = out.reserve(len);
    // A pooled slab holds earlier bytes: a writer not known to fill its reservation writes over zeros.
    if (!this.#writerExact) out.target.fill(0, off, off + len);
    w.encodeInto!(this, pkg, out.target, off);
    return out.commit(off, len, 1, timeout, now, withPromise);
  }

  /** {@link #queuePkg} for every writer that does not encode in place, and for packages without a writer. */
  #queueEncoded(
    pkg: P,
    options: number | WriteOptions | undefined,
    timeout: number,
    now: number,
    withPromise: boolean,
  ): Promise<WriteResult> | undefined {
    if (this.#datagramInPlace) {
      // On Bun a small buffer of its own costs less than the view of the slab a datagram in place needs.
      const len = this.#writer!.encodedLength!(this, pkg);
      if (len > PACKAGE_COPY_MAX) return this.#queueDatagram(pkg, len, options, timeout, now, withPromise);
    }
    const w = this.#writer;
    if (!w && this.#framing === "stream" && pkg instanceof Uint8Array) {
      const out = this.#out;
      const off = out.reserve(pkg.length);
      out.target.set(pkg, off);
      return out.commit(off, pkg.length, 1, timeout, now, withPromise);
    }
    let encoded = w ? w.write(this, pkg) : toWire(pkg);
    if (typeof encoded === "string") {
      if (this.#framing !== "message") encoded = encoder.encode(encoded);
    } else if (!(encoded instanceof Uint8Array)) {
      throw new CodecError("writer returned something other than a Uint8Array or string");
    }
    // Bytes that are the caller's own package, or (reuseReadBuffer) part of the buffer the transport reads into
    // next, are copied unless handed over at once.
    const read = this.#readChunk;
    const borrowed = encoded === pkg ||
      (read !== undefined && typeof encoded !== "string" && encoded.buffer === read.buffer);
    return this.#enqueueMessage(encoded, 1, timeout, now, options, withPromise, borrowed);
  }

  /**
   * One datagram encoded straight into the outbound slab, like packages on streams (no buffer per datagram); it
   * still leaves in a write of its own. `len` is its encoded length. Checks in the order of the other path:
   * encoding, destination, size.
   */
  #queueDatagram(
    pkg: P,
    len: number,
    options: number | WriteOptions | undefined,
    timeout: number,
    now: number,
    withPromise: boolean,
  ): Promise<WriteResult> | undefined {
    const w = this.#writer!;
    const to = this.#destinationFor(len, options);
    const out = this.#out;
    const off = out.reserve(len);
    if (!this.#writerExact) out.target.fill(0, off, off + len);
    w.encodeInto!(this, pkg, out.target, off);
    return out.commitDatagram(off, len, to, timeout, now, withPromise);
  }

  /** Queues one message, datagram or (stream transports, slow path) encoded package; `borrowed`: see Outbound. */
  #enqueueMessage(
    bytes: Uint8Array | string,
    pkgs: number,
    timeout: number,
    now: number,
    options: number | WriteOptions | undefined,
    withPromise: boolean,
    borrowed = false,
  ): Promise<WriteResult> | undefined {
    const to = this.#destinationFor(bytes.length, options);
    return this.#out.enqueue(bytes, pkgs, timeout, now, to, withPromise, borrowed);
  }

  /**
   * The time of a write: within a read, the read's timestamp serves every write; elsewhere (and in a read stamped
   * with a turn) the clock is read only if a deadline is needed (the write did not leave at once).
   */
  get #readNow(): number {
    return this.#inRead && this.#readTurn === undefined ? this.#lastRead : NOW_UNKNOWN;
  }

  /** The checked `to` of a write of `len` bytes; throws when it exceeds the transport's write size. */
  #destinationFor(len: number, options: number | WriteOptions | undefined): PeerAddress | undefined {
    const to = typeof options === "object" && options.to !== undefined ? checkPeer(options.to) : undefined;
    const max = this.#transport.maxWriteSize;
    if (max !== undefined && len > max) {
      throw new MessageTooLongError(len, max, "datagram", "the datagram size limit");
    }
    return to;
  }

  #timeoutOf(options: number | WriteOptions | undefined): number {
    const timeoutMs = typeof options === "object" ? options.timeoutMs : options;
    return timeoutMs === undefined ? this.#config.writeTimeout : checkMs("timeoutMs", timeoutMs, true);
  }

  #writeRejected(error: GettyError): Promise<WriteResult> {
    this.#emitError(error);
    return rejected(error);
  }

  static {
    // The port (transport sink and outbound host) reaches the private handlers through these.
    portHandlers = {
      data: (s, chunk, from) => s.#onData(chunk, from),
      closed: (s, error, frame) => s.#onClosed(error, frame),
      pong: (s) => s.updateActive(),
      writabilityChanged: (s, writable) => s.#writabilityChanged(writable),
      writeFailed: (s, error) => s.#writeFailed(error),
      writeTimedOut: (s, error, midFrame) => s.#writeTimedOut(error, midFrame),
      wakeAt: (s, at) => {
        if (at < s.#writeDeadline) s.#writeDeadline = at;
        scheduler.scheduleNoLaterThan(s, at);
      },
    };
  }

  #writabilityChanged(writable: boolean): void {
    this.#call("onWritabilityChange", () => this.#listener.onWritabilityChange?.(this, writable));
  }

  #writeFailed(error: unknown): void {
    this.#transportDead = true;
    const wrapped = wrapConnectionError(error, "write failed");
    if (this.#state === "closing") {
      // Closing gracefully: report the failure, then finish at once (the flush can never complete now).
      this.#error ??= wrapped;
      this.#emitError(wrapped);
      this.#finish();
    } else {
      this.#closeWith(wrapped, "error");
    }
  }

  #writeTimedOut(error: WriteTimeoutError, midFrame: boolean): void {
    // The socket is not taking bytes: flushing more is pointless, so close without the graceful wait.
    if (midFrame) this.#closeWith(error, "error", true);
    else this.#emitError(error);
  }

  // ---- streams ---------------------------------------------------------------------------------------------

  /**
   * The session's packages as a ReadableStream. Packages also reach `onMessage` when one is set; without
   * one they queue here from the start, so nothing is lost before the first read. The stream applies
   * backpressure: the session stops reading from the socket while the stream is full (`inboundQueueLimit`).
   * It closes when the session closes (errors when the session closed with an error).
   */
  get readable(): ReadableStream<P> {
    this.#readable ??= new ReadableStream<P>({
      start: (controller) => {
        this.#readableController = controller;
        if (this.#state === "closed") this.#finishReadable();
      },
      pull: () => this.#maybeResume(),
      cancel: () => {
        this.#readableController = undefined;
        this.#maybeResume();
      },
    }, { highWaterMark: this.#config.inboundQueueLimit });
    return this.#readable;
  }

  /**
   * A WritableStream of packages: each chunk is `writePkg`'d and the stream waits for its completion, so
   * `a.readable.pipeTo(b.writable)` bridges two sessions with backpressure. Closing it closes the session.
   */
  get writable(): WritableStream<P> {
    this.#writable ??= new WritableStream<P>({
      write: async (pkg) => {
        await this.writePkg(pkg);
      },
      close: async () => {
        await this.close();
      },
      abort: async () => {
        await this.close();
      },
    });
    return this.#writable;
  }

  #finishReadable(): void {
    const c = this.#readableController;
    if (!c) return;
    this.#readableController = undefined;
    try {
      if (this.#error && this.#initiator === "error") c.error(this.#error);
      else c.close();
    } catch {
      // already closed or errored by the consumer
    }
  }

  // ---- lifecycle -------------------------------------------------------------------------------------------

  /**
   * @internal Runs `newSession`, then `onOpen`, then starts reading. Resolves true when the session is open,
   * false when it was refused (it is then closing).
   */
  async _open(newSession?: (session: Session<P>) => void | Promise<void>): Promise<boolean> {
    try {
      const r = newSession?.(this);
      // As for onOpen below: a session closed meanwhile does not wait for a callback that never settles.
      if (r && typeof r.then === "function") await Promise.race([r, this.closed]);
    } catch (error) {
      this.#closeWith(new HandlerError("newSession", error), "error");
      return false;
    }
    if (this.#state !== "new") return false;
    this.#state = "open";
    try {
      const r = this.#listener.onOpen?.(this);
      // A session closed while onOpen is pending (server.close(), client.close()) does not wait for it.
      if (r && typeof r.then === "function") await Promise.race([r, this.closed]);
    } catch (error) {
      this.#closeWith(new HandlerError("onOpen", error), "error");
      return false;
    }
    if (this.#state !== "open") return false;
    this.#started = true;
    this.#lastRead = this.#active = Date.now();
    getLogger().debug("session open", {
      session: this.id,
      name: this.#name,
      local: this.localAddr,
      remote: this.remoteAddr,
    });
    this.#reschedule();
    if (this.#state !== "open") return false;
    this.#transport.start(this.#port);
    return this.#state === "open";
  }

  /**
   * Closes the session gracefully: stops reading, lets queued writes flush for up to `waitTime` ms, then
   * releases the connection. Resolves once closed. Idempotent.
   */
  close(): Promise<CloseInfo> {
    this.#closeWith(undefined, "local");
    return this.closed;
  }

  #closeWith(error: GettyError | undefined, initiator: CloseInfo["initiator"], force = false): void {
    if (this.#state === "closed") return;
    if (this.#state === "closing") {
      // An error while lingering (bad input, broken connection) ends the linger at once.
      if (this.#lingering && (error || force)) {
        this.#lingering = false;
        if (error && !this.#error) {
          this.#error = error;
          this.#emitError(error);
        }
        this.#finish();
      }
      return;
    }
    this.#state = "closing";
    this.#initiator = initiator;
    if (error) {
      this.#error = error;
      this.#emitError(error);
    }
    // A graceful local close of a stream lingers (see Transport.closeWrite): flush, send FIN, and keep reading
    // until the peer's FIN, so what the peer wrote before it saw ours is still delivered, not reset away.
    const linger = !error && !force && initiator === "local" && this.#started && !this.#transportDead &&
      this.#framing === "stream" && this.#transport.closeWrite !== undefined && this.#config.waitTime > 0;
    if (!linger) {
      this.#dropInbound();
      if (this.#started && !this.#transportDead) this.#transport.pause();
      if (force || this.#transportDead || this.#out.pendingBytes === 0 || this.#config.waitTime === 0) {
        this.#finish();
        return;
      }
    }
    this.#closeDeadline = Date.now() + this.#config.waitTime;
    this.#schedule(this.#closeDeadline);
    if (linger) {
      this.#lingering = true;
      this.#out.idle().then(() => {
        if (this.#state === "closing" && !this.#transportDead) this.#transport.closeWrite!();
      });
      return; // finished by the peer's FIN (sink.closed) or at the deadline
    }
    this.#out.idle().then(() => this.#finish());
  }

  /** Whether received data is still decoded and delivered: while open, and while lingering in a close. */
  get #reading(): boolean {
    return this.#state === "open" || (this.#state === "closing" && this.#lingering);
  }

  #finish(): void {
    if (this.#state === "closed") return;
    this.#state = "closed";
    liveSessions--;
    scheduler.cancel(this);
    const sent = this.#closeFrame === undefined ? closeFrameFor(this.#error) : undefined;
    this.#transport.close(sent?.code, sent?.reason);
    this.#out.failAll(new SessionClosedError("session closed before the write was sent", { cause: this.#error }));
    this.#acc = undefined;
    this.#accLen = 0;
    this.#cum = undefined;
    this.#finishReadable();
    const frame = this.#closeFrame ?? (this.#framing === "message" ? sent : undefined);
    const info: CloseInfo = {
      initiator: this.#initiator,
      ...(this.#error ? { error: this.#error } : {}),
      ...(frame?.code !== undefined ? { code: frame.code } : {}),
      ...(frame?.reason !== undefined ? { reason: frame.reason } : {}),
    };
    getLogger().debug("session closed", {
      session: this.id,
      initiator: info.initiator,
      error: info.error?.code,
      stat: String(this.stat()),
    });
    this.#call("onClose", () => this.#listener.onClose?.(this, info), false);
    this.#callbacks?.runAll((error) =>
      getLogger().warn("close callback threw", { session: this.id, error: new HandlerError("closeCallback", error) })
    );
    this.#attrs?.clear();
    try {
      this.#host.sessionClosed(this as unknown as Session<never>);
    } finally {
      this.#closeInfo = info;
      this.#resolveClosed?.(info);
    }
  }

  // ---- timers ----------------------------------------------------------------------------------------------

  /** @internal Called by the shared scheduler. */
  onTimer(now: number): void {
    if (this.#state === "closing") {
      if (now >= this.#closeDeadline) this.#finish();
      else this.#schedule(this.#closeDeadline);
      return;
    }
    if (this.#state !== "open") return;
    const c = this.#config;
    this.#foldReadTurn(now);
    // Idle means the peer sent nothing: not while onOpen runs, nor while this side paused reading.
    if (c.readTimeout > 0 && this.#started && !this.#readPaused && now - this.#lastRead >= c.readTimeout) {
      this.#closeWith(new ReadTimeoutError(c.readTimeout), "error");
      return;
    }
    // The outbound buffer (another object, cold in a large server) is only asked when a write deadline may be due.
    let writeDeadline = this.#writeDeadline;
    if (writeDeadline <= now) {
      writeDeadline = this.#writeDeadline = this.#out.checkTimeouts(now);
      if (this.#state !== "open") return;
    }
    if (this.#nextCron <= now) {
      this.#nextCron = now + c.cronPeriod;
      if (this.#pings) this.#transport.ping!();
      const onCron = this.#listener.onCron;
      if (onCron) {
        // Called directly (no closure per tick): this runs for every session every period.
        try {
          const r = onCron.call(this.#listener, this) as Promise<void> | undefined;
          if (r && typeof r.then === "function") {
            r.then(undefined, (e: unknown) => this.#reportHandlerError("onCron", e, true));
          }
        } catch (error) {
          this.#reportHandlerError("onCron", error, true);
        }
        if (this.#state !== "open") return;
      }
    }
    this.#reschedule(now, writeDeadline);
  }

  /** Re-arms the shared timer for the next of: cron, read timeout, write timeout. */
  #reschedule(now = Date.now(), writeDeadline = this.#writeDeadline): void {
    if (this.#state !== "open") return;
    const c = this.#config;
    if (!this.#started) {
      // Before reading starts (newSession / onOpen) only write timeouts are watched.
      if (writeDeadline !== Infinity) this.#schedule(writeDeadline);
      return;
    }
    if (c.cronPeriod > 0 && (this.#listener.onCron || this.#pings)) {
      if (this.#nextCron === Infinity) this.#nextCron = now + c.cronPeriod;
    } else {
      this.#nextCron = Infinity;
    }
    let at = this.#nextCron;
    this.#foldReadTurn(now);
    if (c.readTimeout > 0 && !this.#readPaused) at = Math.min(at, this.#lastRead + c.readTimeout);
    if (writeDeadline < at) at = writeDeadline;
    if (at === Infinity) scheduler.cancel(this);
    else this.#schedule(at);
  }

  #schedule(at: number): void {
    scheduler.schedule(this, at);
  }

  /**
   * Folds the latest message read's turn, if any, into #lastRead and #active: the latest time that read can have
   * arrived (the turn's end, or `now` while it is open), so a read timeout never fires early.
   */
  #foldReadTurn(now: number): void {
    const turn = this.#readTurn;
    if (turn === undefined) return;
    const at = latestReadTime(turn, now);
    this.#readTurn = undefined;
    if (at > this.#lastRead) this.#lastRead = at;
    if (at > this.#active) this.#active = at;
  }

  // ---- reading ---------------------------------------------------------------------------------------------

  #onClosed(error: unknown, frame: CloseFrame | undefined): void {
    if (frame) this.#closeFrame = frame;
    if (error !== undefined) this.#transportDead = true;
    else if (this.#busy || this.#inbound.length > 0) {
      this.#eofPending = true; // a clean end waits until what the peer sent before is handled (#afterInbound)
      return;
    }
    // While lingering, the peer's FIN (or failure) ends the close that is under way.
    if (this.#lingering) this.#finish();
    else if (error === undefined) this.#closeWith(undefined, "peer");
    else this.#closeWith(wrapConnectionError(error, "connection failed"), "error");
  }

  #onData(chunk: Uint8Array | string, from?: PeerAddress): boolean {
    if (!this.#reading) return false;
    // On a stream, everything the handlers write while this read is handled leaves in one socket write, at the
    // end. Messages and datagrams are writes of their own whatever is corked, so they skip it.
    const stream = this.#framing === "stream";
    // A message or datagram of a runtime that delivers many per turn is stamped with the turn; others read the clock.
    if (this.#readsInTurns) this.#readTurn = readTurn();
    else this.#lastRead = Date.now();
    this.#readBytes += chunk.length;
    const nested = this.#inRead;
    // Like `nested`: a read handled inside another one leaves the outer read its own state.
    const outerRetained = this.#retained;
    const outerChunk = this.#readChunk;
    this.#inRead = true;
    if (stream) this.#out.cork();
    this.#retained = false;
    if (this.#reclaimsReads && this.#config.reuseReadBuffer && typeof chunk !== "string") this.#readChunk = chunk;
    let released = false;
    try {
      if (!stream) this.#decodeMessage(chunk, from);
      else this.#decodeChunk(typeof chunk === "string" ? encoder.encode(chunk) : chunk);
    } finally {
      this.#inRead = nested;
      if (stream) this.#out.uncork();
      // With reuseReadBuffer, the transport may read over these bytes unless the session still holds a view of
      // them: a partial frame, a queued package, `readable`, or an async onMessage still running (#busy).
      released = this.#config.reuseReadBuffer && !this.#retained && !this.#busy;
      if (this.#accLen === 0) this.#cum = undefined;
      this.#retained = outerRetained;
      this.#readChunk = outerChunk; // not kept past the read (nothing may alias it afterwards)
    }
    return released;
  }

  /** One slice of a byte stream: joined with a pending partial frame if any, then decoded. */
  #decodeChunk(chunk: Uint8Array): void {
    // Packages may be views of the bytes the reader sees, so those bytes must be ours: a transport that
    // reuses its read buffer costs one copy per read, merged with any pending partial frame.
    const owned = this.#ownedChunks;
    if (!this.#reader) {
      this.#deliver((owned ? chunk : chunk.slice()) as P, undefined);
      return;
    }
    let data: Uint8Array;
    if (this.#accLen === 0) {
      data = owned ? chunk : chunk.slice();
    } else if (this.#need > 0 && this.#accLen + chunk.length > this.#need && owned) {
      // The pending frame's length is known: join only the bytes that complete it, decode that frame, then
      // decode the rest of the chunk in place (no copy of the whole chunk).
      const take = this.#need - this.#accLen;
      const own = this.#ownsPending(this.#need);
      let frame: Uint8Array;
      if (own) {
        // The pending bytes are in the session's own buffer, sized to the frame: complete it there.
        frame = this.#cumFor(this.#need, this.#acc![0]);
        frame.set(chunk.subarray(0, take), this.#accLen);
        frame = frame.subarray(0, this.#need);
      } else {
        this.#acc!.push(chunk.subarray(0, take));
        frame = concat(this.#acc!, this.#need);
      }
      this.#acc = undefined;
      this.#accLen = 0;
      this.#need = 0;
      this.#decodeFrom(frame);
      if (own) this.#letGoOfCumIfKept();
      if (!this.#reading) return;
      data = chunk.subarray(take);
      if (this.#accLen > 0) {
        // The reader left part of that frame undecoded (it declared less than it needed): keep it in front.
        this.#acc!.push(data);
        data = concat(this.#acc!, this.#accLen + data.length);
        this.#acc = undefined;
        this.#accLen = 0;
      }
    } else if (this.#ownsPending(Math.max(this.#accLen + chunk.length, this.#need))) {
      // The session's own buffer holds the pending bytes: add this chunk's there, so the read can be released.
      const pending = this.#acc![0];
      const total = this.#accLen + chunk.length;
      data = this.#cumFor(Math.max(total, this.#need), pending);
      data.set(chunk, this.#accLen);
      data = data.subarray(0, total);
      this.#acc = undefined;
      this.#accLen = 0;
      if (total < this.#need) {
        this.#acc = [data];
        this.#accLen = total;
        return; // the pending frame is still incomplete: nothing to parse yet
      }
      this.#decodeFrom(data);
      this.#letGoOfCumIfKept();
      return;
    } else {
      this.#cum = undefined; // #acc may hold a view of it now
      this.#acc!.push(owned ? chunk : chunk.slice());
      this.#accLen += chunk.length;
      if (this.#accLen < this.#need) {
        this.#retained = true;
        return; // the pending frame is still incomplete: nothing to parse yet
      }
      data = concat(this.#acc!, this.#accLen);
      this.#acc = undefined;
      this.#accLen = 0;
    }
    this.#decodeFrom(data);
  }

  /** Decodes every complete package of `data` (owned bytes); keeps an incomplete tail for the next read. */
  #decodeFrom(data: Uint8Array): void {
    const max = this.#config.maxMsgLen;
    this.#need = 0;
    const reader = this.#reader!;
    let off = 0;
    while (off < data.length && this.#reading) {
      const restLength = data.length - off;
      let r: ReadResult<P>;
      try {
        r = reader.readAt ? reader.readAt(this, data, off) : reader.read(this, off === 0 ? data : data.subarray(off));
      } catch (error) {
        this.#closeWith(error instanceof GettyError ? error : new CodecError("read failed", { cause: error }), "error");
        return;
      }
      if (r === undefined) {
        if (restLength > max) {
          this.#closeWith(new MessageTooLongError(restLength, max, "undelimited input"), "error");
          return;
        }
        break;
      }
      if (!("pkg" in r)) {
        const declared = r.declared;
        if (declared > max) {
          this.#closeWith(new MessageTooLongError(declared, max), "error");
          return;
        }
        if (!(declared > restLength)) {
          this.#closeWith(new CodecError(`reader declared ${declared} bytes but ${restLength} are buffered`), "error");
          return;
        }
        this.#need = declared;
        break;
      }
      const length = r.length;
      if (!Number.isInteger(length) || length < 1 || length > restLength) {
        this.#closeWith(new CodecError(`reader consumed ${length} of ${restLength} bytes`), "error");
        return;
      }
      if (length > max) {
        this.#closeWith(new MessageTooLongError(length, max), "error");
        return;
      }
      off += length;
      this.#deliver(r.pkg, undefined);
    }
    if (!this.#reading || off === data.length) return;
    const tail = off === 0 ? data : data.subarray(off);
    this.#accLen = tail.length; // #acc is empty here: what was pending is part of `data`
    const size = Math.max(this.#need, tail.length);
    if (size <= CUM_MAX && this.#copiesTails()) {
      // Copied to the session's own buffer (sized to the whole frame when declared), so the read can be released.
      const cum = this.#cumFor(size, tail);
      this.#acc = [cum.subarray(0, tail.length)];
    } else {
      this.#retained = true;
      this.#acc = [tail];
    }
  }

  /** Whether a partial frame is copied out of the read (reuseReadBuffer on a transport that reuses released reads). */
  #copiesTails(): boolean {
    return this.#reclaimsReads && this.#ownedChunks && this.#config.reuseReadBuffer;
  }

  /** Whether the pending frame, `size` bytes once joined, is (and stays) in the session's own buffer. */
  #ownsPending(size: number): boolean {
    return size <= CUM_MAX && this.#acc!.length === 1 && this.#copiesTails();
  }

  /** After decoding from the session's own buffer: a package in it that is kept (queued, readable, async) keeps it. */
  #letGoOfCumIfKept(): void {
    if (this.#retained || this.#busy) this.#cum = undefined;
  }

  /**
   * The session's buffer for a pending frame of `size` bytes, holding `pending`'s bytes at its start: the current
   * one when it is large enough and `pending` is already there, else a new one (never written over while a view of
   * it may be kept: see `#cum`).
   */
  #cumFor(size: number, pending: Uint8Array): Uint8Array {
    const cum = this.#cum;
    if (cum !== undefined && cum.length >= size) {
      if (pending.buffer !== cum.buffer) {
        cum.set(pending);
        return cum;
      }
      if (pending.byteOffset === 0) return cum;
      // Further into it: a package before it may still be in use this read, so it is not written over.
    }
    const fresh = new Uint8Array(Math.max(size, CUM_MIN));
    fresh.set(pending);
    return (this.#cum = fresh);
  }

  /**
   * One whole message or datagram. Bad input closes a message session (WebSocket: 1009 / 1007) but only drops
   * the datagram on a datagram session (reported through onError), so one bad peer cannot stop a UDP endpoint.
   */
  #decodeMessage(message: Uint8Array | string, from: PeerAddress | undefined): void {
    const max = this.#config.maxMsgLen;
    if (message.length > max) return this.#badMessage(new MessageTooLongError(message.length, max, "message"));
    if (message.length === 0 && this.#framing === "datagram") {
      const peer = from ? `${from.hostname}:${from.port}` : "peer";
      return this.#badMessage(new CodecError(`empty datagram from ${peer} dropped`));
    }
    // Packages may be views of the bytes (see Reader), so a reused read buffer is copied once.
    const owned = this.#ownedChunks;
    if (!this.#reader) {
      this.#deliver((typeof message === "string" || owned ? message : message.slice()) as P, from);
      return;
    }
    const bytes = typeof message === "string" ? encoder.encode(message) : owned ? message : message.slice();
    let r: ReadResult<P>;
    try {
      r = this.#reader.read(this, bytes);
    } catch (error) {
      return this.#badMessage(error instanceof GettyError ? error : new CodecError("read failed", { cause: error }));
    }
    if (r === undefined || !("pkg" in r)) {
      return this.#badMessage(
        new CodecError(`${this.#framing} of ${bytes.length} bytes does not hold a whole package`),
      );
    }
    if (r.length !== bytes.length) {
      return this.#badMessage(
        new CodecError(`package used ${r.length} of the ${bytes.length} bytes of the ${this.#framing}`),
      );
    }
    this.#deliver(r.pkg, from);
  }

  /** A message or datagram that cannot be delivered: a datagram is dropped (reported), a message closes. */
  #badMessage(error: GettyError): void {
    if (this.#framing === "datagram") this.#emitError(error);
    else this.#closeWith(error, "error");
  }

  #deliver(pkg: P, from: PeerAddress | undefined): void {
    this.#readPkgs++;
    if (this.#readTurn === undefined) this.#active = this.#lastRead; // else folded in from the turn when asked
    const onMessage = this.#listener.onMessage;
    if (!onMessage || this.#readableController !== undefined) this.#toReadable(pkg, onMessage);
    if (!onMessage) return;
    if (!this.#busy && this.#inbound.length === 0 && (this.#pool === undefined || this.#pool.tryAcquire())) {
      this.#handle(pkg, from);
    } else {
      this.#queueInbound(pkg, from);
    }
  }

  /** Enqueues `pkg` in `readable`; with no onMessage, `readable` is created now if needed (backpressure). */
  #toReadable(pkg: P, onMessage: unknown): void {
    if (!onMessage && !this.#readable) void this.readable;
    const controller = this.#readableController;
    if (controller === undefined) return;
    this.#retained = true;
    controller.enqueue(pkg);
    if ((controller.desiredSize ?? 1) <= 0) this.#pauseRead();
  }

  /** Keeps `pkg` for onMessage while a handler runs, earlier packages wait, or the pool has no free slot. */
  #queueInbound(pkg: P, from: PeerAddress | undefined): void {
    this.#retained = true;
    if (this.#inbound === NO_PKGS) this.#inbound = [];
    this.#inbound.push(pkg);
    if (from !== undefined || this.#inboundFrom.length > 0) {
      if (this.#inboundFrom === NO_PKGS) this.#inboundFrom = [];
      this.#inboundFrom.length = this.#inbound.length - 1;
      this.#inboundFrom.push(from);
    }
    if (this.#inbound.length >= this.#config.inboundQueueLimit) this.#pauseRead();
    if (!this.#busy) this.#waitForSlot();
  }

  /** Runs onMessage for `pkg` while holding a pool slot; releases it when done. */
  #handle(pkg: P, from: PeerAddress | undefined): void {
    let result: void | Promise<void>;
    try {
      result = this.#listener.onMessage!(this, pkg, from);
    } catch (error) {
      this.#pool?.release();
      this.#emitError(new HandlerError("onMessage", error));
      return;
    }
    if (result && typeof result.then === "function") this.#awaitHandler(result);
    else this.#pool?.release();
  }

  /** An async onMessage: the next package waits until it settles. */
  #awaitHandler(result: Promise<void>): void {
    this.#busy = true;
    result.then(
      () => this.#handled(),
      (error) => {
        this.#emitError(new HandlerError("onMessage", error));
        this.#handled();
      },
    );
  }

  #handled(): void {
    this.#pool?.release();
    this.#busy = false;
    this.#drainInbound();
  }

  #waitForSlot(): void {
    this.#busy = true;
    const granted = () => {
      this.#busy = false;
      if (this.#inbound.length === 0) {
        this.#pool?.release();
        this.#afterInbound();
        return;
      }
      this.#handle(this.#inbound.shift() as P, this.#inboundFrom.shift());
      if (!this.#busy) this.#drainInbound();
    };
    if (this.#pool) this.#pool.enqueue(granted);
    else queueMicrotask(granted); // an unbounded pool has a slot at once
  }

  #drainInbound(): void {
    while (!this.#busy && this.#inbound.length > 0) {
      if (!this.#reading && !this.#eofPending) {
        this.#dropInbound();
        break;
      }
      if (this.#pool !== undefined && !this.#pool.tryAcquire()) {
        this.#waitForSlot();
        return;
      }
      this.#handle(this.#inbound.shift() as P, this.#inboundFrom.shift());
    }
    if (!this.#busy) this.#afterInbound();
  }

  /** Forgets the packages still waiting for onMessage (the session stopped reading). */
  #dropInbound(): void {
    this.#inbound = NO_PKGS as P[];
    this.#inboundFrom = NO_PKGS as undefined[];
  }

  #afterInbound(): void {
    if (this.#inbound.length > 0) return;
    if (this.#eofPending) {
      this.#eofPending = false;
      if (this.#lingering) this.#finish();
      else this.#closeWith(undefined, "peer");
      return;
    }
    this.#maybeResume();
  }

  #pauseRead(): void {
    if (this.#readPaused) return;
    this.#readPaused = true;
    this.#transport.pause();
  }

  #maybeResume(): void {
    if (!this.#readPaused || !this.#reading) return;
    if (this.#inbound.length >= this.#config.inboundQueueLimit) return;
    if (this.#readableController && (this.#readableController.desiredSize ?? 1) <= 0) return;
    this.#readPaused = false;
    const now = Date.now();
    this.#foldReadTurn(now);
    this.#lastRead = now;
    this.#transport.resume();
  }

  // ---- reporting -------------------------------------------------------------------------------------------

  #emitError(error: GettyError): void {
    if (this.#state === "closed") return;
    this.#host.sessionError?.(error);
    this.#call("onError", () => this.#listener.onError?.(this, error), false);
  }

  /** Calls a listener callback; a throw (or rejection) is reported through onError unless `report` is false. */
  #call(name: string, fn: () => unknown, report = true): void {
    try {
      const r = fn() as Promise<unknown> | undefined;
      if (r && typeof r.then === "function") {
        r.then(undefined, (error: unknown) => this.#reportHandlerError(name, error, report));
      }
    } catch (error) {
      this.#reportHandlerError(name, error, report);
    }
  }

  #reportHandlerError(name: string, error: unknown, report: boolean): void {
    const wrapped = new HandlerError(name, error);
    if (report && this.#state !== "closed") this.#emitError(wrapped);
    else getLogger().warn(`${name} threw`, { session: this.id, error: wrapped });
  }
}

function concat(parts: Uint8Array[], length: number): Uint8Array {
  const out = new Uint8Array(length);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

function asWriteError(error: unknown): GettyError {
  return error instanceof GettyError ? error : new CodecError("encode failed", { cause: error });
}

/** A package written without a writer, as it goes to the wire (the caller's bytes, not a copy). */
function toWire(pkg: unknown): Uint8Array | string {
  if (pkg instanceof Uint8Array) return pkg;
  if (typeof pkg === "string") return pkg;
  throw new CodecError("no writer set: packages must be Uint8Array or string (set a codec with setPkgHandler)");
}

function checkPeer(to: PeerAddress): PeerAddress {
  if (typeof to !== "object" || to === null || typeof to.hostname !== "string" || !Number.isInteger(to.port)) {
    throw new CodecError("write option `to` must be { hostname, port }");
  }
  return to;
}

/** The WebSocket close frame this side sends for a close caused by `error` (ignored by other transports). */
function closeFrameFor(error: GettyError | undefined): CloseFrame {
  if (!error) return { code: 1000, reason: "" };
  if (error instanceof MessageTooLongError) return { code: 1009, reason: "message too big" };
  if (error instanceof CodecError) return { code: 1007, reason: "invalid payload" };
  if (error instanceof ReadTimeoutError) return { code: 1001, reason: "read timeout" };
  return { code: 1011, reason: error.code };
}

function wrapConnectionError(error: unknown, what: string): GettyError {
  if (error instanceof GettyError) return error;
  const detail = error instanceof Error
    ? `${(error as { code?: string }).code ?? error.name}: ${error.message}`
    : String(error);
  return new ConnectionError(`${what}: ${detail}`, { cause: error });
}
