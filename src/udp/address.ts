/**
 * Address helpers shared by the UDP drivers and endpoints: IP literal checks, IPv4-mapped normalisation and
 * host name resolution (node:dns, which works without flags on Deno and Bun). Bun's `send` only takes IP
 * literals, so every destination is resolved before it reaches a driver.
 *
 * @module
 */
import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import type { PeerAddress } from "../transport.ts";

/**
 * What the checks below found for recently seen hosts. Every datagram names its peer, and a server hears from
 * few distinct hosts (many ports), so a lookup replaces a regular expression per datagram. Bounded: emptied
 * when full.
 */
const families = new Map<string, 0 | 4 | 6>();
const normalized = new Map<string, string>();
const CACHE_MAX = 1024;

/** `cache`'s value for `host`, computed (and kept) on a miss. */
function cached<V>(cache: Map<string, V>, host: string, compute: (host: string) => V): V {
  let value = cache.get(host);
  if (value === undefined) {
    value = compute(host);
    if (cache.size >= CACHE_MAX) cache.clear();
    cache.set(host, value);
  }
  return value;
}

/** 4 or 6 for an IP literal, 0 for anything else (a host name). */
export function ipFamily(host: string): 0 | 4 | 6 {
  return cached(families, host, familyOf);
}

function familyOf(host: string): 0 | 4 | 6 {
  return isIP(host) as 0 | 4 | 6;
}

const MAPPED = /^::ffff:(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})$/i;

/** `::ffff:a.b.c.d` (how a dual-stack socket sees an IPv4 peer) becomes `a.b.c.d`; anything else is returned as is. */
export function normalizeHost(host: string): string {
  return cached(normalized, host, unmapped);
}

function unmapped(host: string): string {
  return MAPPED.exec(host)?.[1] ?? host;
}

/**
 * The address {@link peer} made last: the sender of the datagram being handled, in the common case. A write back
 * to it (`send(pkg, { to: from })`, how a UDP server answers) needs none of the checks and lookups a destination
 * from elsewhere needs (see {@link isLastPeer}).
 */
let lastPeer: PeerAddress | undefined;

/** `{ hostname, port }` with the host normalised (see {@link normalizeHost}): how a driver names a sender. */
export function peer(hostname: string, port: number): PeerAddress {
  const p = { hostname: normalizeHost(hostname), port };
  lastPeer = p;
  return p;
}

/**
 * Whether `to` is the very object {@link peer} made last, i.e. a sender as a driver reported it: a normalised IP
 * literal and a port the runtime gave. (Its fields are readonly; a caller that changed them anyway gets what the
 * runtime makes of them, reported as a failed send.)
 */
export function isLastPeer(to: PeerAddress): boolean {
  return to === lastPeer;
}

/** The key of a peer in maps: normalised host and port. */
export function peerKey(p: PeerAddress): string {
  return `${normalizeHost(p.hostname)}|${p.port}`;
}

/** Whether two addresses are the same peer. */
export function samePeer(a: PeerAddress, b: PeerAddress): boolean {
  return a.port === b.port && normalizeHost(a.hostname) === normalizeHost(b.hostname);
}

/** Whether an IP literal is a loopback address. */
export function isLoopback(ip: string): boolean {
  const h = normalizeHost(ip);
  return h === "::1" || /^127\./.test(h);
}

/**
 * Resolves `host` to an IP literal (IP literals are returned normalised without a lookup). `family` 4 asks for
 * IPv4 only (an IPv4 socket cannot reach IPv6 peers); 0 accepts either. Rejects with node:dns's error.
 */
export async function resolveHost(host: string, family: 0 | 4 | 6 = 0): Promise<string> {
  if (ipFamily(host) !== 0) return normalizeHost(host);
  const { address } = await lookup(host, { family });
  return normalizeHost(address);
}
