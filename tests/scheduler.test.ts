// The shared timer's buckets: a steady schedule reuses fired buckets instead of allocating new arrays (at 100,000
// sessions with a 1 s cron, fresh arrays per tick became old-generation garbage and full collections), and a reused
// bucket neither fires stale items nor keeps a reference to anything.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MAX_SPARE_BUCKETS, Scheduler, TICK_MS, type Timed } from "../src/scheduler.ts";
import { sleep, waitFor } from "./helpers/util.ts";

/** An item that reschedules itself `period` ms after each call, `times` times in all. */
function repeating(s: Scheduler, period: number, times: number, log: number[]): Timed & { calls: number } {
  const item = {
    calls: 0,
    onTimer(now: number) {
      item.calls++;
      log.push(now);
      if (item.calls < times) s.schedule(item, now + period);
    },
  };
  return item;
}

describe("scheduler buckets", () => {
  it("a steady schedule reuses fired buckets: allocations stay at the number of buckets in use", async () => {
    const s = new Scheduler();
    const log: number[] = [];
    // 300 items spread over 3 ticks, each firing every 3 ticks, 12 times: ~36 buckets fire, about 4 are in use
    // at once (the three pending ones plus the one firing).
    const items = Array.from({ length: 300 }, () => repeating(s, 3 * TICK_MS, 12, log));
    const start = Date.now();
    items.forEach((item, i) => s.schedule(item, start + (i % 3) * TICK_MS));
    await waitFor(() => s.size === 0, 5_000);
    assert.ok(items.every((item) => item.calls === 12), `calls: ${[...new Set(items.map((i) => i.calls))]}`);
    assert.equal(log.length, 300 * 12);
    const created = s.bucketsCreatedTotal;
    assert.ok(created <= 8, `${created} bucket arrays allocated for ~36 ticks with ≤ 4 in use`);
    assert.ok(created >= 3, `${created}: at least the three first ticks need their own bucket`);
  });

  it("a reused bucket holds no reference and fires only what was scheduled into it since", async () => {
    const s = new Scheduler();
    const fired: string[] = [];
    const item = (name: string): Timed => ({ onTimer: () => void fired.push(name) });
    // Fill one bucket with 50 items, cancel half of them, let it fire.
    const first = Array.from({ length: 50 }, (_, i) => item(`a${i}`));
    const keeper = item("keeper"); // keeps the scheduler from resetting (which drops spare buckets)
    s.schedule(keeper, Date.now() + 60_000);
    const at = Date.now() + TICK_MS;
    for (const x of first) s.schedule(x, at);
    first.forEach((x, i) => i % 2 === 1 && s.cancel(x));
    await waitFor(() => fired.length === 25, 2_000);
    assert.deepEqual(fired, first.filter((_, i) => i % 2 === 0).map((_, i) => `a${2 * i}`));
    assert.equal(s.spareReferences, 0, "a fired bucket keeps references to its items");
    const created = s.bucketsCreatedTotal;
    // Two items into a new tick take the spare bucket: only they fire, not leftovers in its old slots.
    fired.length = 0;
    const second = [item("b0"), item("b1")];
    const at2 = Date.now() + TICK_MS;
    for (const x of second) s.schedule(x, at2);
    assert.equal(s.bucketsCreatedTotal, created, "the spare bucket was not reused");
    await waitFor(() => fired.length === 2, 2_000);
    await sleep(3 * TICK_MS);
    assert.deepEqual(fired, ["b0", "b1"]);
    assert.equal(s.spareReferences, 0);
    assert.equal(s.size, 1);
    s.cancel(keeper);
    assert.equal(s.size, 0);
    assert.equal(s.armedTimers, 0);
  });

  it("an item moved out of a bucket before it fires is called once, at its new time", async () => {
    const s = new Scheduler();
    const calls: number[] = [];
    const x: Timed = { onTimer: (now) => void calls.push(now) };
    const filler: Timed[] = Array.from({ length: 10 }, () => ({ onTimer: () => {} }));
    const at = Date.now() + TICK_MS;
    s.schedule(x, at);
    for (const f of filler) s.schedule(f, at);
    const later = Date.now() + 6 * TICK_MS;
    s.schedule(x, later);
    await waitFor(() => calls.length === 1, 2_000);
    assert.ok(calls[0] >= later, `fired at ${calls[0]}, scheduled for ${later}`);
    await sleep(3 * TICK_MS);
    assert.equal(calls.length, 1);
    assert.equal(s.size, 0);
  });

  it("no more than MAX_SPARE_BUCKETS emptied buckets are kept", { timeout: 10_000 }, async () => {
    const s = new Scheduler();
    const keeper: Timed = { onTimer: () => {} };
    s.schedule(keeper, Date.now() + 60_000);
    // One item in each of MAX_SPARE_BUCKETS + 20 consecutive ticks, all scheduled up front: that many buckets
    // exist at once, and each is emptied when it fires.
    const n = MAX_SPARE_BUCKETS + 20;
    let fired = 0;
    const t0 = Date.now();
    for (let i = 1; i <= n; i++) s.schedule({ onTimer: () => void fired++ }, t0 + i * TICK_MS);
    assert.ok(s.bucketsCreatedTotal >= n + 1);
    await waitFor(() => fired === n, 8_000);
    assert.equal(s.spareBuckets, MAX_SPARE_BUCKETS);
    assert.equal(s.spareReferences, 0);
    s.cancel(keeper);
    assert.equal(s.spareBuckets, 0, "spare buckets are dropped once nothing is scheduled");
  });
});
