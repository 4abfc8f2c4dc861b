// The README's code is real: every block marked `<!-- example:PATH -->` is that file verbatim, and each such
// example runs to completion on both runtimes with the output it promises.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { current, other, root, runScript } from "./helpers/runtimes.ts";

const readme = readFileSync(`${root}README.md`, "utf8");
const blocks = [...readme.matchAll(/<!-- example:(\S+) -->\s*```ts\n([\s\S]*?)```\s*<!-- \/example -->/g)];

/** What each embedded example must print. */
const EXPECTED: Record<string, RegExp[]> = {
  "examples/quickstart.ts": [/^sent 25\/25 bytes$/m, /^7 squared is 49; session \{tcp-session:TCP_CLIENT:/m],
  "examples/tls_quickstart.ts": [/^tls reply: HELLO OVER TLS$/m],
  "examples/udp_quickstart.ts": [/^udp reply: 3,2,1 via \w+$/m],
  "examples/ws_quickstart.ts": [/^ws replies: "hello" \(text\), true \(binary\)$/m],
};

describe("README examples", { timeout: 120_000 }, () => {
  it("embeds every example file unchanged, one per transport", () => {
    assert.deepEqual(blocks.map((b) => b[1]).sort(), Object.keys(EXPECTED).sort());
    for (const [, path, code] of blocks) assert.equal(code, readFileSync(`${root}${path}`, "utf8"), path);
  });

  for (const path of Object.keys(EXPECTED)) {
    for (const runtime of [current, other]) {
      it(`${path} runs on ${runtime}`, async () => {
        const r = await runScript(runtime, path, []);
        assert.equal(r.code, 0, r.stderr);
        for (const re of EXPECTED[path]) assert.match(r.stdout, re);
      });
    }
  }
});
