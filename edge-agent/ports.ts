import type { DeviceEvent } from "../lib/contracts/events.ts";
import type { XmlElement } from "./signalling/codec/index.ts";

/**
 * Ports (interfaces) the agent core uses. Adapters live elsewhere: the UDP transport in
 * ./signalling/server.ts, the file allowlist in ./signalling/provisioning.ts, the JSON-lines event
 * sink in ./main.ts; cloud adapters (SQS, DynamoDB) plug in here later without touching the core.
 */

/** A UDP peer as observed on the socket. */
export interface Peer {
  host: string;
  port: number;
}

export interface DatagramHandlers {
  /** One inbound datagram. Called synchronously from the socket; must not throw. */
  onDatagram(bytes: Buffer, host: string, port: number): void;
  /** An asynchronous send failure (the socket reports it after `send` returned). */
  onSendError(error: Error): void;
}

/** The signalling socket. The real one is UDP (./signalling/server.ts); tests use an in-memory one. */
export interface DatagramTransport {
  /** Binds and starts delivering datagrams; resolves with the bound address. */
  start(handlers: DatagramHandlers): Promise<Peer>;
  /** Fire-and-forget send; may throw synchronously when the socket is closed. */
  send(bytes: Uint8Array, host: string, port: number): void;
  /** The bound address (valid after `start`). */
  address(): Peer;
  /** Idempotent. */
  close(): Promise<void>;
}

/** Where device events go (SQS later; JSON lines on stdout for `npm run agent`). */
export interface EventSink<E = DeviceEvent> {
  /** Called once per event, already stamped (eventId, agentId, version, at). Errors are counted. */
  emit(event: E): void | Promise<void>;
}

/**
 * Whether a device may register, and the password it must present: a clear `password` (allowlist
 * file, memory) or, from sources that keep only a hash (the cloud registry), `passwordHash`,
 * checked by `verifyPassword`. Either one set means the device has a password (EHOME_REQUIRE_PASSWORD).
 */
export interface ProvisioningDecision {
  allowed: boolean;
  password?: string;
  passwordHash?: string;
}

/**
 * The allowlist. `undefined` means "not listed" (allowed only with auto-provisioning). Lookups may
 * be synchronous (file, memory) or asynchronous (DynamoDB later); the agent stays synchronous when
 * the answer is.
 */
export interface ProvisioningSource {
  lookup(
    deviceId: string,
  ): ProvisioningDecision | undefined | Promise<ProvisioningDecision | undefined>;
  /**
   * For sources that keep only a password hash (the cloud registry): whether `password`, as the
   * device sent it in REGISTER, matches. Used when the decision carries no clear `password`.
   * Sources without stored passwords answer true.
   */
  verifyPassword?(deviceId: string, password: string): boolean | Promise<boolean>;
}

/** A provisioning source that accepts pushed changes (API-driven updates plug in here). */
export interface UpdatableProvisioningSource extends ProvisioningSource {
  /** Sets or (with `undefined`) removes the decision for one device. */
  update(deviceId: string, decision: ProvisioningDecision | undefined): void;
}

/** A device-originated report other than REGISTER/KEEPALIVE, after de-duplication. */
export interface DeviceReport {
  /** `gps`, `alarm`, or the catalogue id of another device request (`status`, `upgradeStatus`, ...). */
  kind: string;
  deviceId: string;
  sequence: number;
  /** Observed `host:port`. */
  address: string;
  params: XmlElement;
  /** Epoch ms when the agent received it. */
  receivedAt: number;
}

/** Consumer of device reports (alarms, GPS, status). Errors are counted, never propagated. */
export interface ReportSink {
  report(report: DeviceReport): void | Promise<void>;
}

export type TraceDirection = "in" | "out";

/** Trace mode (ehome-2.0 §8 rule 4): every datagram both ways. Must never block the caller. */
export interface TraceRecorder {
  record(direction: TraceDirection, host: string, port: number, bytes: Uint8Array): void;
  /** Records dropped because the write queue was full or a write failed. */
  readonly dropped: number;
  /** Writes what is queued, then releases the file. Idempotent. */
  close(): Promise<void>;
}
