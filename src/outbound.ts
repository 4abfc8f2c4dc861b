/**
 * The per-session outbound buffer: Netty-style writability with high and low water marks, a hard cap past
 * which writes are refused, write completion per package, write timeouts, and coalescing — everything queued
 * in one tick leaves in one socket write (getty's one write(2) per package costs it ~94 % of throughput).
 *
 * On stream transports packages are encoded straight into a slab (see `reserve`), so a batch of small
 * packages is usually one contiguous range of the slab, written as such (`Transport.writeRange`) where the
 * transport can: no per-package buffer, no copy to join them, no view per write. Datagrams
 * are encoded into the slab as well (`commitDatagram`), each still a write of its own. Slabs come
 * from a process-wide pool (slab_pool.ts), sized to the traffic, and go back once written: an idle session
 * holds none. While the session handles a read (`cork`), nothing is flushed; `uncork` then writes everything
 * at once, synchronously (Netty's flush at `channelReadComplete`). Other writes flush in a microtask.
 * Writes without a promise (`send`) skip the promise machinery entirely (Netty's `voidPromise`).
 *
 * @module
 */
import { SessionBlockedError, WriteTimeoutError } from "./errors.ts";
import { giveSlab, MAX_SLAB_BYTES, takeSlab } from "./slab_pool.ts";
import type { Framing, PeerAddress, Transport } from "./transport.ts";

/** The outcome of a successful write: bytes encoded and bytes handed to the socket (always equal). */
export interface WriteResult {
  /** Encoded size of the package, in bytes. */
  readonly total: number;
  /** Bytes handed to the socket. */
  readonly sent: number;
}

/** Water marks and cap, in bytes. */
export interface OutboundLimits {
  readonly highWaterMark: number;
  readonly lowWaterMark: number;
  readonly outboundCap: number;
}

/**
 * The `now` a writer passes when it has not read the clock: the buffer reads it only when a deadline is needed
 * (a write with a timeout that does not complete at once), so a write that leaves at once costs no clock read.
 */
export const NOW_UNKNOWN = -1;

/** The deadline of a write with `timeoutMs` (0 = none) issued at `now` ({@link NOW_UNKNOWN}: read the clock). */
function deadlineOf(timeoutMs: number, now: number): number {
  if (timeoutMs <= 0) return Infinity;
  return (now === NOW_UNKNOWN ? Date.now() : now) + timeoutMs;
}

/** What the outbound buffer tells its session. */
export interface OutboundHost {
  /** Writability changed (pending bytes crossed a water mark). */
  writabilityChanged(writable: boolean): void;
  /** The transport failed a write: the connection is broken. */
  writeFailed(error: unknown): void;
  /** A write timed out: reported, and when `midFrame` the session must close. */
  writeTimedOut(error: WriteTimeoutError, midFrame: boolean): void;
  /** Asks for `checkTimeouts` to run at `at` (ms since epoch). */
  wakeAt(at: number): void;
}

/** One queued write: the bytes `buf[start, end)` (or a whole text message) and its completion. */
interface Pending {
  buf: Uint8Array | string;
  start: number;
  /** End of the bytes; grows when later promise-less writes are merged into this entry. */
  end: number;
  /** Destination of a datagram on an unconnected socket. */
  to: PeerAddress | undefined;
  pkgs: number;
  timeoutMs: number;
  deadline: number;
  /** Absent for writes without a promise (`send`). */
  promise?: Promise<WriteResult>;
  resolve?: (result: WriteResult) => void;
  reject?: (error: Error) => void;
}

/** Largest coalesced write for stream transports; a single larger package is written alone. */
const MAX_BATCH = 256 * 1024;

function noop(): void {}

const EMPTY = new Uint8Array(0);

/** Creates an already-rejected promise that is marked handled (never an unhandled rejection). */
export function rejected<T>(error: Error): Promise<T> {
  const p = Promise.reject(error);
  p.catch(noop);
  return p;
}

/**
 * A promise-less entry and an empty queue array that a batch written at once left behind: the next write of any
 * session takes them instead of allocating. Reads are handled one after another, so one of each is enough for
 * a server echoing read after read; they live here, not in the session, so an idle session holds neither.
 */
