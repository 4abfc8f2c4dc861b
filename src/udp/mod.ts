/**
 * UDP endpoints (getty's UDP_ENDPOINT and UDP_CLIENT) on the shared Session core.
 *
 * - {@link UdpEndpoint}: a bound socket serving many peers — one session for the socket (getty's model,
 *   `onMessage(s, pkg, from)` / `writePkg(pkg, { to })`), or opt-in one session per peer (`perPeer`).
 * - {@link UdpClient}: connected sockets to one server, one session each.
 *
 * Each datagram carries exactly one package: it is decoded whole, and empty, oversized (> `maxMsgLen`) or
 * undecodable datagrams are dropped and reported to `onError` while the session keeps serving. Each write is
 * one datagram of at most 65,507 bytes (larger writes fail with `MessageTooLongError` before reaching the
 * socket). Drivers: `Deno.listenDatagram` (Deno with `--unstable-net`), `Bun.udpSocket`, or node:dgram (no flag;
 * Deno's fallback) — see the `driver` option.
 *
 * @module
 */
export type { UdpSocketOptions, UdpStats } from "./common.ts";
export { UdpClient, type UdpClientOptions } from "./client.ts";
export { UdpEndpoint, type UdpEndpointOptions, type UdpEndpointStats, type UdpPerPeerOptions } from "./endpoint.ts";
export type { UdpDriver, UdpDriverName } from "./select.ts";
