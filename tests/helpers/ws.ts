// WebSocket test helpers: raw HTTP/WebSocket peers on node:net (so tests can send malformed upgrades, stop
// reading, or vanish without a close frame), and runtime WebSocket clients (the global WebSocket).
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import net from "node:net";
import process from "node:process";
import { createInterface } from "node:readline";
import { bunWebSocket, type BunWebSocketTable } from "../../mod.ts";
import type { RuntimeName } from "../../src/runtime/select.ts";
import { current, root, scriptArgs } from "./runtimes.ts";
import { waitFor, within } from "./util.ts";

/** The Sec-WebSocket-Accept value for `key`. */
export function acceptFor(key: string): string {
  return createHash("sha1").update(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest("base64");
}

/** A valid client key. */
export const KEY = "dGhlIHNhbXBsZSBub25jZQ==";

/** The standard upgrade request headers. */
export function upgradeHeaders(extra: Record<string, string> = {}): Record<string, string> {
  return {
    host: "127.0.0.1",
    upgrade: "websocket",
    connection: "Upgrade",
    "sec-websocket-key": KEY,
    "sec-websocket-version": "13",
    ...extra,
  };
}

/** A raw TCP connection that sent an HTTP request. */
export interface RawPeer {
  readonly socket: net.Socket;
  /** Resolves with the status line and headers of the response. */
  readonly head: Promise<{ status: number; headers: Record<string, string> }>;
  /** Bytes received after the response head. */
  readonly received: () => number;
  /** Resolves once the socket closed. */
  readonly closed: Promise<void>;
  /** WebSocket frames received after the head: [opcode, payload]. */
  readonly frames: Array<[number, Uint8Array]>;
}

/**
 * Sends one raw HTTP request (`method path`, headers as given, no body) and parses the response head and any
 * WebSocket frames after it. `pauseAfterHead` stops reading once the head arrived (the server then feels
 * backpressure); resume with `socket.resume()`.
 */
export function rawRequest(
  port: number,
  method: string,
  path: string,
  headers: Record<string, string>,
  options: { pauseAfterHead?: boolean } = {},
): RawPeer {
  const socket = net.connect(port, "127.0.0.1");
  let buf = Buffer.alloc(0);
  let headDone = false;
  let after = 0;
  const frames: Array<[number, Uint8Array]> = [];
  let resolveHead!: (h: { status: number; headers: Record<string, string> }) => void;
  let rejectHead!: (e: Error) => void;
  const head = new Promise<{ status: number; headers: Record<string, string> }>((res, rej) => {
    resolveHead = res;
    rejectHead = rej;
  });
  head.catch(() => {});
  const closed = new Promise<void>((resolve) => socket.on("close", () => resolve()));
  socket.on("error", () => {});
  socket.on("connect", () => {
    const lines = [`${method} ${path} HTTP/1.1`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
    socket.write(lines.join("\r\n") + "\r\n\r\n");
  });
  socket.on("data", (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    if (!headDone) {
      const end = buf.indexOf("\r\n\r\n");
      if (end < 0) return;
      headDone = true;
      const [statusLine, ...rest] = buf.subarray(0, end).toString("latin1").split("\r\n");
      const h: Record<string, string> = {};
      for (const line of rest) {
        const i = line.indexOf(":");
        if (i > 0) h[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
      }
      buf = buf.subarray(end + 4);
      resolveHead({ status: Number(statusLine.split(" ")[1]), headers: h });
      if (options.pauseAfterHead) socket.pause();
    }
    after += d.length;
    buf = buf.subarray(parseServerFrames(buf, frames));
  });
  socket.on("close", () => rejectHead(new Error("closed before a response")));
  return { socket, head, received: () => after, closed, frames };
}

/**
 * Parses the complete (unmasked) server frames at the start of `buf` into `frames` as [opcode, payload copy];
 * returns how many bytes they took (a trailing partial frame is left).
 */
export function parseServerFrames(buf: Uint8Array, frames: Array<[number, Uint8Array]>): number {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let at = 0;
  for (;;) {
    if (buf.length - at < 2) break;
    let len = buf[at + 1] & 0x7f;
    let off = 2;
    if (len === 126) {
      if (buf.length - at < 4) break;
      len = dv.getUint16(at + 2);
      off = 4;
    } else if (len === 127) {
      if (buf.length - at < 10) break;
      len = Number(dv.getBigUint64(at + 2));
      off = 10;
    }
    if (buf.length - at < off + len) break;
    frames.push([buf[at] & 0x0f, new Uint8Array(buf.subarray(at + off, at + off + len))]); // a copy, also of a Buffer
    at += off + len;
  }
  return at;
}

/** A masked client frame. */
export function clientFrame(opcode: number, payload: Uint8Array): Uint8Array {
  const len = payload.length;
  const hdr = len < 126
    ? [0x80 | opcode, 0x80 | len]
    : len < 65536
    ? [0x80 | opcode, 0x80 | 126, len >> 8, len & 255]
    : [0x80 | opcode, 0x80 | 127, 0, 0, 0, 0, (len >>> 24) & 255, (len >> 16) & 255, (len >> 8) & 255, len & 255];
  const mask = [0x11, 0x22, 0x33, 0x44];
  const out = new Uint8Array(hdr.length + 4 + len);
  out.set(hdr);
  out.set(mask, hdr.length);
  for (let i = 0; i < len; i++) out[hdr.length + 4 + i] = payload[i] ^ mask[i % 4];
  return out;
}

/** A close frame's code and reason. */
export function closePayload(code: number, reason: string): Uint8Array {
  const r = new TextEncoder().encode(reason);
  const out = new Uint8Array(2 + r.length);
  out[0] = code >> 8;
  out[1] = code & 255;
  out.set(r, 2);
  return out;
}

/** The code of a close frame payload. */
export function closeCodeOf(payload: Uint8Array): number {
  return payload.length >= 2 ? (payload[0] << 8) | payload[1] : 1005;
}

/** A bare WebSocket server on node:net that completes handshakes by hand and then does what `onSocket` says. */
export async function rawWsServer(
  onSocket: (socket: net.Socket) => void,
): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => {});
    let buf = "";
    const onData = (d: Buffer) => {
      buf += d.toString("latin1");
      const end = buf.indexOf("\r\n\r\n");
      if (end < 0) return;
      socket.off("data", onData);
      const key = /sec-websocket-key:\s*(\S+)/i.exec(buf)?.[1] ?? "";
      socket.write(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
          `Sec-WebSocket-Accept: ${acceptFor(key)}\r\n\r\n`,
      );
      onSocket(socket);
    };
    socket.on("data", onData);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const inboxes = new WeakMap<WebSocket, unknown[]>();

/** Resolves with the next message `ws` (from {@link openWebSocket}) received, in order. */
export async function nextMessage(ws: WebSocket): Promise<unknown> {
  const inbox = inboxes.get(ws)!;
  await waitFor(() => inbox.length > 0, 5_000, "a message");
  return inbox.shift();
}

/**
 * Opens a plain runtime WebSocket (not a getty session); resolves once open. Messages are collected from the
 * start (Deno may dispatch one before a handler set after `open` runs): read them with {@link nextMessage}.
 */
export async function openWebSocket(url: string, protocols?: string[]): Promise<WebSocket> {
  const ws = new WebSocket(url, protocols);
  ws.binaryType = "arraybuffer";
  const inbox: unknown[] = [];
  inboxes.set(ws, inbox);
  ws.addEventListener("message", (e) => void inbox.push(e.data));
  await within(
    new Promise<void>((resolve, reject) => {
      ws.onopen = () => resolve();
      ws.onclose = (e) => reject(new Error(`closed ${e.code}`));
    }),
    5_000,
    "WebSocket open",
  );
  ws.onopen = null;
  ws.onclose = null;
  return ws;
}

/** Resolves with the close event of `ws`. */
export function closeEventOf(ws: WebSocket): Promise<{ code: number; reason: string }> {
  if (ws.readyState === WebSocket.CLOSED) return Promise.resolve({ code: -1, reason: "already closed" });
  return new Promise((resolve) => ws.addEventListener("close", (e) => resolve({ code: e.code, reason: e.reason })));
}

/** The runtime's own HTTP server running `fetch` (Bun: with `websocket` as its table). */
export function serveFetch(
  fetch: (request: Request, server: unknown) => Response | Promise<Response | undefined> | undefined,
  websocket?: BunWebSocketTable,
): { port: number; close(): Promise<void> } {
  if (current === "bun") {
    const server = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch: (request, srv) => fetch(request, srv),
      websocket: websocket ?? bunWebSocket(),
    });
    return { port: server.port!, close: () => server.stop(true) };
  }
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    async (request, info) => (await fetch(request, info)) ?? new Response(null, { status: 500 }),
  );
  return { port: server.addr.port, close: () => server.shutdown() };
}

