/**
 * UDP media (issue 8 item 1; ehome-2.0 §8 `LinkMode` row and the paragraph after the table): with
 * `LinkMode` `UDP` the device sends plain RTP datagrams (no `$` record framing, the same 0x0d /
 * 0x1c payload markers as §4.1) to `SinkIP:SinkPort`, a UDP port of the media pool.
 *
 * A UDP lease (port-pool.ts `acquireUdp`) binds the port and accepts datagrams from the device's
 * address only (others are counted in `refused`). Each RTP packet goes through a reorder buffer
 * (rtp-reorder.ts: bounded window, loss counted) and comes out, in sequence order, as a `$` record
 * on a Readable: the lease's `connection`, which the media manager reads exactly like the TCP
 * socket, through the same de-framer (deframer.ts: SSRC check, markers, fragment reassembly).
 *
 * Loss inside a fragmented chunk: after a gap, 0x1c middle and last fragments are dropped until
 * the next first fragment or whole chunk, so the de-framer never joins the two ends of a chunk
 * around a hole (it drops the partial chunk itself when the next chunk starts).
 *
 * UDP has no end of stream: the connection ends after `idleMs` with no datagram (a playback or
 * download that finished), or on `release()`. The port goes back to the pool on every exit path.
 */
import type { Socket as UdpSocket } from "node:dgram";
import { Readable } from "node:stream";
import type { Logger } from "../log.ts";
import { MediaConnectionError } from "./errors.ts";
import { FRAGMENT_FIRST, MARKER_CHUNK, MARKER_FRAGMENT } from "./framer.ts";
import { createReorderBuffer, type ReorderBuffer, type ReorderConfig } from "./rtp-reorder.ts";

export interface UdpLeaseOptions {
  /** The device's address (normalised); datagrams from any other are refused. */
  expectedHost: string;
  /** No first datagram within this: the lease ends (`MEDIA_ACCEPT_TIMEOUT`). */
  acceptTimeoutMs: number;
  /** No datagram for this long after the first: the connection ends. Default 5 s. */
  idleMs?: number;
  reorder?: ReorderConfig;
  /** Records buffered on the connection while its reader is paused; beyond, packets are dropped. Default 4 MiB. */
  maxBufferedBytes?: number;
}

export type UdpReleaseReason =
  | "released"
  | "accept-timeout"
  | "socket-error"
  | "socket-closed"
  | "pool-closed";

export interface UdpMediaStats {
  /** Datagrams from the device accepted as RTP. */
  packets: number;
  /** Datagrams from another address. */
  refused: number;
  /** Datagrams from the device that are not RTP v2 (too short, wrong version). */
  malformed: number;
  /** RTCP datagrams (ignored). */
  rtcp: number;
  /** Sequence numbers given up by the reorder buffer. */
  packetsLost: number;
  reordered: number;
  duplicates: number;
  late: number;
  /** Fragments dropped after a loss (their chunk is incomplete). */
  fragmentsDropped: number;
  /** Packets dropped because the reader was paused and the buffer full. */
  overflowDrops: number;
  resets: number;
}

export interface UdpMediaLease {
  readonly transport: "udp";
  readonly port: number;
  readonly expectedHost: string;
  /** Resolves with the ordered `$`-record stream at the first datagram from the device. */
  readonly connection: Promise<Readable>;
  readonly done: Promise<UdpReleaseReason>;
  readonly refused: number;
  readonly released: boolean;
  stats(): UdpMediaStats;
  release(): void;
}

/** What the pool sees of a lease. */
export interface UdpLeaseHandle {
  lease: UdpMediaLease;
  end(reason: UdpReleaseReason): void;
  done: Promise<UdpReleaseReason>;
}

export interface UdpLeaseHooks {
  log?: Logger;
  now?: () => number;
  /** A datagram from another address (pool statistics). */
  onRefused?: () => void;
  onAcceptTimeout?: () => void;
  /** The socket is closed: the port may be reused. */
  onClosed(): void;
}

const RTP_HEADER = 12;

/** Wraps a datagram's RTP packet in a `$` record (ehome-2.0 §4.1 item 3), as TCP carries it. */
function dollarRecord(packet: Buffer): Buffer {
  const out = Buffer.allocUnsafe(4 + packet.length);
  out[0] = 0x24;
  out[1] = 0;
  out.writeUInt16BE(packet.length, 2);
  packet.copy(out, 4);
  return out;
}

/** Offset of the RTP payload (CSRCs and extension skipped), or -1 when the header does not fit. */
function payloadOffset(p: Buffer): number {
  let hl = RTP_HEADER + 4 * (p[0]! & 0x0f);
  if (p[0]! & 0x10) {
    if (hl + 4 > p.length) return -1;
    hl += 4 + 4 * p.readUInt16BE(hl + 2);
  }
  return hl <= p.length ? hl : -1;
}

