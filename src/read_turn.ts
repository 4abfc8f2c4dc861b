/**
 * The time stamp of message and datagram reads, without a clock read per message.
 *
 * A WebSocket or UDP session gets one call per message from its runtime, and reading the system clock for each
 * (for `readTimeout` and `getActive()`) was the largest single cost the library added to a small message: ~40 ns
 * through the vDSO on a VM's `kvm-clock`, where Bun's own work per message is ~0.8 µs. Instead, every such read is
 * stamped with the {@link ReadTurn} in progress: the first read of a turn reads the clock once and opens it, a
 * timer of about a millisecond closes it and notes the time it closed. Every read stamped with a turn happened
 * before its `end`, so a session that takes `end` as its last read's time errs only late, never early: a read
 * timeout fires no sooner than it should (at most one turn later, well inside the shared timer's 10 ms tick),
 * and `getActive()` is at most a turn newer than the read. While a turn is still open, the current time is that
 * bound.
 *
 * Stream reads carry many packages each, so they keep an exact clock read per read.
 *
 * @module
 */

/** A stretch of time in which reads arrived: opened by the first, closed by a short timer. @internal */
export class ReadTurn {
  /** When it was opened (ms since epoch): no read stamped with it is older. */
  readonly start: number;
  /** When it was closed (ms since epoch): no read stamped with it is newer. `Infinity` while open. */
  end = Infinity;

  constructor(start: number) {
    this.start = start;
  }
}

/** How long a turn stays open, ms: the most a read's stamp can be late by (plus a busy event loop's delay). */
export const READ_TURN_MS = 1;

let open: ReadTurn | undefined;

function closeTurn(): void {
  const turn = open!;
  open = undefined;
  turn.end = Date.now();
}

function openTurn(): ReadTurn {
  const turn = new ReadTurn(Date.now());
  open = turn;
  setTimeout(closeTurn, READ_TURN_MS);
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
