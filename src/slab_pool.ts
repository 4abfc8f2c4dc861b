/**
 * A process-wide pool of outbound slabs (the buffers packages are encoded into), in power-of-two size classes.
 * A session takes a slab when a burst of writes starts and gives it back once every byte of it has been handed
 * to the socket, so busy sessions reuse a few warm buffers instead of allocating (and zeroing) one per burst,
 * and idle sessions hold none. The pool keeps at most {@link POOL_MAX_BYTES} in all.
 *
 * Only a slab no transport references any more may be given back: after its writes completed (`write`
 * returned `true` or its promise resolved), never after a failure, when a write may still be in flight.
 * A slab comes back with the bytes last written into it: whoever encodes into it must write every byte it
 * sends (the session zeroes a reservation first for writers not known to do so, see codec/exact.ts).
 *
 * @module
 */

/** Smallest slab, bytes. */
export const MIN_SLAB_BYTES = 1024;
/** Largest slab, bytes. */
export const MAX_SLAB_BYTES = 256 * 1024;
/** Bytes the pool may hold in all (idle slabs); more are left to the garbage collector. */
export const POOL_MAX_BYTES = 4 * 1024 * 1024;

/** How many size classes above the one asked for a pooled slab may be (at most 4× the size). */
const CLASSES_UP = 2;

/** free[k] holds idle slabs of MIN_SLAB_BYTES << k bytes. */
const free: Uint8Array[][] = [];
for (let size = MIN_SLAB_BYTES; size <= MAX_SLAB_BYTES; size *= 2) free.push([]);
let pooledBytes = 0;

function classOf(bytes: number): number {
  let k = 0;
  while ((MIN_SLAB_BYTES << k) < bytes) k++;
  return k;
}

/**
 * A slab of at least `bytes` (at most {@link MAX_SLAB_BYTES}): a pooled one when there is one, of the size class
 * asked for or up to `CLASSES_UP` classes above. (Sessions ask for twice their last burst and grow a slab
 * that fills while its writes are in flight, so the slabs given back are often a class above the next request:
 * served exactly, 16 KiB echo on Deno allocated new slabs for a third of its payload bytes; with this, none.)
 */
export function takeSlab(bytes: number): Uint8Array {
  const k = classOf(Math.min(Math.max(bytes, MIN_SLAB_BYTES), MAX_SLAB_BYTES));
  let slab = free[k].pop();
  for (let j = k + 1; slab === undefined && j < free.length && j <= k + CLASSES_UP; j++) slab = free[j].pop();
  if (slab === undefined) return new Uint8Array(MIN_SLAB_BYTES << k);
  pooledBytes -= slab.length;
  return slab;
}

/** Gives back a slab from {@link takeSlab} that nothing references any more. */
export function giveSlab(slab: Uint8Array): void {
  if (pooledBytes + slab.length > POOL_MAX_BYTES) return;
  const k = classOf(slab.length);
  if ((MIN_SLAB_BYTES << k) !== slab.length) return; // not one of ours
  free[k].push(slab);
  pooledBytes += slab.length;
}

/** @internal Bytes held by the pool (tests). */
export function pooledSlabBytes(): number {
  return pooledBytes;
}