export function openUdpLease(
  socket: UdpSocket,
  port: number,
  options: UdpLeaseOptions,
  hooks: UdpLeaseHooks,
): UdpLeaseHandle {
  const now = hooks.now ?? Date.now;
  const idleMs = options.idleMs ?? 5_000;
  const maxBuffered = options.maxBufferedBytes ?? 4 * 1024 * 1024;
  const reorder: ReorderBuffer<Buffer> = createReorderBuffer(options.reorder);
  const s = {
    packets: 0,
    refused: 0,
    malformed: 0,
    rtcp: 0,
    fragmentsDropped: 0,
    overflowDrops: 0,
  };
  let state: "waiting" | "connected" | "released" = "waiting";
  let reason: UdpReleaseReason | undefined;
  let markers: "hik" | "none" | undefined;
  /** A gap was given up: middle/last fragments are dropped until a chunk starts. */
  let afterGap = false;
  let lastAt = 0;
  let reorderTimer: NodeJS.Timeout | undefined;
  let idleTimer: NodeJS.Timeout | undefined;
  let resolveConnection!: (r: Readable) => void;
  let rejectConnection!: (e: Error) => void;
  const connection = new Promise<Readable>((res, rej) => {
    resolveConnection = res;
    rejectConnection = rej;
  });
  connection.catch(() => {});
  let resolveDone!: (r: UdpReleaseReason) => void;
  const done = new Promise<UdpReleaseReason>((res) => {
    resolveDone = res;
  });
  const stream = new Readable({ read() {}, highWaterMark: 256 * 1024 });
  stream.on("error", () => {});

  const deliver = (released: ReturnType<typeof reorder.push>) => {
    for (const r of released) {
      if (r.lostBefore > 0) afterGap = true;
      const p = r.packet;
      const at = payloadOffset(p);
      const m = at >= 0 && at < p.length ? p[at] : undefined;
      if (markers === undefined && m !== undefined) {
        markers = m === MARKER_CHUNK || m === MARKER_FRAGMENT ? "hik" : "none";
      }
      if (markers === "hik" && afterGap) {
        if (m === MARKER_FRAGMENT && p[at + 1] !== FRAGMENT_FIRST) {
          s.fragmentsDropped++;
          continue;
        }
        afterGap = false;
      }
      if (stream.readableLength > maxBuffered) {
        // The reader is paused (download backpressure) and the device cannot be slowed: drop.
        s.overflowDrops++;
        afterGap = true;
        continue;
      }
      stream.push(dollarRecord(p));
    }
  };

  const armReorder = () => {
    if (reorderTimer) clearTimeout(reorderTimer);
    reorderTimer = undefined;
    const at = reorder.deadline();
    if (at === undefined || state !== "connected") return;
    reorderTimer = setTimeout(
      () => {
        reorderTimer = undefined;
        if (state !== "connected") return;
        deliver(reorder.expire(now()));
        armReorder();
      },
      Math.max(1, at - now()),
    );
    reorderTimer.unref();
  };

  const armIdle = () => {
    idleTimer = setTimeout(() => {
      idleTimer = undefined;
      if (state !== "connected") return;
      const quiet = now() - lastAt;
      if (quiet < idleMs) {
        armIdle();
        return;
      }
      // The device stopped sending: the end of the stream (what a TCP close is).
      deliver(reorder.flush());
      stream.push(null);
    }, idleMs);
    idleTimer.unref();
  };

  const end = (why: UdpReleaseReason): void => {
    if (state === "released") return;
    const waiting = state === "waiting";
    state = "released";
    reason = why;
    clearTimeout(acceptTimer);
    clearTimeout(reorderTimer);
    clearTimeout(idleTimer);
    if (why === "accept-timeout") hooks.onAcceptTimeout?.();
    if (waiting) {
      const code =
        why === "accept-timeout"
          ? "MEDIA_ACCEPT_TIMEOUT"
          : why === "pool-closed"
            ? "MEDIA_POOL_CLOSED"
            : "MEDIA_LEASE_RELEASED";
      rejectConnection(new MediaConnectionError(code));
    }
    if (why === "socket-error") stream.destroy(new Error("the media UDP socket failed"));
    else stream.destroy();
    socket.removeAllListeners("message");
    try {
      socket.close();
    } catch {
      // Already closed.
      closed();
    }
  };

  let isClosed = false;
  const closed = () => {
    if (isClosed) return;
    isClosed = true;
    hooks.onClosed();
    resolveDone(reason ?? "socket-closed");
  };

  const acceptTimer = setTimeout(() => end("accept-timeout"), options.acceptTimeoutMs);

  socket.on("message", (msg, rinfo) => {
    if (state === "released") return;
    if (normalise(rinfo.address) !== options.expectedHost) {
      s.refused++;
      hooks.onRefused?.();
      return;
    }
    if (msg.length < RTP_HEADER || (msg[0]! & 0xc0) !== 0x80) {
      s.malformed++;
      return;
    }
    const pt = msg[1]! & 0x7f;
    if (pt >= 72 && pt <= 76) {
      s.rtcp++;
      return;
    }
    s.packets++;
    const t = now();
    lastAt = t;
    if (state === "waiting") {
      state = "connected";
      clearTimeout(acceptTimer);
      // The consumer's listeners are attached after this resolves; records wait in the stream.
      resolveConnection(stream);
      armIdle();
    }
    deliver(reorder.push(msg.readUInt16BE(2), msg, t));
    armReorder();
  });
  socket.on("error", (err) => {
    hooks.log?.debug("media UDP socket error", { port, err });
    end("socket-error");
  });
  socket.once("close", closed);
  // The reader closed the connection (or it ended): the session is over.
  stream.once("close", () => end("socket-closed"));

  const lease: UdpMediaLease = {
    transport: "udp",
    port,
    expectedHost: options.expectedHost,
    connection,
    done,
    get refused() {
      return s.refused;
    },
    get released() {
      return state === "released";
    },
    stats: () => {
      const r = reorder.stats();
      return {
        ...s,
        packetsLost: r.lost,
        reordered: r.reordered,
        duplicates: r.duplicates,
        late: r.late,
        resets: r.resets,
      };
    },
    release: () => end("released"),
  };
  return { lease, end, done };
}

/** `::ffff:10.0.0.1` compares equal to `10.0.0.1` (as port-pool.ts `normaliseAddress`). */
function normalise(address: string): string {
  const a = address.toLowerCase();
  return a.startsWith("::ffff:") && a.includes(".") ? a.slice(7) : a;
}
