/**
 * Close callbacks keyed by (handler, key), as in getty's `AddCloseCallback`: run once, in the order added;
 * adding the same pair again replaces the function in place (keeping its position). Keys may be any value
 * (compared with SameValueZero, so objects by identity).
 *
 * @module
 */

/** A close callback. */
export type CloseCallback = () => void;

interface Entry {
  readonly handler: unknown;
  readonly key: unknown;
  fn: CloseCallback;
}

/** An ordered list of close callbacks. */
export class CloseCallbacks {
  readonly #entries: Entry[] = [];

  /** Adds `fn` under (handler, key), or replaces the function already there. */
  add(handler: unknown, key: unknown, fn: CloseCallback): void {
    const found = this.#find(handler, key);
    if (found >= 0) this.#entries[found].fn = fn;
    else this.#entries.push({ handler, key, fn });
  }

  /** Removes the callback under (handler, key); returns whether one was there. */
  remove(handler: unknown, key: unknown): boolean {
    const found = this.#find(handler, key);
    if (found < 0) return false;
    this.#entries.splice(found, 1);
    return true;
  }

  /** Number of callbacks. */
  get size(): number {
    return this.#entries.length;
  }

  /** Runs every callback in order, passing each exception to `onError`; clears the list. */
  runAll(onError: (error: unknown) => void): void {
    const entries = this.#entries.splice(0);
    for (const entry of entries) {
      try {
        entry.fn();
      } catch (error) {
        onError(error);
      }
    }
  }

  #find(handler: unknown, key: unknown): number {
    return this.#entries.findIndex((e) => Object.is(e.handler, handler) && Object.is(e.key, key));
  }
}
