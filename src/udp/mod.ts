/**
 * UDP endpoints (getty's UDP_ENDPOINT and UDP_CLIENT) on the shared Session core.
 *
 * @module
 */
export {};
