/**
 * Writers known to write every byte they reserve. A session encodes packages in place into pooled slabs
 * (see slab_pool.ts); for a writer not marked here it zeroes the reserved bytes first, so an `encodeInto`
 * that leaves some unwritten sends zeros, never bytes an earlier package (of any session) left in the slab.
 *
 * @module
 */

const exact = new WeakSet<object>();

/** @internal Marks `writer` (a built-in codec) as writing exactly `encodedLength` bytes in `encodeInto`. */
export function markExactWriter(writer: object): void {
  exact.add(writer);
}

/** @internal Whether `writer` was marked by {@link markExactWriter}. */
export function isExactWriter(writer: object | undefined): boolean {
  return writer !== undefined && exact.has(writer);
}
