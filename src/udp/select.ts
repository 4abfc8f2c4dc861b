/**
 * Picks the UDP driver. Drivers are loaded lazily, so Bun never evaluates the Deno driver and vice versa.
 *
 * | runtime | `"auto"` (default)                                          | `"native"`                         | `"node"`     |
 * | ------- | ----------------------------------------------------------- | ---------------------------------- | ------------ |
 * | Deno    | `Deno.listenDatagram` with `--unstable-net`, else node:dgram | `Deno.listenDatagram` (flag needed) | node:dgram |
 * | Bun     | `Bun.udpSocket`                                             | `Bun.udpSocket`                    | node:dgram   |
 *
 * @module
 */
import { InvalidOptionError } from "../errors.ts";
import { checkOneOf } from "../options.ts";
import { detectRuntime } from "../runtime/select.ts";
import type { UdpAdapter } from "./adapter.ts";

/** Which UDP implementation an endpoint uses; see the table in this module. */
export type UdpDriver = "auto" | "native" | "node";

/** The driver actually used: `"deno"` (Deno.listenDatagram), `"bun"` (Bun.udpSocket) or `"node"` (node:dgram). */
export type UdpDriverName = "deno" | "bun" | "node";

const DRIVERS: readonly UdpDriver[] = ["auto", "native", "node"];

/** Whether `Deno.listenDatagram` exists (Deno started with `--unstable-net`). */
export function hasDenoListenDatagram(): boolean {
  const d = (globalThis as { Deno?: { listenDatagram?: unknown } }).Deno;
  return typeof d?.listenDatagram === "function";
}

/**
 * Validates the `driver` option (named `option` in errors) and returns the driver to load. `"native"` on a
 * Deno without `--unstable-net` throws {@link InvalidOptionError}.
 */
export function resolveUdpDriver(option: string, driver: unknown = "auto"): UdpDriverName {
  const d = checkOneOf(option, driver, DRIVERS);
  if (d === "node") return "node";
  if (detectRuntime() === "bun") return "bun";
  if (hasDenoListenDatagram()) return "deno";
  if (d === "native") {
    throw new InvalidOptionError(
      option,
      `"native" needs Deno.listenDatagram: run Deno with --unstable-net (or use "auto", which falls back to node:dgram)`,
    );
  }
  return "node";
}

const cache = new Map<UdpDriverName, Promise<UdpAdapter>>();

/** Loads (once) the driver `name`. */
export function udpAdapter(name: UdpDriverName): Promise<UdpAdapter> {
  let p = cache.get(name);
  if (!p) {
    p = name === "bun"
      ? import("../runtime/bun_udp.ts").then((m) => m.bunUdpAdapter)
      : name === "deno"
      ? import("../runtime/deno_udp.ts").then((m) => m.denoUdpAdapter)
      : import("../runtime/node_udp.ts").then((m) => m.nodeUdpAdapter);
    cache.set(name, p);
  }
  return p;
}
