/**
 * getty for TypeScript: asynchronous network I/O for Deno and Bun in the spirit of Go's getty and Netty.
 * One programming model — {@link Session}, {@link Codec}, {@link EventListener} — over TCP, TLS, UDP and
 * WebSocket, identical on both runtimes.
 *
 * @example
 * ```ts
 * import { LengthFieldCodec, TcpServer } from "@getty/getty";
 *
 * const server = new TcpServer<Uint8Array>({ host: "127.0.0.1", port: 0 });
 * await server.runEventLoop((session) => {
 *   session.setPkgHandler(new LengthFieldCodec());
 *   session.setEventListener({ onMessage: (s, pkg) => void s.writePkg(pkg) });
 * });
 * console.log(`echo server on port ${server.port}`);
 * await server.close();
 * ```
 *
 * @module
 */
export type { Codec, Reader, ReadResult, Writer } from "./src/codec.ts";
export * from "./src/codec/mod.ts";
export { type EndPoint, EndPointType } from "./src/endpoint.ts";
export type { EndpointOptions, EndpointStats, NewSessionCallback } from "./src/endpoint_core.ts";
export * from "./src/errors.ts";
export { getLogger, type Logger, type LogLevel, setLogger, setLoggerLevel } from "./src/logger.ts";
export { createMemorySessionPair, type MemoryPairOptions } from "./src/memory.ts";
export { prometheusText, type StatsSource } from "./src/metrics.ts";
export {
  type CloseInfo,
  type EventListener,
  Session,
  type SessionStat,
  type SessionState,
  type WriteOptions,
  type WriteResult,
} from "./src/session.ts";
export { SESSION_DEFAULTS, type SessionConfig, type SessionOptions } from "./src/session_options.ts";
export { TcpClient, type TcpClientOptions } from "./src/tcp_client.ts";
export { TcpServer, type TcpServerOptions } from "./src/tcp_server.ts";
export type { ClientTlsOptions, CloseFrame, Framing, PeerAddress, ServerTlsOptions } from "./src/transport.ts";
export * from "./src/udp/mod.ts";
export * from "./src/ws/mod.ts";
