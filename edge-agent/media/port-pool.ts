/**
 * The media port pool (issue 4 item 1; ehome-2.0 §4.1 item 1): one TCP port of EHOME_MEDIA_PORTS
 * per media session, so a session is identified by its port and the device is told
 * `SinkIP`/`SinkPort` in INVITESTREAM, PLAYBACK or DOWNLOAD.
 *
 * A lease listens on its port until the expected device connects (only its address is accepted;
 * others are reset and counted), then stops listening: one connection per session. The port goes
 * back to the pool once the listener and the connection are closed, on every exit path: the owner's
 * `release()`, the accept timeout, a socket error, the device closing, and `close()` of the pool.
 * Exhaustion is a MediaPortsExhaustedError (503), never a wait.
 */
import { createSocket, type Socket as UdpSocket } from "node:dgram";
import { createServer, type Server, type Socket } from "node:net";
import type { Logger } from "../log.ts";
import { MediaConnectionError, MediaPortsExhaustedError } from "./errors.ts";
import { openUdpLease, type UdpLeaseOptions, type UdpMediaLease } from "./udp-media.ts";

export interface PortPoolConfig {
  /** EHOME_MEDIA_PORTS, inclusive. */
  mediaPorts: { min: number; max: number };
  /** Bind address of the listeners (EHOME_HOST). */
  host: string;
  /** How long a lease waits for the device to connect. Default 10 s. */
  acceptTimeoutMs?: number;
}

export interface PortPoolDeps {
  logger?: Logger;
}

export type ReleaseReason =
  | "released"
  | "accept-timeout"
  | "socket-error"
  | "socket-closed"
  | "pool-closed";

export interface AcquireOptions {
  /** The device's address (the source of its signalling datagrams); no other may connect. */
  host: string;
  acceptTimeoutMs?: number;
}

export interface MediaLease {
  readonly port: number;
  readonly expectedHost: string;
  /**
   * The device's connection, once accepted. Rejects with a MediaConnectionError when the lease
   * ends first (MEDIA_ACCEPT_TIMEOUT, MEDIA_LEASE_RELEASED, MEDIA_POOL_CLOSED). The lease owns the
   * socket: the owner reads from it and ends the session with `release()`.
   */
  readonly connection: Promise<Socket>;
  /** Resolves when the port is back in the pool, with why the lease ended. Never rejects. */
  readonly done: Promise<ReleaseReason>;
  /** Connections reset: from another address, or after the session's one. */
  readonly refused: number;
  readonly released: boolean;
  /** Ends the lease: stops listening, destroys the connection, returns the port. Idempotent. */
  release(): void;
}

export interface PortPoolStats {
  size: number;
  available: number;
  acquired: number;
  exhausted: number;
  bindFailures: number;
  refused: number;
  acceptTimeouts: number;
  socketErrors: number;
}

/** A UDP lease (issue 8, `LinkMode` UDP): udp-media.ts. */
export interface AcquireUdpOptions extends AcquireOptions {
  idleMs?: number;
  reorder?: UdpLeaseOptions["reorder"];
  maxBufferedBytes?: number;
}

export interface PortPool {
  readonly size: number;
  /** Leases a port, listening, or throws MediaPortsExhaustedError / MEDIA_POOL_CLOSED. */
  acquire(expected: AcquireOptions): Promise<MediaLease>;
  /** Leases a port of the same pool bound for UDP media (udp-media.ts); same errors. */
  acquireUdp(expected: AcquireUdpOptions): Promise<UdpMediaLease>;
  /** Ports not leased (and not still closing). */
  available(): number;
  stats(): PortPoolStats;
  /** Ends every lease (`pool-closed`) and resolves once every port is closed. Idempotent. */
  close(): Promise<void>;
}

const DEFAULT_ACCEPT_TIMEOUT_MS = 10_000;

/** `::ffff:10.0.0.1` (an IPv4 peer on a dual-stack listener) compares equal to `10.0.0.1`. */
export function normaliseAddress(address: string | undefined): string {
  if (!address) return "";
  const a = address.toLowerCase();
  return a.startsWith("::ffff:") && a.includes(".") ? a.slice(7) : a;
}

