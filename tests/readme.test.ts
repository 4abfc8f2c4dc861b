// The README's first program is examples/quickstart.ts verbatim, and it runs on both runtimes.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { other, root, runScript } from "./helpers/runtimes.ts";
import { current } from "./helpers/runtimes.ts";

describe("README", { timeout: 60_000 }, () => {
  it("embeds examples/quickstart.ts unchanged", () => {
    const readme = readFileSync(`${root}README.md`, "utf8");
    const block = readme.match(/<!-- quickstart:begin -->\s*```ts\n([\s\S]*?)```\s*<!-- quickstart:end -->/);
    assert.ok(block, "README has the quickstart block");
    assert.equal(block[1], readFileSync(`${root}examples/quickstart.ts`, "utf8"));
  });

  for (const runtime of [current, other]) {
    it(`examples/quickstart.ts runs on ${runtime}`, async () => {
      const r = await runScript(runtime, "examples/quickstart.ts", []);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^sent 25\/25 bytes$/m);
      assert.match(r.stdout, /^7 squared is 49; session \{tcp-session:TCP_CLIENT:/m);
    });
  }
});