let freeEntry: Pending | undefined;
let spareQueue: Pending[] | undefined;

/** Outbound buffers waiting for the shared microtask flush (one microtask for every session with writes). */
let toFlush: Outbound[] = [];
let flushScheduled = false;

function flushAll(): void {
  flushScheduled = false;
  const list = toFlush;
  toFlush = [];
  for (let i = 0; i < list.length; i++) list[i].flushQueued();
}

function size(p: Pending): number {
  return p.end - p.start;
}

/** The outbound queue of one session. */
export class Outbound {
  readonly #transport: Transport;
  readonly #framing: Framing;
  /** The transport is done with a chunk once `write` returns ({@link Transport.writeTakesCopy}). */
  readonly #takesCopy: boolean;
  /**
   * A contiguous batch goes to {@link Transport.writeRange}: stream transports that have it (a datagram's
   * destination and a text message always go through `write`).
   */
  readonly #writesRanges: boolean;
  readonly #host: OutboundHost;
  limits: OutboundLimits;
  #queue: Pending[] = [];
  /**
   * The last queued entry while a promise-less write right behind it in the slab may extend it (stream
   * transports; see {@link commit}). Kept here so that `send` in a loop touches no array; cleared whenever the
   * queue is taken or rebuilt.
   */
  #tail: Pending | undefined;
  #inFlight: Pending[] | undefined;
  #pending = 0;
  #writable = true;
  #flushQueued = false;
  #nextDeadline = Infinity;
  #idleWaiters: Array<() => void> | undefined;
  #failed = false;
  /** Where `reserve` placed the next package: the slab or a dedicated buffer. */
  #target: Uint8Array = EMPTY;
  #slab: Uint8Array | undefined;
  #slabUsed = 0;
  /** Bytes of the last flushed batch: the next slab is sized from it. */
  #lastBatch = 0;
  /** Nesting depth of `cork()`: while above 0, writes wait for `uncork()` instead of a microtask. */
  #corked = 0;
  /** Bytes and packages handed to the socket (counted here, not reported per write: the hot path stays short). */
  #writtenBytes = 0;
  #writtenPkgs = 0;

  /** Creates the buffer for `transport`. */
  constructor(transport: Transport, host: OutboundHost, limits: OutboundLimits) {
    this.#transport = transport;
    this.#framing = transport.framing;
    this.#takesCopy = transport.writeTakesCopy === true;
    this.#writesRanges = this.#framing === "stream" && typeof transport.writeRange === "function";
    this.#host = host;
    this.limits = limits;
  }

  /** Bytes handed to the socket so far. */
  get writtenBytes(): number {
    return this.#writtenBytes;
  }

  /** Packages handed to the socket so far. */
  get writtenPkgs(): number {
    return this.#writtenPkgs;
  }

  /** Bytes queued or in flight. */
  get pendingBytes(): number {
    return this.#pending;
  }

  /** False between crossing the high water mark and falling below the low one. */
  get writable(): boolean {
    return this.#writable;
  }

