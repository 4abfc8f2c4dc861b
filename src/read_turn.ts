/**
 * The time stamp of message and datagram reads, without a clock read per message.
 *
 * Bun calls a WebSocket or UDP session once per message, one call after another for everything a wake-up of its
 * event loop brought, and reading the system clock for each (for `readTimeout` and `getActive()`) was the largest
 * single cost the library added to a small message: ~40 ns through the vDSO on a VM's `kvm-clock`, where Bun's own
 * work per message is ~0.8 µs. Instead, every such read is stamped with the {@link ReadTurn} in progress: the first
 * read of a turn opens it, and an immediate (`setImmediate`, which runs once the runtime has made every I/O call of
 * that wake-up) closes it and reads the clock once. Every read stamped with a turn happened before its `end`, so a
 * session that takes `end` as its last read's time errs only late, never early: a read timeout fires no sooner
 * than it should, and `getActive()` is at most one batch of callbacks newer than the read. While a turn is still
 * open, the current time is that bound.
 *
 * A timer of a millisecond instead of the immediate cost Bun a wake-up of its own for every turn: at one message
 * per wake-up (a ping-pong), 37 % more CPU per message on WebSocket and UDP. Stream reads carry many packages each,
 * so they keep an exact clock read per read.
 *
 * @module
 */

/** The reads of one batch of I/O callbacks: opened by the first, closed by an immediate. @internal */
export class ReadTurn {
  /** When it was closed (ms since epoch): no read stamped with it is newer. `Infinity` while open. */
  end = Infinity;
}

let open: ReadTurn | undefined;

function closeTurn(): void {
  const turn = open!;
  open = undefined;
  turn.end = Date.now();
}

function openTurn(): ReadTurn {
  const turn = new ReadTurn();
  open = turn;
  setImmediate(closeTurn);
  return turn;
}

/** The turn a read that arrives now belongs to (opened if none is). @internal */
export function readTurn(): ReadTurn {
  return open ?? openTurn();
}

/** The latest time a read stamped with `turn` can have arrived: its end, or `now` while it is open. @internal */
export function latestReadTime(turn: ReadTurn, now: number): number {
  return turn.end === Infinity ? now : turn.end;
}
