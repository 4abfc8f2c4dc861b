// UDP test helpers: a raw node:dgram peer (no flag needed on Deno or Bun) to send arbitrary datagrams, and the
// drivers available on the runtime running the suite.
import dgram from "node:dgram";
import { LengthFieldCodec, type PeerAddress, type UdpDriver } from "../../mod.ts";
import { detectRuntime } from "../../src/runtime/select.ts";
import { hasDenoListenDatagram } from "../../src/udp/select.ts";
import { waitFor } from "./util.ts";

/** The drivers to test here: the runtime's own API when available (Deno needs --unstable-net), and node:dgram. */
export function udpDrivers(): Array<Exclude<UdpDriver, "auto">> {
  return detectRuntime() === "bun" || hasDenoListenDatagram() ? ["native", "node"] : ["node"];
}

/** A 4-byte big-endian length-prefixed frame of `body`. */
export function frame(body: Uint8Array): Uint8Array {
  return new LengthFieldCodec().write(undefined, body);
}

/** A datagram received by a {@link RawPeer}. */
export interface RawDatagram {
  readonly data: Uint8Array;
  readonly from: PeerAddress;
}

/** A bare UDP socket on 127.0.0.1 that records what it receives. */
export interface RawPeer {
  readonly port: number;
  readonly address: PeerAddress;
  readonly received: RawDatagram[];
  /** Sends one datagram to 127.0.0.1:`port`; resolves once handed to the kernel. */
  send(data: Uint8Array, port: number): Promise<void>;
  /** Waits until `n` datagrams arrived. */
  waitFor(n: number, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

/** Binds a raw peer on 127.0.0.1. */
export async function rawPeer(): Promise<RawPeer> {
  const socket = dgram.createSocket("udp4");
  const received: RawDatagram[] = [];
  socket.on("message", (msg, rinfo) => {
    received.push({ data: new Uint8Array(msg), from: { hostname: rinfo.address, port: rinfo.port } });
  });
  socket.on("error", () => {});
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", () => resolve()));
  const port = socket.address().port;
  return {
    port,
    address: { hostname: "127.0.0.1", port },
    received,
    send: (data, to) =>
      new Promise<void>((resolve, reject) => socket.send(data, to, "127.0.0.1", (e) => (e ? reject(e) : resolve()))),
    waitFor: (n, timeoutMs = 5_000) => waitFor(() => received.length >= n, timeoutMs, `${n} datagrams`),
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
}

/** A port on 127.0.0.1 where nothing listens (bound, then released). */
export async function deadPort(): Promise<number> {
  const p = await rawPeer();
  await p.close();
  return p.port;
}
