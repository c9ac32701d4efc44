import { isLoopback } from "./address-limiter.ts";
import type { CatalogueView } from "./catalogue.ts";
import type { WireEncoding } from "./codec/index.ts";
import type { WorkStatusChannel } from "./device-status.ts";

/**
 * Device sessions keyed by `DeviceID`, with an index by observed address (responses carry no
 * DeviceID) and keepalive expiry (ehome-2.0 §2.2).
 *
 * Expiry scales to 100k sessions without a timer per session: a bucketed timing wheel that is lazy
 * about keepalives. A session sits in exactly one bucket, the one of its deadline when it was last
 * (re)scheduled; a KEEPALIVE only writes `lastSeen`. When a bucket comes due, each session in it
 * is either expired (silent long enough) or moved to the bucket of its new deadline, so a live
 * session is touched by the wheel about once per timeout period, and the hot path does no work.
 */

/** How many recent device Sequences a session remembers for de-duplication (ehome-2.0 §2.9). */
export const RECENT_SEQUENCES = 8;

export interface DeviceInfo {
  serialNumber?: string;
  channelCount?: number;
  alarmInCount?: number;
  alarmOutCount?: number;
  diskCount?: number;
  channels?: WorkStatusChannel[];
  /** Epoch ms. */
  learnedAt: number;
}

export interface DeviceSession {
  readonly deviceId: string;
  /** Observed source address of the last REGISTER/KEEPALIVE; never LocalIP (ehome-2.0 §1.1). */
  host: string;
  port: number;
  /** The device's encoding; we answer in it (ehome-2.0 §1.3). */
  encoding: WireEncoding;
  /** The catalogue with this device's dialect applied (ehome-2.0 §8 rule 2). */
  view: CatalogueView;
  protocolVersion: string;
  firmwareVersion: string | undefined;
  devType: string | undefined;
  netUnitType: string | undefined;
  /** Epoch ms. */
  registeredAt: number;
  /** Epoch ms of the last datagram from the device. */
  lastSeen: number;
  /** `lastSeen` as of the last coalesced last-seen event. */
  lastSeenFlushed: number;
  /** Next platform Sequence (random start, wraps below 2^31; ehome-2.0 §3.2). */
  nextSequence: number;
  /** Ring of recent device Sequences (REGISTER, GPS, alarms, reports; not KEEPALIVE). */
  recent: number[];
  recentPos: number;
  info: DeviceInfo | undefined;
  /** Set when the session left the store (expired, dropped or replaced). */
  closed: boolean;
}

export type ReadonlySession = Readonly<Omit<DeviceSession, "recent" | "recentPos" | "closed">>;

export interface NewSession {
  deviceId: string;
  host: string;
  port: number;
  encoding: WireEncoding;
  view: CatalogueView;
  protocolVersion: string;
  firmwareVersion?: string | undefined;
  devType?: string | undefined;
  netUnitType?: string | undefined;
  now: number;
  firstSequence: number;
}

const SEQUENCE_LIMIT = 2 ** 31;

/**
 * A flat copy of a string. Strings cut out of a decoded datagram are V8 "sliced strings" that keep
 * the whole document text alive (≈ 500 bytes per REGISTER); a session holds its strings for
 * days, so it holds copies. Measured: ≈ 1 KiB per session with slices, half that with copies.
 */
export function ownString(s: string): string;
export function ownString(s: string | undefined): string | undefined;
export function ownString(s: string | undefined): string | undefined {
  return s === undefined ? undefined : Buffer.from(s, "utf8").toString("utf8");
}

export function newSession(s: NewSession): DeviceSession {
  return {
    deviceId: ownString(s.deviceId),
    host: s.host,
    port: s.port,
    encoding: s.encoding,
    view: s.view,
    protocolVersion: ownString(s.protocolVersion),
    firmwareVersion: ownString(s.firmwareVersion),
    devType: ownString(s.devType),
    netUnitType: ownString(s.netUnitType),
    registeredAt: s.now,
    lastSeen: s.now,
    lastSeenFlushed: s.now,
    nextSequence: s.firstSequence % SEQUENCE_LIMIT,
    recent: [-1, -1, -1, -1, -1, -1, -1, -1],
    recentPos: 0,
    info: undefined,
    closed: false,
  };
}

/** Takes the session's next platform Sequence (wraps below 2^31). */
export function takeSequence(session: DeviceSession): number {
  const seq = session.nextSequence;
  session.nextSequence = seq + 1 >= SEQUENCE_LIMIT ? 0 : seq + 1;
  return seq;
}

/** True when this device Sequence was already acted on; otherwise remembers it. */
export function isDuplicate(session: DeviceSession, sequence: number): boolean {
  const r = session.recent;
  for (let i = 0; i < RECENT_SEQUENCES; i++) if (r[i] === sequence) return true;
  r[session.recentPos] = sequence;
  session.recentPos = (session.recentPos + 1) % RECENT_SEQUENCES;
  return false;
}

