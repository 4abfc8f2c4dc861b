/**
 * How the built-in codecs cut a package out of the bytes they decode: a view (`subarray`), except on Bun for
 * packages of at most {@link PACKAGE_COPY_MAX} bytes, which are copies. JavaScriptCore (Bun) makes a view of a
 * typed array cost more than a copy of a small one (measured on Bun 1.4.5, per package: 64 B view 67 ns, copy 49 ns;
 * 256 B 107 / 92 ns; 512 B 120 / 146 ns), and a 64-byte TCP echo handles 7–9 % more packages per CPU second with
 * copies (bench/ab.mjs). On V8 (Deno) a copy allocates a backing store of its own and costs several times a view, so
 * packages are always views there. Either way the caller's bytes are never changed afterwards, so a package is
 * never overwritten.
 *
 * @module
 */
import { onJavaScriptCore } from "../runtime/select.ts";

/**
 * Largest package (bytes) the built-in codecs copy rather than view: 256 on Bun, none (-1) elsewhere. The session
 * uses the same bound for datagrams: one encoded at most this long gets a buffer of its own rather than a view of
 * the outbound slab.
 */
export const PACKAGE_COPY_MAX: number = onJavaScriptCore() ? 256 : -1;

/** The package `data[start, end)`: a copy when it is at most {@link PACKAGE_COPY_MAX} bytes, else a view. */
export function packageBytes(data: Uint8Array, start: number, end: number): Uint8Array {
  return end - start <= PACKAGE_COPY_MAX ? data.slice(start, end) : data.subarray(start, end);
}
