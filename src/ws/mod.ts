/**
 * WebSocket (WS and WSS) servers and clients on the shared Session core.
 *
 * @module
 */
export {};