/** `ip:port`, with IPv6 hosts bracketed. */
export function formatAddress(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

export interface SessionStoreOptions {
  /** Silence after which a session expires (KeepAliveSeconds × missed). */
  timeoutMs: number;
  /** Wheel granularity; default timeout/10 clamped to 10..1000 ms. */
  tickMs?: number;
  now?: () => number;
  /** Called after an expired session left the store. Must not throw. */
  onExpire: (session: DeviceSession) => void;
  /**
   * Sessions per source IP (`EHOME_MAX_SESSIONS_PER_ADDRESS`, issue 7); 0 or unset: no cap.
   * NAT'd fleets share addresses, so it bounds floods, not fleets. Loopback is exempt.
   */
  maxPerAddress?: number;
}

export interface SessionStore {
  get(deviceId: string): DeviceSession | undefined;
  byAddress(host: string, port: number): DeviceSession | undefined;
  readonly size: number;
  values(): IterableIterator<DeviceSession>;
  /** Inserts a session; a previous session of the same device is closed and returned. */
  add(session: DeviceSession): DeviceSession | undefined;
  /**
   * Whether `deviceId` may hold a session at `host` under the per-address cap: always when it
   * already has one there; otherwise only below the cap (a refusal is counted).
   */
  admits(deviceId: string, host: string): boolean;
  /** Sessions whose observed address is `host`. */
  countAt(host: string): number;
  /** REGISTERs refused by the per-address cap. */
  readonly capRefused: number;
  /** Records a new observed address (NAT rebinding, re-register). */
  move(session: DeviceSession, host: string, port: number): void;
  /** Removes a session (no callback). False when it was not the current one. */
  remove(session: DeviceSession): boolean;
  /** Expires what is due now; called by the timer, exposed for tests and benchmarks. */
  sweep(now?: number): number;
  start(): void;
  close(): void;
}

export function createSessionStore(options: SessionStoreOptions): SessionStore {
  const now = options.now ?? Date.now;
  const timeoutMs = options.timeoutMs;
  const tickMs = options.tickMs ?? Math.min(1000, Math.max(10, Math.floor(timeoutMs / 10)));
  const byId = new Map<string, DeviceSession>();
  const byAddr = new Map<string, DeviceSession>();
  const wheel = new Map<number, DeviceSession[]>();
  const maxPerAddress = options.maxPerAddress ?? 0;
  /** Sessions per host (only with a cap: no work otherwise). */
  const perHost = new Map<string, number>();
  let capRefused = 0;
  let timer: NodeJS.Timeout | undefined;

  const countHost = (host: string, delta: number): void => {
    if (maxPerAddress <= 0) return;
    const n = (perHost.get(host) ?? 0) + delta;
    if (n <= 0) perHost.delete(host);
    else perHost.set(host, n);
  };

  const schedule = (s: DeviceSession): void => {
    const slot = Math.ceil((s.lastSeen + timeoutMs) / tickMs);
    const bucket = wheel.get(slot);
    if (bucket) bucket.push(s);
    else wheel.set(slot, [s]);
  };

  const unindex = (s: DeviceSession): void => {
    const key = formatAddress(s.host, s.port);
    if (byAddr.get(key) === s) byAddr.delete(key);
  };

  const store: SessionStore = {
    get: (id) => byId.get(id),
    byAddress: (host, port) => byAddr.get(formatAddress(host, port)),
    get size() {
      return byId.size;
    },
    values: () => byId.values(),
    admits(deviceId, host) {
      if (maxPerAddress <= 0 || isLoopback(host)) return true;
      if (byId.get(deviceId)?.host === host) return true;
      if ((perHost.get(host) ?? 0) < maxPerAddress) return true;
      capRefused++;
      return false;
    },
    countAt: (host) => perHost.get(host) ?? 0,
    get capRefused() {
      return capRefused;
    },
    add(session) {
      const previous = byId.get(session.deviceId);
      if (previous) {
        previous.closed = true;
        unindex(previous);
        countHost(previous.host, -1);
      }
      countHost(session.host, 1);
      byId.set(session.deviceId, session);
      byAddr.set(formatAddress(session.host, session.port), session);
      schedule(session);
      return previous;
    },
    move(session, host, port) {
      unindex(session);
      if (session.host !== host) {
        countHost(session.host, -1);
        countHost(host, 1);
      }
      session.host = host;
      session.port = port;
      byAddr.set(formatAddress(host, port), session);
    },
    remove(session) {
      if (byId.get(session.deviceId) !== session) return false;
      byId.delete(session.deviceId);
      unindex(session);
      countHost(session.host, -1);
      session.closed = true;
      return true;
    },
    sweep(at = now()) {
      const due = Math.floor(at / tickMs);
      let expired = 0;
      for (const slot of [...wheel.keys()]) {
        if (slot > due) continue;
        const bucket = wheel.get(slot)!;
        wheel.delete(slot);
        for (const s of bucket) {
          if (s.closed) continue;
          if (s.lastSeen + timeoutMs <= at) {
            store.remove(s);
            expired++;
            options.onExpire(s);
          } else {
            schedule(s);
          }
        }
      }
      return expired;
    },
    start() {
      if (timer) return;
      timer = setInterval(() => store.sweep(), tickMs);
      timer.unref();
    },
    close() {
      if (timer) clearInterval(timer);
      timer = undefined;
      wheel.clear();
    },
  };
  return store;
}