function bindUdp(socket: UdpSocket, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    socket.once("error", onError);
    socket.bind({ port, address: host, exclusive: true }, () => {
      socket.off("error", onError);
      resolve();
    });
  });
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    server.once("error", onError);
    server.listen({ port, host, exclusive: true }, () => {
      server.off("error", onError);
      resolve();
    });
  });
}

export function createPortPool(config: PortPoolConfig, deps: PortPoolDeps = {}): PortPool {
  const { min, max } = config.mediaPorts;
  const size = max - min + 1;
  const log = deps.logger;
  /** Ports leased or still closing. */
  const taken = new Set<number>();
  const leases = new Set<{ end(reason: ReleaseReason): void; done: Promise<ReleaseReason> }>();
  const stats = {
    acquired: 0,
    exhausted: 0,
    bindFailures: 0,
    refused: 0,
    acceptTimeouts: 0,
    socketErrors: 0,
  };
  // Rotating start, so a port just released is the last to be reused (a late connection meant
  // for the old session cannot land on a new one).
  let cursor = 0;
  let closed = false;
  let closing: Promise<void> | undefined;
  /** acquire() calls between their first bind and their lease; close() waits for them. */
  const inflight = new Set<Promise<unknown>>();

  const openLease = (server: Server, port: number, expected: AcquireOptions): MediaLease => {
    const expectedHost = normaliseAddress(expected.host);
    let state: "waiting" | "connected" | "released" = "waiting";
    let reason: ReleaseReason | undefined;
    let socket: Socket | undefined;
    let refused = 0;
    let resolveConnection!: (s: Socket) => void;
    let rejectConnection!: (e: Error) => void;
    const connection = new Promise<Socket>((res, rej) => {
      resolveConnection = res;
      rejectConnection = rej;
    });
    // The owner may never await it (e.g. it releases first); that must not be an unhandled rejection.
    connection.catch(() => {});
    let resolveDone!: (r: ReleaseReason) => void;
    const done = new Promise<ReleaseReason>((res) => {
      resolveDone = res;
    });

    const end = (why: ReleaseReason): void => {
      if (state === "released") return;
      const waiting = state === "waiting";
      state = "released";
      reason = why;
      clearTimeout(timer);
      if (why === "accept-timeout") stats.acceptTimeouts++;
      if (why === "socket-error") stats.socketErrors++;
      if (waiting) {
        const code =
          why === "accept-timeout"
            ? "MEDIA_ACCEPT_TIMEOUT"
            : why === "pool-closed"
              ? "MEDIA_POOL_CLOSED"
              : "MEDIA_LEASE_RELEASED";
        rejectConnection(new MediaConnectionError(code));
      }
      socket?.destroy();
      if (server.listening) server.close();
    };
    const entry = { end, done };
    leases.add(entry);

    const timer = setTimeout(
      () => end("accept-timeout"),
      expected.acceptTimeoutMs ?? config.acceptTimeoutMs ?? DEFAULT_ACCEPT_TIMEOUT_MS,
    );

    server.on("connection", (s) => {
      const from = normaliseAddress(s.remoteAddress);
      if (state !== "waiting" || from !== expectedHost) {
        refused++;
        stats.refused++;
        log?.debug("media connection refused", { port, from, expected: expectedHost, state });
        s.on("error", () => {});
        s.resetAndDestroy();
        return;
      }
      state = "connected";
      socket = s;
      clearTimeout(timer);
      // One connection per session: stop listening. The server's 'close' follows the socket's.
      server.close();
      s.on("error", (err) => {
        log?.debug("media connection error", { port, err });
        end("socket-error");
      });
      s.once("close", () => end("socket-closed"));
      resolveConnection(s);
    });
    server.on("error", (err) => log?.warn("media listener error", { port, err }));
    server.once("close", () => {
      taken.delete(port);
      leases.delete(entry);
      resolveDone(reason ?? "socket-closed");
    });

    return {
      port,
      expectedHost,
      connection,
      done,
      get refused() {
        return refused;
      },
      get released() {
        return state === "released";
      },
      release: () => end("released"),
    };
  };

  return {
    size,
    acquire(expected) {
      if (closed) return Promise.reject(new MediaConnectionError("MEDIA_POOL_CLOSED"));
      const p = tryPorts(expected);
      inflight.add(p);
      const forget = () => inflight.delete(p);
      p.then(forget, forget);
      return p;
    },
    acquireUdp(expected) {
      if (closed) return Promise.reject(new MediaConnectionError("MEDIA_POOL_CLOSED"));
      const p = tryUdpPorts(expected);
      inflight.add(p);
      const forget = () => inflight.delete(p);
      p.then(forget, forget);
      return p;
    },
    available: () => size - taken.size,
    stats: () => ({ size, available: size - taken.size, ...stats }),
    close() {
      if (closing) return closing;
      closed = true;
      closing = (async () => {
        await Promise.allSettled([...inflight]);
        const pending = [...leases];
        for (const l of pending) l.end("pool-closed");
        await Promise.all(pending.map((l) => l.done));
      })();
      return closing;
    },
  };

  async function tryPorts(expected: AcquireOptions): Promise<MediaLease> {
    let bindFailures = 0;
    for (let tried = 0; tried < size; tried++) {
      const port = min + cursor;
      cursor = (cursor + 1) % size;
      if (taken.has(port)) continue;
      taken.add(port);
      const server = createServer();
      try {
        await listen(server, port, config.host);
      } catch (err) {
        // EADDRINUSE (another process), EACCES, ...: skip the port, keep it in the pool.
        taken.delete(port);
        bindFailures++;
        stats.bindFailures++;
        log?.debug("media port bind failed", { port, err });
        continue;
      }
      if (closed) {
        await new Promise<void>((resolve) => server.close(() => resolve()));
        taken.delete(port);
        throw new MediaConnectionError("MEDIA_POOL_CLOSED");
      }
      stats.acquired++;
      return openLease(server, port, expected);
    }
    stats.exhausted++;
    throw new MediaPortsExhaustedError({ size, leased: taken.size, bindFailures });
  }

  async function tryUdpPorts(expected: AcquireUdpOptions): Promise<UdpMediaLease> {
    let bindFailures = 0;
    for (let tried = 0; tried < size; tried++) {
      const port = min + cursor;
      cursor = (cursor + 1) % size;
      if (taken.has(port)) continue;
      taken.add(port);
      const family = config.host.includes(":") ? "udp6" : "udp4";
      const socket = createSocket({ type: family, reuseAddr: false });
      try {
        await bindUdp(socket, port, config.host);
      } catch (err) {
        socket.close();
        taken.delete(port);
        bindFailures++;
        stats.bindFailures++;
        log?.debug("media UDP port bind failed", { port, err });
        continue;
      }
      if (closed) {
        await new Promise<void>((resolve) => socket.close(() => resolve()));
        taken.delete(port);
        throw new MediaConnectionError("MEDIA_POOL_CLOSED");
      }
      stats.acquired++;
      const handle = openUdpLease(
        socket,
        port,
        {
          expectedHost: normaliseAddress(expected.host),
          acceptTimeoutMs:
            expected.acceptTimeoutMs ?? config.acceptTimeoutMs ?? DEFAULT_ACCEPT_TIMEOUT_MS,
          ...(expected.idleMs === undefined ? {} : { idleMs: expected.idleMs }),
          ...(expected.reorder === undefined ? {} : { reorder: expected.reorder }),
          ...(expected.maxBufferedBytes === undefined
            ? {}
            : { maxBufferedBytes: expected.maxBufferedBytes }),
        },
        {
          ...(log ? { log } : {}),
          onRefused: () => stats.refused++,
          onAcceptTimeout: () => stats.acceptTimeouts++,
          onClosed: () => {
            taken.delete(port);
            leases.delete(entry);
          },
        },
      );
      const entry = { end: handle.end, done: handle.done };
      leases.add(entry);
      return handle.lease;
    }
    stats.exhausted++;
    throw new MediaPortsExhaustedError({ size, leased: taken.size, bindFailures });
  }
}