/** A running example process. */
export interface RunningExample {
  /** The first line matching the pattern, and its match. */
  readonly match: RegExpMatchArray;
  readonly stderr: string[];
  /** SIGTERM, then the exit code. */
  stop(): Promise<number | null>;
}

/** Starts `script` under `runtime` and resolves once a stdout line matches `ready`. */
export function startExample(
  runtime: RuntimeName,
  script: string,
  args: string[],
  ready: RegExp,
): Promise<RunningExample> {
  const [cmd, argv] = scriptArgs(runtime, script, args);
  const child = spawn(cmd, argv, {
    cwd: root,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, NO_COLOR: "1" },
  });
  const stderr: string[] = [];
  child.stderr!.on("data", (d) => stderr.push(String(d)));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${script} (${runtime}) did not get ready: ${stderr.join("")}`));
    }, 20_000);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${script} (${runtime}) exited with ${code}: ${stderr.join("")}`));
    });
    createInterface({ input: child.stdout! }).on("line", (line) => {
      const match = line.match(ready);
      if (!match) return;
      clearTimeout(timer);
      resolve({
        match,
        stderr,
        stop: () => {
          child.kill("SIGTERM");
          const killer = setTimeout(() => child.kill("SIGKILL"), 5_000);
          return exited.finally(() => clearTimeout(killer));
        },
      });
    });
  });
}
