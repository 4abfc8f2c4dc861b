/**
 * Bounds how many message handlers run at once across the sessions of one endpoint (getty's task pool,
 * without its unbounded goroutines and lost ordering). Per-session order is kept by the session itself;
 * this pool only hands out slots, first come first served.
 *
 * @module
 */

/** A counting semaphore with a FIFO wait queue. */
export class HandlerPool {
  /** Maximum concurrent handlers (Infinity = unbounded). */
  readonly limit: number;
  #running = 0;
  readonly #waiting: Array<() => void> = [];
  #releases = 0;
  #releasing = false;

  /** Creates a pool of `limit` slots. */
  constructor(limit: number) {
    this.limit = limit;
  }

  /** Handlers currently running. */
  get running(): number {
    return this.#running;
  }

  /** Takes a slot now if one is free and nobody is queued; returns whether it did. */
  tryAcquire(): boolean {
    if (this.#running < this.limit && this.#waiting.length === 0) {
      this.#running++;
      return true;
    }
    return false;
  }

  /** Waits for a slot; `grant` is called once the slot is held. */
  enqueue(grant: () => void): void {
    this.#waiting.push(grant);
  }

  /**
   * Returns a slot, handing it to the next waiter if any. A waiter that releases again synchronously is
   * served by the same loop, not by recursion, so a long queue cannot overflow the stack.
   */
  release(): void {
    // The common case stays tiny (and inlinable): nobody waiting.
    if (this.#waiting.length === 0 && !this.#releasing) {
      this.#running--;
      return;
    }
    this.#handOver();
  }

  #handOver(): void {
    this.#releases++;
    if (this.#releasing) return;
    this.#releasing = true;
    try {
      while (this.#releases > 0) {
        this.#releases--;
        const next = this.#waiting.shift();
        if (next) next();
        else this.#running--;
      }
    } finally {
      this.#releasing = false;
    }
  }
}
