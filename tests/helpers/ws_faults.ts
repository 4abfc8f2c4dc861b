// WebSocket fault injection, the WS side of tests/helpers/faults.ts: WS and WSS targets for the shared fault
// scenarios (tests/helpers/fault_scenarios.ts), raw peers on node:net / node:tls that complete the upgrade by hand
// and then write raw frames (so they can stop mid-frame, reset, half-close, stall or stop reading), and the fault
// hooks of tests/reliability_ws.test.ts.
//
// Every package of these tests is a binary message, delivered as a Uint8Array without a codec, so the endpoints are
// typed WsServer<Uint8Array> / WsClient<Uint8Array> and the TCP helpers (roundTrips, seqPkg, SessionRecord) apply.
import assert from "node:assert/strict";
import { WsClient, WsServer, type WsServerOptions } from "../../mod.ts";
import type { FaultTarget } from "./fault_scenarios.ts";
import { concatBytes, denoStuckTls, type RawConn, rawConnect } from "./faults.ts";
import { tlsFixtures } from "./tls.ts";
import { acceptFor, clientFrame, closeCodeOf, KEY, parseServerFrames, upgradeHeaders } from "./ws.ts";
import { pattern, waitFor } from "./util.ts";

/** A raw peer whose connection was upgraded to WebSocket by hand. */
export interface WsRawConn extends RawConn {
  /** What the server sent after its 101 response, parsed into frames: [opcode, payload]. */
  frames(): Array<[number, Uint8Array]>;
  /** Sends one whole masked frame (binary unless `opcode` says otherwise). */
  send(payload: Uint8Array, opcode?: number): Promise<void>;
  /** Waits for the server's close frame, answers it as a well-behaved peer would, and returns its code. */
  answerClose(timeoutMs?: number): Promise<number>;
}

const DenoNs = (globalThis as { Deno?: unknown }).Deno;
const latin1 = new TextDecoder("latin1");

/** The upgrade request of a raw peer (the headers of tests/helpers/ws.ts). */
export function upgradeRequest(path = "/ws"): Uint8Array {
  const lines = [`GET ${path} HTTP/1.1`, ...Object.entries(upgradeHeaders()).map(([k, v]) => `${k}: ${v}`)];
  return new TextEncoder().encode(lines.join("\r\n") + "\r\n\r\n");
}

/** Where the response head in `bytes` ends (the index of its blank line), or -1 while incomplete. */
function headEnd(bytes: Uint8Array): number {
  for (let i = 0; i + 3 < bytes.length; i++) {
    if (bytes[i] === 13 && bytes[i + 1] === 10 && bytes[i + 2] === 13 && bytes[i + 3] === 10) return i;
  }
  return -1;
}

/** Checks the 101 response at the start of `bytes`; returns the length of the head (frames follow it). */
function checkSwitch(bytes: Uint8Array): number {
  const end = headEnd(bytes);
  assert.ok(end >= 0, `no complete upgrade response (${bytes.length} bytes received)`);
  const head = latin1.decode(bytes.subarray(0, end));
  assert.match(head, /^HTTP\/1\.1 101 /, head);
  assert.ok(head.toLowerCase().includes(`sec-websocket-accept: ${acceptFor(KEY).toLowerCase()}`), head);
  return end + 4;
}

/** The raw peer `conn` after a 101 response of `skip` bytes. */
function upgraded(conn: RawConn, skip: number): WsRawConn {
  const received = () => conn.received().subarray(skip);
  const frames = () => {
    const out: Array<[number, Uint8Array]> = [];
    parseServerFrames(received(), out);
    return out;
  };
  return {
    ...conn,
    received,
    receivedBytes: () => conn.receivedBytes() - skip,
    frames,
    send: (payload, opcode = 2) => conn.write(clientFrame(opcode, payload)),
    answerClose: async (timeoutMs = 5_000) => {
      let close: Uint8Array | undefined;
      await waitFor(() => (close = frames().find(([op]) => op === 8)?.[1]), timeoutMs, "the server's close frame");
      await conn.write(clientFrame(8, close!.subarray(0, 2)));
      return closeCodeOf(close!);
    },
  };
}

/**
 * Connects a raw peer to 127.0.0.1:`port` (over TLS trusting the fixture CA with `tls`) and upgrades it to
 * WebSocket on `/ws` by hand. With `stuck`, it stops reading once the 101 arrived (on Deno over TLS: a
 * Deno-native connection that is never read again, see rawConnect).
 */
export async function rawWsConnect(port: number, options: { tls?: boolean; stuck?: boolean } = {}): Promise<WsRawConn> {
  const request = upgradeRequest();
  if (options.tls && options.stuck && DenoNs) {
    const conn = await denoStuckTls(port, { request, done: (got) => headEnd(got) >= 0 });
    return upgraded(conn, checkSwitch(conn.received()));
  }
  const conn = await rawConnect(port, { tls: options.tls });
  await conn.write(request);
  await waitFor(() => headEnd(conn.received()) >= 0 || conn.isClosed(), 5_000, "the 101 response");
  const skip = checkSwitch(conn.received());
  if (options.stuck) conn.pause();
  return upgraded(conn, skip);
}

