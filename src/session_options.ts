/**
 * Per-session settings, their defaults and their validation. Every duration is in milliseconds.
 *
 * @module
 */
import { InvalidOptionError } from "./errors.ts";
import { checkInt, checkKnownKeys, checkMs, optBool, optInt, optMs } from "./options.ts";

/** Settings every session starts with; endpoints take them as `session: {…}`, sessions have setters. */
export interface SessionOptions {
  /** Largest package, in bytes, checked against the codec's declared length before buffering. Default 4 MiB. */
  readonly maxMsgLen?: number;
  /** Period of `onCron`, ms. Default 60,000. 0 turns cron off. */
  readonly cronPeriod?: number;
  /** How long a graceful close waits for outbound data to flush, ms. Default 3,000. */
  readonly waitTime?: number;
  /** Close a session that received nothing for this long, ms. Default 0 (off). */
  readonly readTimeout?: number;
  /** Fail a write not handed to the socket within this long, ms. Default 10,000. 0 = no timeout. */
  readonly writeTimeout?: number;
  /** Pending outbound bytes above which the session becomes unwritable. Default 64 KiB. */
  readonly highWaterMark?: number;
  /** Pending outbound bytes below which it becomes writable again. Default 32 KiB. */
  readonly lowWaterMark?: number;
  /** Hard cap on pending outbound bytes; writes past it fail with SessionBlockedError. Default 16 MiB. */
  readonly outboundCap?: number;
  /** Packages decoded but not yet handled before the session stops reading from the socket. Default 256. */
  readonly inboundQueueLimit?: number;
  /**
   * Zero-copy reads (Netty's pooled buffers, without reference counts). Default false. When true, a package that
   * is a view of the bytes read (the built-in codecs' packages, or the raw chunk without a reader) is valid only
   * until a synchronous `onMessage` returns: the transport may read the next bytes over it. Keep a copy
   * (`pkg.slice()`) of what you keep longer. The session keeps the bytes intact wherever it holds on to them
   * itself: an async `onMessage`, packages waiting for the handler or in `readable`, a partial frame (one of up to
   * 64 KiB is copied into a buffer of the session's own, so the read can be reused; a package completed there is
   * valid as long as one read in place); `send` and `writePkg` copy or encode them at once. Beyond that, nothing must keep a view: not an array, not a writer that
   * returns a view of the package, not a stream's queue (`session.writable` included).
   *
   * Used by Deno's TCP and TLS reads (the next read lands in the same place: 7 % less CPU per small package, 20 %
   * per 16 KiB package), Deno's native UDP driver (datagrams handed over uncopied once a few in a row were
   * released), and WebSocket sessions over the standard `WebSocket` (Deno's server, the clients on both
   * runtimes): a binary message of 1 KiB or more is detached, so a view kept past `onMessage` reads as empty, and
   * its memory is freed at once (on Deno, 16 KiB messages: 1.3–1.5× the messages per second).
   */
  readonly reuseReadBuffer?: boolean;
}

/** The resolved settings (every field present). */
export type SessionConfig = { -readonly [K in keyof SessionOptions]-?: NonNullable<SessionOptions[K]> };

/** Defaults for every session option. */
export const SESSION_DEFAULTS: Readonly<SessionConfig> = Object.freeze({
  maxMsgLen: 4 * 1024 * 1024,
  cronPeriod: 60_000,
  waitTime: 3_000,
  readTimeout: 0,
  writeTimeout: 10_000,
  highWaterMark: 64 * 1024,
  lowWaterMark: 32 * 1024,
  outboundCap: 16 * 1024 * 1024,
  inboundQueueLimit: 256,
  reuseReadBuffer: false,
});

const KEYS = Object.keys(SESSION_DEFAULTS);

/** Validates `options` (named under `where`, e.g. `"TcpServer.session"`) and fills in defaults. */
export function resolveSessionOptions(where: string, options: SessionOptions | undefined): SessionConfig {
  const o = options ?? {};
  checkKnownKeys(where, o, KEYS);
  const d = SESSION_DEFAULTS;
  const config: SessionConfig = {
    maxMsgLen: optInt(`${where}.maxMsgLen`, o.maxMsgLen, d.maxMsgLen, 1),
    cronPeriod: optMs(`${where}.cronPeriod`, o.cronPeriod, d.cronPeriod, true),
    waitTime: optMs(`${where}.waitTime`, o.waitTime, d.waitTime, true),
    readTimeout: optMs(`${where}.readTimeout`, o.readTimeout, d.readTimeout, true),
    writeTimeout: optMs(`${where}.writeTimeout`, o.writeTimeout, d.writeTimeout, true),
    highWaterMark: optInt(`${where}.highWaterMark`, o.highWaterMark, d.highWaterMark, 1),
    lowWaterMark: optInt(`${where}.lowWaterMark`, o.lowWaterMark, d.lowWaterMark, 0),
    outboundCap: optInt(`${where}.outboundCap`, o.outboundCap, d.outboundCap, 1),
    inboundQueueLimit: optInt(`${where}.inboundQueueLimit`, o.inboundQueueLimit, d.inboundQueueLimit, 1),
    reuseReadBuffer: optBool(`${where}.reuseReadBuffer`, o.reuseReadBuffer, d.reuseReadBuffer),
  };
  checkWaterMarks(where, config);
  return config;
}

/** Checks low <= high <= cap. */
export function checkWaterMarks(
  where: string,
  c: Pick<SessionConfig, "highWaterMark" | "lowWaterMark" | "outboundCap">,
): void {
  if (c.lowWaterMark > c.highWaterMark) {
    throw new InvalidOptionError(
      `${where}.lowWaterMark`,
      `must not exceed highWaterMark (${c.lowWaterMark} > ${c.highWaterMark})`,
    );
  }
  if (c.highWaterMark > c.outboundCap) {
    throw new InvalidOptionError(
      `${where}.highWaterMark`,
      `must not exceed outboundCap (${c.highWaterMark} > ${c.outboundCap})`,
    );
  }
}

export { checkInt, checkMs };
