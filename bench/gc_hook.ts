/**
 * Preloaded into the echo servers (raw and library alike) for the idle-memory test only: on SIGUSR2 it runs a
 * full garbage collection and prints `bench-gc-done {heapUsed, external, arrayBuffers}` (bytes, from
 * `process.memoryUsage()`) on stdout, so the driver can read RSS without garbage the runtime simply has not
 * collected yet, and split it into JS heap and ArrayBuffer memory. No effect unless signalled.
 *
 *   deno run -A --v8-flags=--expose-gc --preload bench/gc_hook.ts examples/echo_server.ts …
 *   bun --preload ./bench/gc_hook.ts examples/echo_server.ts …
 *
 * @module
 */
import process from "node:process";

const g = globalThis as { Bun?: { gc(force: boolean): void }; gc?: () => void };

process.on("SIGUSR2", () => {
  if (g.Bun) g.Bun.gc(true);
  else if (g.gc) {
    g.gc();
    g.gc(); // a second pass frees what the first one's finalizers released (e.g. ArrayBuffer backing stores)
  }
  if (!g.Bun && !g.gc) return console.log("bench-gc-unavailable");
  const { heapUsed, external, arrayBuffers } = process.memoryUsage();
  console.log(`bench-gc-done ${JSON.stringify({ heapUsed, external, arrayBuffers })}`);
});
