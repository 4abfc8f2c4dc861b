/**
 * Preloaded into the echo servers (raw and library alike) for the idle-memory test only: on SIGUSR2 it runs a
 * full garbage collection and prints `bench-gc-done` on stdout, so the driver can read RSS without garbage the
 * runtime simply has not collected yet. No effect unless signalled.
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
  console.log(g.Bun || g.gc ? "bench-gc-done" : "bench-gc-unavailable");
});
