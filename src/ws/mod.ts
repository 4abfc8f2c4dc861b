/**
 * WebSocket (WS and WSS) servers and clients on the shared Session core: {@link WsHandler} for standard
 * Request upgrades (Deno.serve, Bun.serve, hono), the standalone {@link WsServer} and the {@link WsClient}
 * pool. Each message is one package: a `string` for a text message, a `Uint8Array` for a binary one.
 *
 * @module
 */
export {
  type BunServerWebSocketLike,
  bunWebSocket,
  type BunWebSocketFallback,
  type BunWebSocketOptions,
  type BunWebSocketTable,
} from "./bun_table.ts";
export { WsClient, type WsClientOptions, type WsClientTlsOptions } from "./client.ts";
export { WsHandler, type WsHandlerOptions, type WsMessage } from "./handler.ts";
export { type WsConnection, wsConnection } from "./message_transport.ts";
export type {
  AppHeartbeatOptions,
  UpgradeAccept,
  UpgradeDecision,
  UpgradeHook,
  UpgradeInfo,
  WsUpgradeOptions,
} from "./options.ts";
export { WsServer, type WsServerOptions } from "./server.ts";
