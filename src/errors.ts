/**
 * Typed errors with stable codes. Every failure the library reports is a {@link GettyError}; compare on
 * `error.code` (stable across versions) or with `instanceof` on the subclass.
 *
 * @module
 */

/** The stable error codes. */
export type ErrorCode =
  | "ERR_SESSION_CLOSED"
  | "ERR_WRITE_TIMEOUT"
  | "ERR_READ_TIMEOUT"
  | "ERR_SESSION_BLOCKED"
  | "ERR_MESSAGE_TOO_LONG"
  | "ERR_CODEC"
  | "ERR_CONNECT"
  | "ERR_CONNECTION"
  | "ERR_INVALID_OPTION"
  | "ERR_HANDLER"
  | "ERR_ENDPOINT_CLOSED";

/** Base class of every error the library raises. */
export class GettyError extends Error {
  /** Stable machine-readable code. */
  readonly code: ErrorCode;
  /** Creates an error with a stable code. */
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** The session is closing or closed: the write or operation was not performed. */
export class SessionClosedError extends GettyError {
  /** Creates the error; `detail` says which operation was refused. */
  constructor(detail = "session is closed", options?: { cause?: unknown }) {
    super("ERR_SESSION_CLOSED", detail, options);
  }
}

/** A write was not handed to the socket within its timeout. */
export class WriteTimeoutError extends GettyError {
  /** The timeout that expired, in milliseconds. */
  readonly timeoutMs: number;
  /** Creates the error for a timeout of `timeoutMs` milliseconds. */
  constructor(timeoutMs: number, midFrame: boolean) {
    super(
      "ERR_WRITE_TIMEOUT",
      midFrame
        ? `write timed out after ${timeoutMs} ms with part of the frame on the wire; the session was closed`
        : `write timed out after ${timeoutMs} ms before any byte was sent; raise writeTimeout or check isWritable()`,
    );
    this.timeoutMs = timeoutMs;
  }
}

/** Nothing was received for `readTimeout` milliseconds; the session was closed. */
export class ReadTimeoutError extends GettyError {
  /** The read timeout that expired, in milliseconds. */
  readonly timeoutMs: number;
  /** Creates the error for a timeout of `timeoutMs` milliseconds. */
  constructor(timeoutMs: number) {
    super("ERR_READ_TIMEOUT", `nothing received for ${timeoutMs} ms (readTimeout); the session was closed`);
    this.timeoutMs = timeoutMs;
  }
}

/** The session's outbound buffer is at its hard cap (`outboundCap`); the write was refused. */
export class SessionBlockedError extends GettyError {
  /** Creates the error. */
  constructor(pending: number, cap: number, size: number) {
    super(
      "ERR_SESSION_BLOCKED",
      `outbound buffer full: ${pending} bytes pending + ${size} would exceed outboundCap ${cap}; wait for isWritable() or onWritabilityChange`,
    );
  }
}

/** A package is longer than `maxMsgLen`. */
export class MessageTooLongError extends GettyError {
  /** The declared or actual length. */
  readonly length: number;
  /** The limit in force. */
  readonly max: number;
  /** The option that set the limit, e.g. `maxMsgLen` or `maxFrameLength`. */
  readonly limit: string;
  /** Creates the error for a package of `length` bytes against the limit `max` set by option `limit`. */
  constructor(length: number, max: number, what = "package", limit = "maxMsgLen") {
    super("ERR_MESSAGE_TOO_LONG", `${what} of ${length} bytes exceeds ${limit} ${max}`);
    this.limit = limit;
    this.length = length;
    this.max = max;
  }
}

/** A codec rejected its input or returned an invalid result. */
export class CodecError extends GettyError {
  /** Creates the error. */
  constructor(message: string, options?: { cause?: unknown }) {
    super("ERR_CODEC", message, options);
  }
}

/** A connection could not be established (refused, unreachable, TLS verification failed, timed out). */
export class ConnectError extends GettyError {
  /** The address that was dialled, `host:port`. */
  readonly address: string;
  /** Creates the error for `address`. */
  constructor(address: string, message: string, options?: { cause?: unknown }) {
    super("ERR_CONNECT", `connect to ${address} failed: ${message}`, options);
    this.address = address;
  }
}

/** An established connection failed (reset, broken pipe, TLS alert). */
export class ConnectionError extends GettyError {
  /** Creates the error. */
  constructor(message: string, options?: { cause?: unknown }) {
    super("ERR_CONNECTION", message, options);
  }
}

/** An option is missing or out of range; the message names the option. */
export class InvalidOptionError extends GettyError {
  /** The option's name, e.g. `maxMsgLen`. */
  readonly option: string;
  /** Creates the error for `option`. */
  constructor(option: string, message: string) {
    super("ERR_INVALID_OPTION", `invalid option ${option}: ${message}`);
    this.option = option;
  }
}

/** An application callback (onMessage, onCron, a close callback, …) threw or rejected. */
export class HandlerError extends GettyError {
  /** Which callback failed, e.g. `onMessage`. */
  readonly handler: string;
  /** Creates the error wrapping `cause`. */
  constructor(handler: string, cause: unknown) {
    super("ERR_HANDLER", `${handler} failed: ${describe(cause)}`, { cause });
    this.handler = handler;
  }
}

/** The server or client was closed; the operation was not performed. */
export class EndpointClosedError extends GettyError {
  /** Creates the error. */
  constructor(message = "endpoint is closed") {
    super("ERR_ENDPOINT_CLOSED", message);
  }
}

/** A short description of an unknown thrown value, for messages. */
export function describe(value: unknown): string {
  if (value instanceof Error) return value.message || value.name;
  return String(value);
}