  /** Throws {@link SessionBlockedError} when `len` more bytes would exceed the cap. */
  checkCap(len: number): void {
    const cap = this.limits.outboundCap;
    if (this.#pending + len > cap) throw new SessionBlockedError(this.#pending, cap, len);
  }

  /**
   * Reserves `len` bytes to encode a package in place (stream and datagram transports); returns the offset in
   * {@link target} to encode at. Follow with {@link commit} (or {@link commitDatagram}), or nothing if encoding
   * failed (the space is simply not used). Checks the cap first.
   */
  reserve(len: number): number {
    this.checkCap(len);
    const slab = this.#slab;
    if (slab === undefined || this.#slabUsed + len > slab.length || len > MAX_SLAB_BYTES / 4) {
      return this.#reserveElsewhere(len);
    }
    this.#target = slab;
    return this.#slabUsed;
  }

  /** {@link reserve} when the current slab cannot take `len` bytes: a new slab, or a buffer of its own. */
  #reserveElsewhere(len: number): number {
    if (len > MAX_SLAB_BYTES / 4) {
      this.#target = new Uint8Array(len);
      return 0;
    }
    // A full slab still has queued bytes: it is left to the garbage collector, not given back.
    const slab = takeSlab(Math.max(len, this.#lastBatch * 2, (this.#slab?.length ?? 0) * 2));
    this.#slab = slab;
    this.#slabUsed = 0;
    this.#target = slab;
    return 0;
  }

  /** The buffer the last {@link reserve} points into. */
  get target(): Uint8Array {
    return this.#target;
  }

  /** Queues the `len` bytes encoded at `offset` of {@link target}; returns the completion promise if asked. */
  commit(
    offset: number,
    len: number,
    pkgs: number,
    timeoutMs: number,
    now: number,
    withPromise: boolean,
  ): Promise<WriteResult> | undefined {
    const buf = this.#target;
    if (buf === this.#slab) this.#slabUsed = offset + len;
    // A promise-less write right behind the last queued one in the same slab extends that entry instead of
    // adding one: no allocation per package for `send`. The entry keeps its earlier deadline, so a timeout can
    // only come sooner (and needs no new wake-up). Its deadline is no later than this write's when this one has
    // no timeout or one at least as long (the entry was queued earlier): no clock read needed to tell.
    const tail = this.#tail;
    if (
      !withPromise && tail !== undefined && tail.buf === buf && tail.end === offset &&
      (timeoutMs === 0 || (tail.timeoutMs > 0 && tail.timeoutMs <= timeoutMs))
    ) {
      tail.end = offset + len;
      tail.pkgs += pkgs;
      this.#count(len, Infinity);
      return undefined;
    }
    return this.#push(buf, offset, offset + len, undefined, pkgs, timeoutMs, now, withPromise);
  }

  /**
   * Queues the datagram encoded at `offset` of {@link target} (reserved with {@link reserve}) as a write of its
   * own, to `to`; like {@link enqueue}, it goes to the transport at once when nothing is queued or in flight.
   */
  commitDatagram(
    offset: number,
    len: number,
    to: PeerAddress | undefined,
    timeoutMs: number,
    now: number,
    withPromise: boolean,
  ): Promise<WriteResult> | undefined {
    const buf = this.#target;
    if (buf === this.#slab) this.#slabUsed = offset + len;
    if (!this.#nothingAhead) {
      return this.#push(buf, offset, offset + len, to, 1, timeoutMs, now, withPromise);
    }
    const result = this.#writeNow(buf.subarray(offset, offset + len), 1, to, timeoutMs, now, withPromise);
    // Taken at once (nothing pending): the transport is done with the slab, which goes back to the pool.
    if (this.#pending === 0) this.#afterDrain();
    return result;
  }

  /**
   * Queues `bytes` (or a text message), counted as `pkgs` packages. Throws {@link SessionBlockedError}
   * synchronously when the cap would be exceeded (nothing is queued). When `borrowed`, the caller may reuse
   * `bytes` once this returns: they are copied unless they can be handed to the transport at once.
   *
   * A message or datagram goes straight to the transport when nothing is queued or in flight (a message is
   * one write whatever else is queued, so holding it back until the end of the read or tick gains nothing):
   * no queue entry, and no copy of a borrowed buffer when the transport is done with it on return
   * ({@link Transport.writeTakesCopy}).
   */
  enqueue(
    bytes: Uint8Array | string,
    pkgs: number,
    timeoutMs: number,
    now: number,
    to: PeerAddress | undefined,
    withPromise: boolean,
    borrowed = false,
  ): Promise<WriteResult> | undefined {
    this.checkCap(bytes.length);
    const direct = this.#framing !== "stream" && this.#nothingAhead;
    if (borrowed && typeof bytes !== "string" && !(direct && this.#takesCopy)) bytes = bytes.slice();
    if (direct) return this.#writeNow(bytes, pkgs, to, timeoutMs, now, withPromise);
    return this.#push(bytes, 0, bytes.length, to, pkgs, timeoutMs, now, withPromise);
  }

  /** Nothing is queued, in flight or failed: a message or datagram may go to the transport at once. */
  get #nothingAhead(): boolean {
    return this.#queue.length === 0 && this.#inFlight === undefined && !this.#failed;
  }

  /** Whether a write is one message (e.g. WebSocket) of any size the caller gives. */
  get takesMessages(): boolean {
    return this.#framing === "message" && this.#transport.maxWriteSize === undefined;
  }

  /**
   * {@link enqueue} of one message without a promise, borrowed from the caller (a session's `send` without a
   * writer): kept small so the engine inlines it into `send`, the cheapest way a message reaches the transport.
   */
  enqueueBorrowedMessage(bytes: Uint8Array | string, timeoutMs: number, now: number): void {
    if (!this.#nothingAhead || !this.#takesCopy) {
      this.enqueue(bytes, 1, timeoutMs, now, undefined, false, true);
      return;
    }
    this.checkCap(bytes.length);
    this.#writeNow(bytes, 1, undefined, timeoutMs, now, false);
  }

  /** Writes one message or datagram now (the queue is empty); it is in flight if the transport did not take it. */
  #writeNow(
    bytes: Uint8Array | string,
    pkgs: number,
    to: PeerAddress | undefined,
    timeoutMs: number,
    now: number,
    withPromise: boolean,
  ): Promise<WriteResult> | undefined {
    const result = this.#write(bytes, to);
    const len = bytes.length;
    if (result === true) {
      this.#writtenBytes += len;
      this.#writtenPkgs += pkgs;
      return withPromise ? Promise.resolve({ total: len, sent: len }) : undefined;
    }
    const deadline = deadlineOf(timeoutMs, now);
    const entry = this.#entry(bytes, 0, len, to, pkgs, timeoutMs, deadline, withPromise);
    this.#awaitWrite([entry], result, len, pkgs);
    this.#count(len, deadline);
    return entry.promise;
  }

  /** A queue entry for `buf[start, end)`, with its completion promise if asked. */
  #entry(
    buf: Uint8Array | string,
    start: number,
    end: number,
    to: PeerAddress | undefined,
    pkgs: number,
    timeoutMs: number,
    deadline: number,
    withPromise: boolean,
  ): Pending {
    const free = freeEntry;
    if (free !== undefined && !withPromise) {
      freeEntry = undefined;
      free.buf = buf;
      free.start = start;
      free.end = end;
      free.to = to;
      free.pkgs = pkgs;
      free.timeoutMs = timeoutMs;
      free.deadline = deadline;
      return free;
    }
    // Every field is set here, so all entries share one shape (a field added later would give two).
    const entry: Pending = {
      buf,
      start,
      end,
      to,
      pkgs,
      timeoutMs,
      deadline,
      promise: undefined,
      resolve: undefined,
      reject: undefined,
    };
    if (withPromise) {
      entry.promise = new Promise<WriteResult>((resolve, reject) => {
        entry.resolve = resolve;
        entry.reject = reject;
      });
    }
    return entry;
  }

  /**
   * Counts `len` more pending bytes due by `deadline`. Called once the entry is queued or in flight: the
   * writability callback it may fire can write again.
   */
  #count(len: number, deadline: number): void {
    this.#pending += len;
    if (this.#writable && this.#pending > this.limits.highWaterMark) this.#setWritable(false);
    if (deadline < this.#nextDeadline) {
      this.#nextDeadline = deadline;
      this.#host.wakeAt(deadline);
    }
  }

  #push(
    buf: Uint8Array | string,
    start: number,
    end: number,
    to: PeerAddress | undefined,
    pkgs: number,
    timeoutMs: number,
    now: number,
    withPromise: boolean,
  ): Promise<WriteResult> | undefined {
    const deadline = deadlineOf(timeoutMs, now);
    const entry = this.#entry(buf, start, end, to, pkgs, timeoutMs, deadline, withPromise);
    this.#queue.push(entry);
    this.#tail = withPromise || this.#framing !== "stream" ? undefined : entry;
    this.#count(end - start, deadline);
    if (!this.#flushQueued && !this.#inFlight && this.#corked === 0) {
      this.#flushQueued = true;
      toFlush.push(this);
      if (!flushScheduled) {
        flushScheduled = true;
        queueMicrotask(flushAll);
      }
    }
    return entry.promise;
  }

  /** Holds writes back until the matching {@link uncork} (nestable): one socket write for a whole read. */
  cork(): void {
    this.#corked++;
  }

  /** Ends a {@link cork}; the outermost one writes what was queued meanwhile, synchronously. */
  uncork(): void {
    if (--this.#corked > 0 || this.#inFlight || this.#queue.length === 0) return;
    this.#flush();
  }

  /** Resolves once nothing is queued or in flight. */
  idle(): Promise<void> {
    if (this.#pending === 0) return Promise.resolve();
    return new Promise((resolve) => (this.#idleWaiters ??= []).push(resolve));
  }

  /** Rejects every queued and in-flight write with `error` (the session is going away). */
  failAll(error: Error): void {
    this.#failed = true;
    const all = [...(this.#inFlight ?? []), ...this.#queue];
    this.#inFlight = undefined;
    this.#queue = [];
    this.#tail = undefined;
    this.#pending = 0;
    this.#slab = undefined; // not given back: a failed write may still be reading it
    this.#target = EMPTY;
    for (const p of all) fail(p, error);
    this.#wakeIdle();
  }

  /**
   * Fails writes whose deadline passed: a queued one is removed (nothing of it was sent); an in-flight one
   * means part of a frame may be on the wire, so the host must close. Returns the next deadline.
   */
  checkTimeouts(now: number): number {
    if (this.#nextDeadline > now) return this.#nextDeadline;
    const expiredInFlight = this.#inFlight?.find((p) => p.deadline <= now);
    if (expiredInFlight) {
      const error = new WriteTimeoutError(expiredInFlight.timeoutMs, true);
      fail(expiredInFlight, error); // the write itself fails with the timeout; the rest fail as closed
      this.#host.writeTimedOut(error, true);
      return Infinity;
    }
    // Take the expired writes out first, then report: a callback may close the session (failAll) meanwhile.
    const keep: Pending[] = [];
    const expired: Pending[] = [];
    for (const p of this.#queue) (p.deadline > now ? keep : expired).push(p);
    this.#queue = keep;
    this.#tail = undefined;
    for (const p of expired) this.#pending -= size(p);
    for (const p of expired) {
      const error = new WriteTimeoutError(p.timeoutMs, false);
      fail(p, error);
      if (!this.#failed) this.#host.writeTimedOut(error, false);
    }
    if (this.#failed) return Infinity;
    this.#afterDrain();
    let next = Infinity;
    for (const p of this.#inFlight ?? []) next = Math.min(next, p.deadline);
    for (const p of keep) next = Math.min(next, p.deadline);
    this.#nextDeadline = next;
    return next;
  }

  /** @internal The shared microtask's call: writes what was queued since (unless an uncork did already). */
  flushQueued(): void {
    if (!this.#flushQueued) return;
    this.#flush();
  }

  #flush(): void {
    this.#flushQueued = false;
    while (!this.#inFlight && this.#queue.length > 0 && !this.#failed) {
      const batch = this.#takeBatch();
      const first = batch[0];
      let bytes = 0;
      let pkgs = 0;
      let contiguous = true;
      for (let i = 0; i < batch.length; i++) {
        const p = batch[i];
        bytes += p.end - p.start;
        pkgs += p.pkgs;
        if (i > 0 && (p.buf !== first.buf || p.start !== batch[i - 1].end)) contiguous = false;
      }
      let chunk: Uint8Array | string;
      if (typeof first.buf === "string") {
        chunk = first.buf;
      } else if (contiguous) {
        const end = batch[batch.length - 1].end;
        if (this.#writesRanges) {
          this.#settle(batch, bytes, pkgs, this.#writeRange(first.buf, first.start, end));
          continue;
        }
        chunk = first.start === 0 && end === first.buf.length ? first.buf : first.buf.subarray(first.start, end);
      } else {
        // Only stream transports batch, and their entries are always bytes.
        const joined = new Uint8Array(bytes);
        let offset = 0;
        for (const p of batch) {
          joined.set((p.buf as Uint8Array).subarray(p.start, p.end), offset);
          offset += p.end - p.start;
        }
        chunk = joined;
      }
      this.#settle(batch, bytes, pkgs, this.#write(chunk, first.to));
    }
  }

  /** The transport's `write`; a throw reads as a failed write. */
  #write(chunk: Uint8Array | string, to: PeerAddress | undefined): true | Promise<void> {
    try {
      return this.#transport.write(chunk, to);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** The transport's {@link Transport.writeRange}, likewise. */
  #writeRange(buf: Uint8Array, start: number, end: number): true | Promise<void> {
    try {
      return this.#transport.writeRange!(buf, start, end);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * After the write of `batch`: completes it when the transport took every byte, else waits for the transport.
   * A batch written at once leaves its first entry (when it has no promise) and, when it held one entry, its
   * array to the next write of any session (see {@link freeEntry}; the array emptied with `pop`: on V8
   * `length = 0` costs more than the array it saves).
   */
  #settle(batch: Pending[], bytes: number, pkgs: number, result: true | Promise<void>): void {
    if (result !== true) return this.#awaitWrite(batch, result, bytes, pkgs);
    this.#complete(batch, bytes, pkgs);
    const first = batch[0];
    if (first.resolve === undefined) {
      // The spare entry must not keep the bytes (a slab, or a large package's buffer) alive.
      first.buf = EMPTY;
      first.to = undefined;
      freeEntry = first;
    }
    if (batch.length === 1) {
      batch.pop();
      spareQueue = batch;
    }
  }

  /** `batch` is in flight until the transport's promise settles; then the queue moves on (or the session fails). */
  #awaitWrite(batch: Pending[], result: Promise<void>, bytes: number, pkgs: number): void {
    this.#inFlight = batch;
    result.then(
      () => {
        if (this.#inFlight !== batch) return;
        this.#inFlight = undefined;
        this.#complete(batch, bytes, pkgs);
        this.#flush();
      },
      (error) => {
        if (this.#inFlight !== batch) return;
        this.#host.writeFailed(error);
      },
    );
  }

  #takeBatch(): Pending[] {
    const q = this.#queue;
    this.#tail = undefined;
    if (this.#framing !== "stream") {
      if (q.length > 1) return [q.shift()!];
      this.#queue = takeSpareQueue();
      return q;
    }
    let bytes = 0;
    let n = 0;
    while (n < q.length && (n === 0 || bytes + size(q[n]) <= MAX_BATCH)) bytes += size(q[n++]);
    if (n === q.length) {
      this.#queue = takeSpareQueue();
      return q;
    }
    return q.splice(0, n);
  }

  #complete(batch: Pending[], bytes: number, pkgs: number): void {
    this.#pending -= bytes;
    this.#lastBatch = bytes;
    for (const p of batch) {
      if (p.resolve) {
        const n = p.end - p.start;
        p.resolve({ total: n, sent: n });
      }
    }
    this.#writtenBytes += bytes;
    this.#writtenPkgs += pkgs;
    this.#afterDrain();
  }

  #afterDrain(): void {
    if (!this.#writable && this.#pending <= this.limits.lowWaterMark) this.#setWritable(true);
    if (this.#pending === 0) {
      // Every byte was handed over: the slab goes back to the pool (an idle session holds none).
      const slab = this.#slab;
      if (slab !== undefined && !this.#failed) {
        this.#slab = undefined;
        this.#target = EMPTY;
        giveSlab(slab);
      }
      this.#wakeIdle();
    }
  }

  #setWritable(writable: boolean): void {
    if (this.#failed) return;
    this.#writable = writable;
    this.#host.writabilityChanged(writable);
  }

  #wakeIdle(): void {
    const waiters = this.#idleWaiters;
    if (waiters === undefined) return;
    this.#idleWaiters = undefined;
    for (const w of waiters) w();
  }
}

/** The spare queue array, or a new one. */
function takeSpareQueue(): Pending[] {
  const spare = spareQueue;
  if (spare === undefined) return [];
  spareQueue = undefined;
  return spare;
}

function fail(p: Pending, error: Error): void {
  if (!p.reject) return;
  p.promise!.catch(noop);
  p.reject(error);
}