/** One WebSocket transport the fault scenarios run over: a FaultTarget with WsServer / WsClient, and raw peers. */
export interface WsTarget extends FaultTarget {
  readonly name: "ws" | "wss";
  /** The URL a WsClient dials for a server on `port`. */
  url(port: number): string;
  /** Extra WsServer options (TLS material). */
  serverOptions(): Partial<WsServerOptions>;
  /** A raw upgraded peer to the server's port; `stuck`: one that stops reading after the 101. */
  raw(port: number, options?: { stuck?: boolean }): Promise<WsRawConn>;
  /** A raw peer that only connected (TLS done for wss), before any HTTP. */
  connect(port: number): Promise<RawConn>;
}

/** WS and WSS. */
export function wsTargets(): WsTarget[] {
  const { cert, key, ca } = tlsFixtures();
  const target = (name: "ws" | "wss", tls: boolean): WsTarget => {
    const serverOptions = (): Partial<WsServerOptions> => tls ? { tls: { cert, key } } : {};
    const url = (port: number) => `${name}://127.0.0.1:${port}/ws`;
    return {
      name,
      codec: undefined,
      url,
      serverOptions,
      server: (options = {}) => new WsServer<Uint8Array>({ port: 0, ...serverOptions(), ...options }),
      client: (port, options = {}) =>
        new WsClient<Uint8Array>({ url: url(port), ...(tls ? { tls: { caCerts: [ca] } } : {}), ...options }),
      raw: (port, options) => rawWsConnect(port, { ...options, tls }),
      connect: (port) => rawConnect(port, { tls }),
      frame: (pkg) => clientFrame(2, pkg),
      // A well-behaved peer answers the server's close frame (Deno keeps the connection until it does).
      ended: async (raw) => {
        await (raw as WsRawConn).answerClose();
        await raw.closed;
      },
    };
  };
  return [target("ws", false), target("wss", true)];
}

/** A binary frame carrying `size` bytes, cut after `n` bytes: [the first part, the rest]. */
export function cutFrame(size: number, n: number): [Uint8Array, Uint8Array] {
  const frame = clientFrame(2, pattern(size, 7));
  return [frame.subarray(0, n), frame.subarray(n)];
}

/**
 * The WebSocket faults, each a raw peer's misbehaviour. Each maps to a TCP/TLS test of
 * tests/reliability_faults.test.ts; `before` are whole binary messages sent first, and `whenSent` runs once
 * everything is written, before the peer vanishes (to wait for the server to have handled it).
 */
export interface WsFaultHooks {
  /** `before`, then the header and half the payload of a 1,000-byte message; then a reset (RST). */
  resetMidMessage(
    port: number,
    before: readonly Uint8Array[],
    whenSent?: (raw: WsRawConn) => Promise<void>,
  ): Promise<{ raw: WsRawConn; how: "reset" | "destroy" }>;
  /** `before`, then half a message, then FIN without a close frame (the peer still reads). */
  finMidMessage(
    port: number,
    before: readonly Uint8Array[],
    whenSent?: (raw: WsRawConn) => Promise<void>,
  ): Promise<WsRawConn>;
  /** A partial HTTP upgrade request (no blank line), then silence. */
  slowLorisUpgrade(port: number): Promise<RawConn>;
  /** An upgraded peer that sends 3 bytes of the header of `cutFrame(100, 3)`, then silence. */
  slowLorisFrame(port: number): Promise<WsRawConn>;
  /** An upgraded peer that never reads again. */
  stopReading(port: number): Promise<WsRawConn>;
  /** A whole binary message of `size` bytes (over the server's maxMsgLen). */
  oversizedMessage(port: number, size: number): Promise<WsRawConn>;
}

/** The fault hooks over `target`. */
export function wsFaultHooks(target: WsTarget): WsFaultHooks {
  const halfMessage = async (
    port: number,
    before: readonly Uint8Array[],
    whenSent?: (r: WsRawConn) => Promise<void>,
  ) => {
    const raw = await target.raw(port);
    await raw.write(concatBytes([...before.map((m) => clientFrame(2, m)), cutFrame(1000, 8 + 500)[0]]));
    await whenSent?.(raw);
    return raw;
  };
  return {
    resetMidMessage: async (port, before, whenSent) => {
      const raw = await halfMessage(port, before, whenSent);
      return { raw, how: raw.reset() };
    },
    finMidMessage: async (port, before, whenSent) => {
      const raw = await halfMessage(port, before, whenSent);
      raw.end();
      return raw;
    },
    slowLorisUpgrade: async (port) => {
      const raw = await target.connect(port);
      await raw.write(upgradeRequest().subarray(0, 40));
      return raw;
    },
    slowLorisFrame: async (port) => {
      const raw = await target.raw(port);
      await raw.write(cutFrame(100, 3)[0]);
      return raw;
    },
    stopReading: (port) => target.raw(port, { stuck: true }),
    oversizedMessage: async (port, size) => {
      const raw = await target.raw(port);
      await raw.write(clientFrame(2, pattern(size, 3)));
      return raw;
    },
  };
}
