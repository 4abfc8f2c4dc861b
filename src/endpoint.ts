/**
 * Endpoint kinds (getty's `EndPointType`) and the interface every server and client implements.
 *
 * @module
 */

/** getty's endpoint kinds, by name. */
export const EndPointType = {
  UDP_ENDPOINT: "UDP_ENDPOINT",
  UDP_CLIENT: "UDP_CLIENT",
  TCP_CLIENT: "TCP_CLIENT",
  WS_CLIENT: "WS_CLIENT",
  WSS_CLIENT: "WSS_CLIENT",
  TCP_SERVER: "TCP_SERVER",
  WS_SERVER: "WS_SERVER",
  WSS_SERVER: "WSS_SERVER",
  /** In-process session pairs (see `createMemorySessionPair`); getty has no equivalent. */
  MEMORY: "MEMORY",
} as const;

/** One of getty's endpoint kinds. */
export type EndPointType = typeof EndPointType[keyof typeof EndPointType];

/** What servers and clients have in common (getty's `EndPoint`). */
export interface EndPoint {
  /** Process-unique id (servers and clients share one counter). */
  readonly id: number;
  /** The kind of endpoint. */
  readonly endPointType: EndPointType;
  /** Whether `close()` was called. */
  isClosed(): boolean;
  /** Closes the endpoint and every session it owns. */
  close(): Promise<void>;
}

let nextEndpointId = 1;

/** Allocates an endpoint id. */
export function newEndpointId(): number {
  return nextEndpointId++;
}
