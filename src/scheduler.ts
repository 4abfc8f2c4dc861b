/**
 * One shared timer for every session's cron, read timeout and write timeout (getty's process-wide timer
 * wheel, without its single-goroutine stall). Deadlines are rounded up to a {@link TICK_MS} bucket; only the
 * earliest bucket has a runtime timer armed, so 100,000 sessions with a 1 s cron cost ~100 timer callbacks a
 * second, not 100,000 timers. The timer keeps the process alive while something is scheduled (like an open
 * socket would); closed sessions leave the schedule, so a process whose sessions are closed can exit.
 *
 * Buckets are append-only arrays: an item records its bucket and slot, scheduling is an array store (plus a map
 * lookup only when the bucket changes), and a cancel or a reschedule clears the old slot, so a closed session
 * is never kept alive by the schedule. This keeps the per-tick cost of a session small.
 *
 * Bucket keys are tick numbers counted from the moment the schedule last became non-empty, so they stay small
 * integers (no boxed number per schedule on V8; that would be 100,000 allocations a second at 100,000 sessions).
 *
 * A fired bucket is emptied and kept for a later tick (up to {@link MAX_SPARE_BUCKETS}), so a steady schedule
 * allocates nothing: with a 1 s cron every bucket lives about a second, long enough for a garbage collector to
 * move it to the old generation, and fresh arrays each tick (2–3 MB/s at 100,000 sessions) would end in full
 * collections of the whole heap.
 *
 * @module
 */

/** Bucket width in milliseconds: deadlines fire up to this much late, never early. */
export const TICK_MS = 10;

/** Longest delay setTimeout honours (2^31-1 ms). */
const MAX_DELAY_MS = 2 ** 31 - 1;

/** Something the scheduler can call back. Each item is scheduled at most once at a time. */
export interface Timed {
  /** Called at (or shortly after) the scheduled time. Exceptions are caught and passed to `onTimerError`. */
  onTimer(now: number): void;
  /** @internal tick number of the bucket the item sits in, or undefined when not scheduled. */
  _bucket?: number;
  /** @internal index of the item in its bucket. */
  _slot?: number;
}

type TimerHandle = ReturnType<typeof setTimeout>;

/** The items due in one tick: `items[0..n)` (a slot is undefined once its item was cancelled or moved). */
interface Bucket {
  items: Array<Timed | undefined>;
  n: number;
}

/** How many emptied buckets are kept for reuse (a 1 s cron keeps ~100 buckets in use). */
export const MAX_SPARE_BUCKETS = 256;

/** A process-wide bucketed timer. Use {@link scheduler}; the class is exported for tests. */
export class Scheduler {
  readonly #buckets = new Map<number, Bucket>();
  /** Fired buckets, emptied, waiting to be reused. */
  readonly #spare: Bucket[] = [];
  #bucketsCreated = 0;
  /** Min-heap of bucket keys present in #buckets. */
  readonly #heap: number[] = [];
  /** Time of tick 0: bucket `k` is due at `#epoch + k * TICK_MS`. Moves only while nothing is scheduled. */
  #epoch = Date.now();
  #timer: TimerHandle | undefined;
  /** Key of the bucket the runtime timer is armed for. */
  #armedFor = Infinity;
  #timersArmed = 0;
  #firing = false;
  #count = 0;
  /** The time the current firing started (read instead of the clock while firing). */
  #now = 0;
  /** The bucket used last (consecutive schedules usually target the same one). */
  #lastKey = -1;
  #lastBucket: Bucket | undefined;
  /** Reports an exception thrown by an item's onTimer. */
  onTimerError: (error: unknown) => void = () => {};

  /**
   * Schedules `item` at absolute time `at` (ms since epoch), replacing any earlier schedule of it. A time in
   * the past means "as soon as possible" (the next tick), never the bucket being fired.
   */
  schedule(item: Timed, at: number): void {
    const key = this.#keyOf(at);
    if (item._bucket !== key) this.#place(item, key);
  }

  /** Like {@link schedule}, but leaves an item alone that is already due at or before `at`'s tick. */
  scheduleNoLaterThan(item: Timed, at: number): void {
    const key = this.#keyOf(at);
    if (item._bucket === undefined || key < item._bucket) this.#place(item, key);
  }

