/**
 * What a transport module of the echo example provides. `echo_server.ts` and `echo_client.ts` parse the
 * command line and load `./<family>.ts` (tcp for tcp|tls, …); each module exports {@link serve} and
 * {@link connect} with these shapes.
 *
 * @module
 */
import type { NewSessionCallback, Session } from "../../mod.ts";

/** Parsed server options. */
export interface EchoServerArgs {
  /** The transport as given on the command line (e.g. `tcp`, `tls`). */
  readonly transport: string;
  readonly host: string;
  readonly port: number;
  /** Largest declared package length (the body). */
  readonly maxLen: number;
  /** PEM text of the certificate and key, for secure transports. */
  readonly cert?: string;
  readonly key?: string;
  /** Logs a line to stderr when --verbose, else does nothing. */
  readonly log: (line: string) => void;
}

/** A running echo server. */
export interface RunningServer {
  /** The bound port. */
  readonly port: number;
  /** Closes the server gracefully. */
  close(): Promise<void>;
}

/** Parsed client options. */
export interface EchoClientArgs {
  readonly transport: string;
  readonly host: string;
  readonly port: number;
  /** PEM text of a CA to trust, for secure transports. */
  readonly ca?: string;
  readonly serverName?: string;
  readonly connections: number;
}

/** A connected echo client. */
export interface ConnectedClient {
  /** Open sessions; packages written to them are echoed back as the same bytes. */
  readonly sessions: Session<Uint8Array>[];
  /** Closes every session. */
  close(): Promise<void>;
}

/** Starts an echo server. */
export type Serve = (args: EchoServerArgs) => Promise<RunningServer>;
/** Connects echo client sessions; `newSession` sets the listener (the module sets the codec first). */
export type Connect = (args: EchoClientArgs, newSession: NewSessionCallback<Uint8Array>) => Promise<ConnectedClient>;
