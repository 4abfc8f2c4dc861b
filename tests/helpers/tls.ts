/**
 * Test TLS material from `tests/fixtures/tls/` (see its README). Read with `node:fs` so it works on Deno and Bun.
 *
 * @module
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

/** PEM text of the test certificates. */
export interface TlsFixtures {
  /** Leaf certificate for `localhost` / `127.0.0.1`, signed by `ca`. */
  readonly cert: string;
  /** Private key of `cert`. */
  readonly key: string;
  /** The test CA that signed `cert`: trust it to verify the server. */
  readonly ca: string;
  /** An unrelated CA: trusting only this one must make the handshake fail. */
  readonly otherCa: string;
}

// `.href` + fileURLToPath: the global URL and node's URL are different types under bun-types.
const read = (name: string): string =>
  readFileSync(fileURLToPath(new URL(`../fixtures/tls/${name}`, import.meta.url).href), "utf8");

let cached: TlsFixtures | undefined;

/** Loads (once) the PEM fixtures. */
export function tlsFixtures(): TlsFixtures {
  cached ??= { cert: read("leaf.crt"), key: read("leaf.key"), ca: read("ca.crt"), otherCa: read("other-ca.crt") };
  return cached;
}