  /** The key of the first tick at or after `at`, and after now. */
  #keyOf(at: number): number {
    const now = this.#firing ? this.#now : Date.now();
    if (this.#count === 0 && !this.#firing) this.#epoch = now;
    const earliest = now + 1;
    return Math.ceil(((at > earliest ? at : earliest) - this.#epoch) / TICK_MS);
  }

  #place(item: Timed, key: number): void {
    if (item._bucket === undefined) this.#count++;
    else this.#clearSlot(item);
    item._bucket = key;
    let bucket = key === this.#lastKey ? this.#lastBucket : this.#buckets.get(key);
    if (!bucket) {
      bucket = this.#spare.pop() ?? this.#newBucket();
      this.#buckets.set(key, bucket);
      this.#push(key);
      if (!this.#firing && key < this.#armedFor) this.#arm(key);
    }
    this.#lastKey = key;
    this.#lastBucket = bucket;
    const slot = bucket.n++;
    item._slot = slot;
    if (slot < bucket.items.length) bucket.items[slot] = item;
    else bucket.items.push(item);
  }

  #newBucket(): Bucket {
    this.#bucketsCreated++;
    return { items: [], n: 0 };
  }

  /** Drops the reference the item's current bucket holds (the bucket may be firing and gone from the map). */
  #clearSlot(item: Timed): void {
    const bucket = item._bucket === this.#lastKey ? this.#lastBucket : this.#buckets.get(item._bucket!);
    if (bucket && item._slot !== undefined && bucket.items[item._slot] === item) bucket.items[item._slot] = undefined;
  }

  /** Removes `item` from the schedule (no-op when not scheduled). */
  cancel(item: Timed): void {
    if (item._bucket === undefined) return;
    this.#clearSlot(item);
    item._bucket = undefined;
    this.#count--;
    // With nothing left at all, the runtime timer is cleared so an idle process holds no timer.
    if (this.#count === 0 && !this.#firing) this.#reset();
  }

  /** Number of scheduled items (for tests and stats). */
  get size(): number {
    return this.#count;
  }

  /** Number of runtime timers currently armed: 0 or 1. */
  get armedTimers(): number {
    return this.#timer === undefined ? 0 : 1;
  }

  /** How many bucket arrays were allocated since start; a steady schedule reuses them (for tests). */
  get bucketsCreatedTotal(): number {
    return this.#bucketsCreated;
  }

  /** How many emptied buckets wait for reuse (for tests). */
  get spareBuckets(): number {
    return this.#spare.length;
  }

  /** How many items the spare buckets still reference: always 0 (for tests). */
  get spareReferences(): number {
    let held = 0;
    for (const b of this.#spare) for (const item of b.items) if (item !== undefined) held++;
    return held;
  }

  /** How many times a runtime timer was armed since start (for tests). */
  get timersArmedTotal(): number {
    return this.#timersArmed;
  }

  #reset(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#armedFor = Infinity;
    this.#heap.length = 0;
    this.#buckets.clear();
    this.#spare.length = 0;
    this.#lastKey = -1;
    this.#lastBucket = undefined;
  }

  #arm(key: number): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#armedFor = key;
    this.#timersArmed++;
    // Runtimes clamp delays above 2^31-1 ms to 1 ms: wait at most that long and re-arm.
    const delay = this.#epoch + key * TICK_MS - Date.now();
    this.#timer = setTimeout(() => this.#fire(), Math.min(Math.max(0, delay), MAX_DELAY_MS));
  }

  #fire(): void {
    this.#timer = undefined;
    this.#armedFor = Infinity;
    const now = Date.now();
    this.#now = now;
    this.#firing = true;
    const due = Math.floor((now - this.#epoch) / TICK_MS);
    while (this.#heap.length > 0 && this.#heap[0] <= due) {
      const key = this.#pop();
      const bucket = this.#buckets.get(key);
      this.#buckets.delete(key);
      if (key === this.#lastKey) {
        this.#lastKey = -1;
        this.#lastBucket = undefined;
      }
      if (!bucket) continue;
      // Items rescheduled while firing always land in later buckets, so this bucket does not grow meanwhile.
      const items = bucket.items;
      for (let i = 0; i < bucket.n; i++) {
        const item = items[i];
        if (item === undefined) continue; // cancelled or moved
        items[i] = undefined;
        if (item._bucket !== key) continue;
        item._bucket = undefined;
        this.#count--;
        try {
          item.onTimer(now);
        } catch (error) {
          this.onTimerError(error);
        }
      }
      bucket.n = 0; // every slot was cleared above
      if (this.#spare.length < MAX_SPARE_BUCKETS) this.#spare.push(bucket);
    }
    this.#firing = false;
    if (this.#count === 0) {
      this.#reset();
      return;
    }
    if (this.#heap.length > 0) this.#arm(this.#heap[0]);
  }

  #push(key: number): void {
    const h = this.#heap;
    h.push(key);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (h[parent] <= key) break;
      h[i] = h[parent];
      i = parent;
    }
    h[i] = key;
  }

  #pop(): number {
    const h = this.#heap;
    const top = h[0];
    const last = h.pop()!;
    if (h.length > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= h.length) break;
        const r = l + 1;
        const c = r < h.length && h[r] < h[l] ? r : l;
        if (h[c] >= last) break;
        h[i] = h[c];
        i = c;
      }
      h[i] = last;
    }
    return top;
  }
}

/** The process-wide scheduler shared by all sessions. */
export const scheduler: Scheduler = new Scheduler();
