/**
 * What servers and clients share: the id, the handler pool, the registry of live sessions and the code that
 * turns a transport into an open session.
 *
 * @module
 */
import { type EndPoint, type EndPointType, newEndpointId } from "./endpoint.ts";
import { HandlerPool } from "./handler_pool.ts";
import { optInt } from "./options.ts";
import { Session, type SessionHost } from "./session.ts";
import { resolveSessionOptions, type SessionConfig, type SessionOptions } from "./session_options.ts";
import type { Transport } from "./transport.ts";

/** Called for every new session before it opens: set the codec, the listener and the timeouts here. Throwing refuses the session. */
export type NewSessionCallback<P> = (session: Session<P>) => void | Promise<void>;

/** Options every endpoint accepts. */
export interface EndpointOptions {
  /** Defaults for each session's settings. */
  readonly session?: SessionOptions;
  /** Name given to each session (getty: `tcp-session`, …). */
  readonly sessionName?: string;
  /** Upper bound on message handlers running at once across all sessions of the endpoint. Default unbounded. */
  readonly maxConcurrentHandlers?: number;
}

/** Counters an endpoint keeps (live sessions plus every closed one). */
export interface EndpointStats {
  /** Sessions currently open. */
  readonly open: number;
  /** Sessions ever opened (accepted or connected). */
  readonly opened: number;
  /** Connections refused (maxConnections, newSession or onOpen refused). */
  readonly refused: number;
  /** Bytes received, over all sessions. */
  readonly readBytes: number;
  /** Bytes sent, over all sessions. */
  readonly writeBytes: number;
  /** Packages received, over all sessions. */
  readonly readPkgs: number;
  /** Packages sent, over all sessions. */
  readonly writePkgs: number;
  /** Errors reported to onError, over all sessions. */
  readonly errors: number;
}

let liveEndpoints = 0;

/** @internal Servers and clients started and not yet closed, process-wide (for leak checks in tests). */
export function liveEndpointCount(): number {
  return liveEndpoints;
}

/** @internal The shared core of an endpoint. */
export class EndpointCore<P> {
  readonly id: number = newEndpointId();
  readonly pool: HandlerPool;
  readonly config: SessionConfig;
  readonly sessionName: string;
  readonly sessions: Set<Session<P>> = new Set();
  opened = 0;
  refused = 0;
  errors = 0;
  /** Counters of sessions that have closed. */
  readonly #closedTotals = { readBytes: 0, writeBytes: 0, readPkgs: 0, writePkgs: 0 };
  #endpoint: EndPoint;
  #onClosed: (session: Session<P>) => void;
  #live = false;
  /** What every session of this endpoint reports to (one object for all of them). */
  readonly #host: SessionHost;

  constructor(
    where: string,
    endpoint: EndPoint,
    options: EndpointOptions,
    defaultName: string,
    onClosed: (session: Session<P>) => void = () => {},
  ) {
    this.#endpoint = endpoint;
    this.#onClosed = onClosed;
    this.config = resolveSessionOptions(`${where}.session`, options.session);
    this.sessionName = options.sessionName ?? defaultName;
    this.pool = new HandlerPool(optInt(`${where}.maxConcurrentHandlers`, options.maxConcurrentHandlers, Infinity, 1));
    this.#host = {
      endpoint,
      pool: this.pool,
      sessionClosed: (s) => {
        const typed = s as unknown as Session<P>;
        if (!this.sessions.delete(typed)) return;
        addStat(this.#closedTotals, typed);
        this.#onClosed(typed);
      },
      sessionError: () => void this.errors++,
    };
  }

  get endPointType(): EndPointType {
    return this.#endpoint.endPointType;
  }

  /** Wraps `transport` in a session, registers it and opens it. Resolves with the session once open, or undefined if refused. */
  async open(transport: Transport, newSession: NewSessionCallback<P>): Promise<Session<P> | undefined> {
    const session = new Session<P>(transport, this.#host, this.config, this.sessionName);
    this.sessions.add(session);
    const ok = await session._open(newSession);
    if (ok) this.opened++;
    else this.refused++;
    return ok ? session : undefined;
  }

  /** Counts the endpoint as running (until `closeAll`). */
  started(): void {
    if (this.#live) return;
    this.#live = true;
    liveEndpoints++;
  }

  /** Closes every live session gracefully and waits for them; the endpoint stops counting as running. */
  async closeAll(): Promise<void> {
    if (this.#live) {
      this.#live = false;
      liveEndpoints--;
    }
    await Promise.all([...this.sessions].map((s) => s.close()));
  }

  stats(): EndpointStats {
    const totals = { ...this.#closedTotals };
    for (const s of this.sessions) addStat(totals, s);
    return { open: this.sessions.size, opened: this.opened, refused: this.refused, errors: this.errors, ...totals };
  }
}

function addStat(
  totals: { readBytes: number; writeBytes: number; readPkgs: number; writePkgs: number },
  session: Session<never> | Session<unknown>,
): void {
  const st = session.stat();
  totals.readBytes += st.readBytes;
  totals.writeBytes += st.writeBytes;
  totals.readPkgs += st.readPkgs;
  totals.writePkgs += st.writePkgs;
}
