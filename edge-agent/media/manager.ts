import type { Readable, Writable } from "node:stream";
import type { S3Client } from "@aws-sdk/client-s3";
import {
  downloadObjectKey,
  playbackSpeedValue,
  type RecordSearchParams,
  STREAM_REPORT_SECONDS,
  type StreamCounters,
  type StreamEvent,
  type StreamFormat,
  type StreamSpec,
  type StreamStartResult,
  type StreamState,
} from "../../lib/contracts/media.ts";
import { createRateLimiter, type Logger, silentLogger } from "../log.ts";
import type { EventSink, TraceRecorder } from "../ports.ts";
import { type CatalogueView, DEFAULT_VIEW } from "../signalling/catalogue.ts";
import { childText } from "../signalling/codec/index.ts";
import type { CommandOutcome } from "../signalling/command-sender.ts";
import { createDeframer, type Deframer } from "./deframer.ts";
import { createDownloadUpload, type DownloadUpload } from "./download.ts";
import { MediaConnectionError, type MediaErrorCode, MediaPortsExhaustedError } from "./errors.ts";
import {
  CHANNEL_TYPE,
  DIRECTION,
  LINK_MODE,
  type MediaCommandTarget,
  type MediaOutcome,
  type MediaSend,
  mediaFailure,
  PLAYBACK_ACTION,
} from "./media-commands.ts";
import type { MediaLease, PortPool } from "./port-pool.ts";
import { type RecordSearchStats, searchRecords } from "./record-search.ts";
import {
  createRelay,
  RELAY_DEFAULTS,
  type Relay,
  type RelayConfig,
  type RelayViewer,
} from "./relay.ts";
import type { UdpMediaLease } from "./udp-media.ts";

/**
 * The agent's media engine (issue 4 items 3, 5, 6): one place that opens, shares, feeds, controls
 * and ends media sessions.
 *
 * A `stream-start` leases a pool port (port-pool.ts), sends `INVITESTREAM` (live), `PLAYBACK` or
 * `DOWNLOAD` with `SinkIP`/`SinkPort` = the agent's public address and that port (ehome-2.0 §2.6,
 * §8), reads the `Session`, and waits for the device's TCP connection (only its address is
 * accepted). The bytes are de-framed to MPEG-PS (deframer.ts; the SSRC is checked against a numeric
 * Session, §4.1 item 5) and fed to a fan-out relay for viewers (live, playback) or to a multipart
 * upload into S3 (download).
 *
 * Live streams are shared: one device stream per (device, channel, stream type), whatever the
 * number of stream ids; the last id to stop sends `BYESTREAM`. A stream id with no viewer for
 * `idleSeconds` (counted from its start too) stops itself. Every exit path releases the port:
 * refusal, accept timeout, socket error, device close, stop, idle, upload failure, `close()`.
 *
 * State changes are reported at once as `StreamEvent`s, and every `reportIntervalMs` while a
 * stream is active or paused, with counters from the relay.
 */

// Configuration and dependencies -----------------------------------------------------------------

export interface MediaManagerConfig {
  agentId: string;
  /** `SinkIP` told to devices (`EHOME_PUBLIC_HOST`). */
  publicHost: string;
  /** `EHOME_STREAM_IDLE_SECONDS`: a stream id with no viewer this long stops. */
  idleSeconds: number;
  /** `EHOME_STREAM_ACCEPT_SECONDS` × 1000: from the lease to the device's connection. */
  acceptTimeoutMs: number;
  /** `EHOME_STREAM_MAX_VIEWERS`. */
  maxViewersPerStream: number;
  /** `EHOME_MAX_VIEWERS`. */
  maxViewers: number;
  /** Default `STREAM_REPORT_SECONDS`. */
  reportIntervalMs?: number;
  /** Least time between two `FORCEIFRAME`s of one device stream asked by joining viewers. Default 2 s. */
  keyframeMinIntervalMs?: number;
  /** Relay caps (relay.ts `RELAY_DEFAULTS`). */
  relay?: Pick<RelayConfig, "maxViewerBufferBytes" | "drainTimeoutMs" | "maxGopBytes">;
  /** Downloads go to this bucket; without it `download` fails `MEDIA_DOWNLOAD_UNAVAILABLE`. */
  download?: { bucket: string; partSizeBytes?: number; queueSize?: number };
  /** Trace mode: the first bytes of each media connection. Default 4 KiB (ehome-2.0 §8 rule 4). */
  traceBytes?: number;
  /** Ended stream ids remembered (viewers get 410, a repeated stop succeeds). Default 4096. */
  rememberEnded?: number;
  /** UDP media (issue 8): no datagram this long ends the stream, reorder window. udp-media.ts. */
  udp?: { idleMs?: number; reorderWindow?: number; reorderDelayMs?: number };
}

export interface MediaDevice {
  /** Source address of the device's signalling: the only one its media may come from. */
  host: string;
  view?: CatalogueView;
}

export interface MediaManagerDeps {
  pool: PortPool;
  send: MediaSend;
  /** The device's session on this agent; undefined when it is not online here. */
  device(deviceId: string): MediaDevice | undefined;
  /** Default: relay.ts `createRelay`. */
  createRelay?: (config: RelayConfig) => Relay;
  s3?: () => S3Client;
  events?: EventSink<StreamEvent>;
  trace?: TraceRecorder;
  log?: Logger;
  now?: () => number;
}

export type AttachResult = "ok" | "not-found" | "ended" | "not-viewable" | "full";

export interface MediaManagerCounters {
  streamsStarted: number;
  streamsFailed: number;
  liveShared: number;
  byeSent: number;
  byeFailed: number;
  keyframeRequests: number;
  keyframeRateLimited: number;
  viewersAttached: number;
  viewersRefused: number;
  ssrcFallbacks: number;
  downloadsCompleted: number;
  downloadsFailed: number;
  /** Times a download's device socket was paused because S3 was slower (backpressure). */
  downloadPauses: number;
  recordSearches: number;
  recordPages: number;
  recordFiles: number;
  recordMalformedLines: number;
  eventsEmitted: number;
  eventSinkErrors: number;
}

export interface MediaManager extends MediaCommandTarget {
  /** A viewer of `/streams/<id>.<format>` (viewer-http.ts). The sink's headers are not sent yet. */
  attachViewer(
    streamId: string,
    deviceId: string,
    format: StreamFormat,
    sink: Writable,
  ): AttachResult;
  /** Stream ids open now (any state but final). */
  streams(): Array<{ streamId: string; deviceId: string; state: StreamState; port?: number }>;
  readonly viewers: number;
  counters(): MediaManagerCounters;
  /**
   * The device's session on this agent ended (keepalive timeout, re-registered elsewhere,
   * deprovisioned, agent shutdown): every stream of it stops at once, reason `DEVICE_OFFLINE`,
   * without `BYESTREAM` (nothing is there to answer); sockets closed, ports released. A download
   * already uploading its last part is left to finish.
   */
  deviceGone(deviceId: string, why: string): void;
  /** Stops every stream (`BYESTREAM` best effort, reason `AGENT_SHUTDOWN`), releases every port. Idempotent. */
  close(): Promise<void>;
}

// Internals ----------------------------------------------------------------------------------------

type Reason = { code: string; message: string };

interface Link {
  /** The first stream id (live: what later ids share). */
  readonly id: string;
  readonly key: string;
  readonly deviceId: string;
  readonly spec: StreamSpec;
  readonly host: string;
  readonly view: CatalogueView;
  state: "starting" | "active" | "paused" | "finishing" | "ended";
  readonly entries: Set<Entry>;
  ready: Promise<MediaOutcome>;
  lease?: MediaLease | UdpMediaLease;
  session?: string;
  /** The device's TCP socket, or the ordered `$` records of a UDP lease (udp-media.ts). */
  socket?: Readable;
  reading: boolean;
  /** PLAYBACKCONTROL PAUSE answered (possibly before the device connected). */
  paused: boolean;
  socketError: boolean;
  deframer?: Deframer;
  relay?: Relay;
  upload?: DownloadUpload;
  bytesIn: number;
  lastKeyframeAt: number;
  traced: Buffer[];
  tracedBytes: number;
  /**
   * The connection's bytes while nothing came out of the de-framer (≤ ~64 KiB), kept to parse
   * them again if the Session turns out not to be the SSRC.
   */
  replay: Buffer[] | undefined;
  replayBytes: number;
  /** Settles when the link has released everything. */
  ended?: Promise<void>;
}

interface Entry {
  readonly streamId: string;
  readonly deviceId: string;
  readonly link: Link;
  state: StreamState;
  seq: number;
  /** Viewer sinks and their relay handles. */
  readonly viewers: Map<Writable, RelayViewer | undefined>;
  idleTimer?: NodeJS.Timeout;
  lastBytes: number;
  lastAt: number;
}

function reasonOf(outcome: Exclude<MediaOutcome, { kind: "ok" }>): Reason {
  switch (outcome.kind) {
    case "device-error":
      return {
        code: "DEVICE_ERROR",
        message: (outcome.description || `status ${outcome.status}`).slice(0, 1024),
      };
    case "timeout":
      return { code: "DEVICE_TIMEOUT", message: "the device did not answer in time" };
    case "offline":
      return { code: "DEVICE_OFFLINE", message: "the device is not online on this agent" };
    case "failed":
      return { code: outcome.code, message: outcome.message.slice(0, 1024) };
  }
}

/** ehome-2.0 §4.1 item 5: the Session read as a number is the RTP SSRC (when it is one). */
function sessionSsrc(session: string): number | undefined {
  if (!/^\d{1,10}$/.test(session)) return undefined;
  const n = Number(session);
  return n <= 0xffffffff ? n : undefined;
}

/** Bytes after which a Session SSRC that matched nothing is given up at the latest (§9 item 5). */
const SSRC_FALLBACK_BYTES = 64 * 1024;

export function createMediaManager(
  config: MediaManagerConfig,
  deps: MediaManagerDeps,
): MediaManager {
  const log = deps.log ?? silentLogger;
  const now = deps.now ?? Date.now;
  const limiter = createRateLimiter({ intervalMs: 60_000 });
  const reportIntervalMs = config.reportIntervalMs ?? STREAM_REPORT_SECONDS * 1000;
  const keyframeMinMs = config.keyframeMinIntervalMs ?? 2_000;
  const traceBytes = config.traceBytes ?? 4096;
  const rememberEnded = config.rememberEnded ?? 4096;
  const relayOptions: RelayConfig = { ...RELAY_DEFAULTS, ...config.relay };
  const makeRelay = deps.createRelay ?? ((c: RelayConfig) => createRelay(c));
  const { pool } = deps;

  const entries = new Map<string, Entry>();
  const links = new Set<Link>();
  /** Live device streams by (device, channel, stream type). */
  const shared = new Map<string, Link>();
  /** Ended stream ids → device and final state, oldest first. */
  const ended = new Map<string, { deviceId: string; state: StreamState }>();
  let totalViewers = 0;
  let closed = false;
  let closing: Promise<void> | undefined;
  const c: MediaManagerCounters = {
    streamsStarted: 0,
    streamsFailed: 0,
    liveShared: 0,
    byeSent: 0,
    byeFailed: 0,
    keyframeRequests: 0,
    keyframeRateLimited: 0,
    viewersAttached: 0,
    viewersRefused: 0,
    ssrcFallbacks: 0,
    downloadsCompleted: 0,
    downloadsFailed: 0,
    downloadPauses: 0,
    recordSearches: 0,
    recordPages: 0,
    recordFiles: 0,
    recordMalformedLines: 0,
    eventsEmitted: 0,
    eventSinkErrors: 0,
  };
  const recordStats: RecordSearchStats = { pages: 0, files: 0, malformedLines: 0 };

  const warn = (key: string, msg: string, fields: Record<string, unknown>) => {
    const { allowed, suppressed } = limiter.allow(key);
    if (allowed) log.warn(msg, suppressed ? { ...fields, suppressed } : fields);
  };

  // Events ----------------------------------------------------------------------------------------

  const countersOf = (e: Entry, t: number): StreamCounters => {
    const link = e.link;
    const relay = link.relay?.stats();
    const seconds = (t - e.lastAt) / 1000;
    const bitrateBps = seconds > 0 ? Math.max(0, ((link.bytesIn - e.lastBytes) * 8) / seconds) : 0;
    e.lastBytes = link.bytesIn;
    e.lastAt = t;
    return {
      viewers: e.viewers.size,
      bytesIn: link.bytesIn,
      bytesOut: relay?.bytesOut ?? 0,
      bitrateBps: Math.round(bitrateBps),
      viewersDropped: relay?.viewersDropped ?? 0,
      ...(link.lease && "stats" in link.lease
        ? { packetsLost: link.lease.stats().packetsLost }
        : {}),
    };
  };

  const emit = (e: Entry, extra: { reason?: Reason; object?: { key: string; bytes: number } }) => {
    if (!deps.events) return;
    const t = now();
    const event: StreamEvent = {
      type: "stream-state",
      streamId: e.streamId,
      deviceId: e.deviceId,
      agentId: config.agentId,
      seq: e.seq++,
      state: e.state,
      counters: countersOf(e, t),
      ...(extra.object ? { object: extra.object } : {}),
      ...(extra.reason ? { reason: extra.reason } : {}),
      at: new Date(t).toISOString(),
    };
    c.eventsEmitted++;
    const failed = (err: unknown) => {
      c.eventSinkErrors++;
      warn("event-sink", "stream event sink failed", { err });
    };
    try {
      const r = deps.events.emit(event);
      if (r instanceof Promise) r.catch(failed);
    } catch (err) {
      failed(err);
    }
  };

  const setState = (e: Entry, state: StreamState, extra: Parameters<typeof emit>[1] = {}) => {
    e.state = state;
    emit(e, extra);
  };

  const reportTimer = setInterval(() => {
    for (const e of entries.values()) {
      if (e.state === "active" || e.state === "paused") emit(e, {});
    }
  }, reportIntervalMs);
  reportTimer.unref();

  // Entries (stream ids) ----------------------------------------------------------------------------

  const armIdle = (e: Entry) => {
    if (e.link.spec.kind === "download" || e.idleTimer || e.viewers.size > 0) return;
    e.idleTimer = setTimeout(() => {
      e.idleTimer = undefined;
      if (entries.get(e.streamId) !== e || e.viewers.size > 0) return;
      void detach(e, { code: "IDLE", message: `no viewer for ${config.idleSeconds} s` });
    }, config.idleSeconds * 1000);
    e.idleTimer.unref();
  };

  const disarmIdle = (e: Entry) => {
    if (e.idleTimer) clearTimeout(e.idleTimer);
    e.idleTimer = undefined;
  };

  const newEntry = (streamId: string, deviceId: string, link: Link): Entry => {
    const e: Entry = {
      streamId,
      deviceId,
      link,
      state: link.state === "active" ? "active" : link.state === "paused" ? "paused" : "starting",
      seq: 0,
      viewers: new Map(),
      lastBytes: link.bytesIn,
      lastAt: now(),
    };
    entries.set(streamId, e);
    link.entries.add(e);
    armIdle(e);
    emit(e, {});
    return e;
  };

  const remember = (e: Entry) => {
    ended.set(e.streamId, { deviceId: e.deviceId, state: e.state });
    while (ended.size > rememberEnded) {
      const oldest = ended.keys().next().value;
      if (oldest === undefined) break;
      ended.delete(oldest);
    }
  };

  /** Final state for one stream id; its viewers are ended. */
  const finishEntry = (
    e: Entry,
    state: StreamState,
    extra: { reason?: Reason; object?: { key: string; bytes: number } },
  ) => {
    if (entries.get(e.streamId) !== e) return;
    entries.delete(e.streamId);
    e.link.entries.delete(e);
    disarmIdle(e);
    setState(e, state, extra);
    remember(e);
    // Viewers of a device stream that goes on (shared live) are cut; the relay has ended the others.
    for (const [sink, handle] of [...e.viewers]) {
      if (handle) handle.remove();
      else sink.destroy();
    }
  };

  // Links (device streams) --------------------------------------------------------------------------

  const sendBye = async (link: Link): Promise<boolean> => {
    if (link.session === undefined) return false;
    const outcome = await deps
      .send(link.deviceId, "byeStream", { session: link.session })
      .catch((err: unknown) => {
        warn("bye", "BYESTREAM could not be sent", { err });
        return undefined;
      });
    if (outcome?.kind === "ok") {
      c.byeSent++;
      return true;
    }
    c.byeFailed++;
    return false;
  };

  const flushTrace = (link: Link) => {
    if (!deps.trace || link.traced.length === 0) return;
    deps.trace.record("in", link.host, link.lease?.port ?? 0, Buffer.concat(link.traced));
    link.traced = [];
  };

  /**
   * Ends a device stream: final state for every stream id on it, the relay and upload closed,
   * `BYESTREAM` when asked, then the socket and the port released. Idempotent.
   */
  const endLink = (
    link: Link,
    state: StreamState,
    extra: { reason?: Reason; object?: { key: string; bytes: number } },
    bye: boolean,
  ): Promise<void> => {
    if (link.ended) return link.ended;
    link.state = "ended";
    if (shared.get(link.key) === link) shared.delete(link.key);
    if (state === "failed") c.streamsFailed++;
    if (link.spec.kind === "download") {
      if (state === "completed") c.downloadsCompleted++;
      else if (state === "failed") c.downloadsFailed++;
    }
    link.socket?.pause();
    link.deframer?.end();
    flushTrace(link);
    // The relay flushes its last pack and ends its viewers gracefully, then lets go of them.
    link.relay?.end();
    for (const e of [...link.entries]) finishEntry(e, state, extra);
    link.relay?.close();
    link.ended = (async () => {
      if (state !== "completed") await link.upload?.abort();
      if (bye) await sendBye(link);
      link.lease?.release();
      await link.lease?.done;
      links.delete(link);
    })();
    return link.ended;
  };

  const failLink = (link: Link, code: MediaErrorCode | string, message: string, bye: boolean) =>
    endLink(link, "failed", { reason: { code, message } }, bye);

  const requestKeyframe = (link: Link) => {
    if (link.spec.kind !== "live" || link.state === "ended") return;
    const t = now();
    if (t - link.lastKeyframeAt < keyframeMinMs) {
      c.keyframeRateLimited++;
      return;
    }
    link.lastKeyframeAt = t;
    c.keyframeRequests++;
    // ehome-2.0 §8 Force I-frame row.
    void deps
      .send(link.deviceId, "forceIFrame", {
        channel: link.spec.channel,
        channelType: CHANNEL_TYPE[link.spec.streamType ?? "main"],
      })
      .catch(() => undefined);
  };

  /**
   * ehome-2.0 §4.1 item 5 / §9 item 5: the Session is expected to be the RTP SSRC, which no public
   * capture confirms. Until a record carrying it is accepted (or the stream shows to be raw PS),
   * nothing is forwarded and the connection's bytes are kept (bounded). Records with another SSRC
   * and none with the Session: the bytes are parsed again from the first one with the stream's own
   * SSRC (a de-framer that found no record may even have taken a pack inside a payload for raw PS).
   */
  const checkSsrc = (link: Link, chunk: Buffer, out: Buffer[]): Buffer[] => {
    const replay = link.replay!;
    replay.push(chunk);
    link.replayBytes += chunk.length;
    const s = link.deframer!.stats();
    if (s.records > 0 || (s.mode === "ps" && s.ssrcMismatches === 0)) {
      link.replay = undefined; // confirmed: the Session's records, or raw PS
      return out;
    }
    if (s.ssrcMismatches > 0 && s.foreignSsrc !== undefined) {
      if (s.ssrcMismatches < 3 && link.replayBytes < SSRC_FALLBACK_BYTES) return [];
      c.ssrcFallbacks++;
      warn("ssrc", "media SSRC is not the Session; following the stream's own", {
        deviceId: link.deviceId,
        session: link.session,
        ssrc: s.foreignSsrc,
      });
      link.deframer = createDeframer({ expectedSsrc: s.foreignSsrc });
      link.replay = undefined;
      return link.deframer.push(Buffer.concat(replay));
    }
    if (link.replayBytes > 2 * SSRC_FALLBACK_BYTES) link.replay = undefined;
    return out;
  };

  const onData = (link: Link, chunk: Buffer) => {
    if (link.state === "ended" || !link.deframer) return;
    if (deps.trace && link.tracedBytes < traceBytes) {
      const part = chunk.subarray(0, traceBytes - link.tracedBytes);
      link.traced.push(Buffer.from(part));
      link.tracedBytes += part.length;
      if (link.tracedBytes >= traceBytes) flushTrace(link);
    }
    let out = link.deframer.push(chunk);
    if (link.replay) out = checkSsrc(link, chunk, out);
    for (const ps of out) {
      link.bytesIn += ps.length;
      if (link.relay) link.relay.push(ps);
      else if (link.upload && !link.upload.write(ps) && link.socket && !link.socket.isPaused()) {
        // Backpressure: S3 is slower than the device; stop reading until the upload drains.
        const socket = link.socket;
        c.downloadPauses++;
        socket.pause();
        link.upload.onDrain(() => {
          if (link.state !== "ended") socket.resume();
        });
      }
    }
  };

  const onDeviceClosed = (link: Link) => {
    link.deframer?.end();
    flushTrace(link);
    if (link.state === "ended" || link.state === "finishing") return;
    if (link.socketError) {
      void failLink(link, "MEDIA_SOCKET_ERROR", "the device's media connection broke", false);
      return;
    }
    if (link.upload) {
      // ehome-2.0 §8 Download row: the device pushes the whole file, then closes.
      link.state = "finishing";
      const upload = link.upload;
      upload.finish().then(
        (object) => void endLink(link, "completed", { object }, false),
        (err: unknown) => {
          warn("upload", "download upload failed", { err, key: upload.key });
          void failLink(link, "MEDIA_UPLOAD_FAILED", "the download could not be stored", false);
        },
      );
      return;
    }
    void endLink(
      link,
      "stopped",
      { reason: { code: "DEVICE_CLOSED", message: "the device closed the media connection" } },
      // Best effort: tell the device the session is over too.
      true,
    );
  };

  const begin = (link: Link) => {
    const socket = link.socket;
    if (link.reading || !socket || link.session === undefined || link.state === "ended") return;
    link.reading = true;
    link.state = link.paused ? "paused" : "active";
    const ssrc = sessionSsrc(link.session);
    link.deframer = createDeframer(ssrc === undefined ? {} : { expectedSsrc: ssrc });
    if (ssrc !== undefined) link.replay = [];
    if (link.spec.kind === "download") {
      const dl = config.download!;
      const upload = createDownloadUpload(
        {
          bucket: dl.bucket,
          key: downloadObjectKey(link.deviceId, link.id),
          ...(dl.partSizeBytes === undefined ? {} : { partSizeBytes: dl.partSizeBytes }),
          ...(dl.queueSize === undefined ? {} : { queueSize: dl.queueSize }),
        },
        { s3: deps.s3! },
      );
      link.upload = upload;
      void upload.failed.then((err) => {
        warn("upload", "download upload failed", { err, key: upload.key });
        void failLink(link, "MEDIA_UPLOAD_FAILED", "the download could not be stored", true);
      });
    }
    socket.on("error", () => {
      link.socketError = true;
    });
    socket.on("data", (chunk: Buffer) => onData(link, chunk));
    socket.once("close", () => onDeviceClosed(link));
    for (const e of link.entries) setState(e, link.paused ? "paused" : "active");
    // Connected and gone before the device's answer arrived: nothing more will come.
    if (socket.destroyed) onDeviceClosed(link);
  };

  /** Leases a port, asks the device, and wires the connection. */
  const open = async (link: Link): Promise<MediaOutcome> => {
    let lease: MediaLease | UdpMediaLease;
    const udp = link.spec.transport === "udp";
    try {
      const expected = { host: link.host, acceptTimeoutMs: config.acceptTimeoutMs };
      lease = udp
        ? await pool.acquireUdp({
            ...expected,
            ...(config.udp?.idleMs === undefined ? {} : { idleMs: config.udp.idleMs }),
            reorder: {
              ...(config.udp?.reorderWindow === undefined
                ? {}
                : { window: config.udp.reorderWindow }),
              ...(config.udp?.reorderDelayMs === undefined
                ? {}
                : { maxDelayMs: config.udp.reorderDelayMs }),
            },
          })
        : await pool.acquire(expected);
    } catch (err) {
      const code: MediaErrorCode =
        err instanceof MediaPortsExhaustedError
          ? "MEDIA_PORTS_EXHAUSTED"
          : err instanceof MediaConnectionError
            ? err.code
            : "MEDIA_POOL_CLOSED";
      const message = (err as Error).message;
      await failLink(link, code, message, false);
      return mediaFailure(code, message);
    }
    link.lease = lease;
    if (link.state === "ended") {
      // Stopped (or closed) while the port was being leased: give it back before answering.
      lease.release();
      await lease.done;
      return mediaFailure("STREAM_ENDED", "the stream was stopped while starting");
    }
    (lease.connection as Promise<Readable>).then(
      (socket) => {
        link.socket = socket;
        begin(link);
      },
      (err: MediaConnectionError) => {
        if (err.code !== "MEDIA_ACCEPT_TIMEOUT") return;
        // The device accepted but never connected: tell it the session is over (best effort).
        void failLink(link, err.code, err.message, true);
      },
    );
    const spec = link.spec;
    // ehome-2.0 §8 LinkMode row: absent means TCP; UDP is said.
    const sink = {
      sinkIp: config.publicHost,
      sinkPort: lease.port,
      ...(udp ? { linkMode: LINK_MODE.udp } : {}),
    };
    let commandId: "inviteStream" | "playback" | "download";
    let outcome: CommandOutcome;
    try {
      if (spec.kind === "live") {
        commandId = "inviteStream";
        // ehome-2.0 §2.6: Channel, ChannelType, SinkIP, SinkPort (no LinkMode: TCP is the default).
        outcome = await deps.send(link.deviceId, commandId, {
          channel: spec.channel,
          channelType: CHANNEL_TYPE[spec.streamType ?? "main"],
          ...sink,
        });
      } else if (spec.kind === "playback") {
        commandId = "playback";
        // ehome-2.0 §8 Playback start row.
        outcome = await deps.send(link.deviceId, commandId, {
          channel: spec.channel,
          ...(spec.file === undefined
            ? { startTime: spec.start, stopTime: spec.end }
            : { fileName: spec.file }),
          direction: DIRECTION[spec.direction ?? "forward"],
          ...sink,
        });
      } else {
        commandId = "download";
        // ehome-2.0 §8 Download row.
        outcome = await deps.send(link.deviceId, commandId, {
          channel: spec.channel,
          fileName: spec.file,
          ...sink,
        });
      }
    } catch (err) {
      const message = String((err as Error).message);
      await failLink(link, "COMMAND_UNENCODABLE", message, false);
      return { kind: "failed", code: "COMMAND_UNENCODABLE", message };
    }
    if (outcome.kind !== "ok") {
      await failLink(link, reasonOf(outcome).code, reasonOf(outcome).message, false);
      return outcome;
    }
    const session = childText(outcome.params, link.view.commands[commandId].reply.session ?? "");
    if (session === undefined || session === "") {
      await failLink(link, "MEDIA_NO_SESSION", "the device's answer has no Session", false);
      return mediaFailure("MEDIA_NO_SESSION", "the device's answer has no Session");
    }
    link.session = session;
    // (Read again: a stop may have come while the device was answering.)
    if ((link.state as Link["state"]) === "ended") {
      // Stopped while the device was answering: the session exists on the device now.
      await sendBye(link);
      return mediaFailure("STREAM_ENDED", "the stream was stopped while starting");
    }
    c.streamsStarted++;
    begin(link);
    return { kind: "ok", result: { session, port: lease.port } };
  };

  const resultFor = (e: Entry, outcome: MediaOutcome): MediaOutcome => {
    if (outcome.kind !== "ok") return outcome;
    const { session, port } = outcome.result as { session: string; port: number };
    const result: StreamStartResult = {
      streamId: e.streamId,
      session,
      port,
      transport: e.link.spec.transport ?? "tcp",
      ...(e.link.spec.kind === "live" ? { sharedWith: e.link.id } : {}),
    };
    return { kind: "ok", result };
  };

  /** Detaches a stream id; the last one on a device stream ends it with `BYESTREAM`. */
  const detach = async (e: Entry, reason: Reason): Promise<MediaOutcome> => {
    const link = e.link;
    if (link.entries.size <= 1 && link.entries.has(e)) {
      const hadSession = link.session !== undefined;
      await endLink(link, "stopped", { reason }, true);
      return {
        kind: "ok",
        result: { streamId: e.streamId, state: "stopped", byeSent: hadSession },
      };
    }
    finishEntry(e, "stopped", { reason });
    return { kind: "ok", result: { streamId: e.streamId, state: "stopped", byeSent: false } };
  };

  const find = (streamId: string, deviceId: string | undefined): Entry | undefined => {
    const e = entries.get(streamId);
    return e && (deviceId === undefined || e.deviceId === deviceId) ? e : undefined;
  };

  return {
    async startStream(deviceId, spec) {
      if (closed) return mediaFailure("MEDIA_POOL_CLOSED", "the agent is shutting down");
      const existing = entries.get(spec.streamId);
      if (existing) {
        if (existing.deviceId !== deviceId) {
          return mediaFailure("STREAM_NOT_FOUND", "the stream id belongs to another device");
        }
        // A repeated command (redelivery): the same answer.
        return resultFor(existing, await existing.link.ready);
      }
      const gone = ended.get(spec.streamId);
      if (gone) return mediaFailure("STREAM_ENDED", `the stream has ended (${gone.state})`);
      if (spec.kind === "download" && (!config.download || !deps.s3)) {
        return mediaFailure("MEDIA_DOWNLOAD_UNAVAILABLE", "no media bucket (MEDIA_BUCKET)");
      }
      const device = deps.device(deviceId);
      if (!device) return { kind: "offline" };
      const key =
        spec.kind === "live"
          ? `${deviceId}\n${spec.channel}\n${spec.streamType ?? "main"}`
          : `${spec.kind}\n${spec.streamId}`;
      const running = spec.kind === "live" ? shared.get(key) : undefined;
      if (running) {
        c.liveShared++;
        const e = newEntry(spec.streamId, deviceId, running);
        return resultFor(e, await running.ready);
      }
      const link: Link = {
        id: spec.streamId,
        key,
        deviceId,
        spec,
        host: device.host,
        view: device.view ?? DEFAULT_VIEW,
        state: "starting",
        entries: new Set(),
        ready: Promise.resolve(mediaFailure("STREAM_ENDED", "not started")),
        reading: false,
        paused: false,
        socketError: false,
        bytesIn: 0,
        lastKeyframeAt: Number.NEGATIVE_INFINITY,
        traced: [],
        tracedBytes: 0,
        replay: undefined,
        replayBytes: 0,
      };
      if (spec.kind !== "download") {
        link.relay = makeRelay({
          ...relayOptions,
          onKeyframeWanted: () => requestKeyframe(link),
        });
      }
      links.add(link);
      if (spec.kind === "live") shared.set(key, link);
      const e = newEntry(spec.streamId, deviceId, link);
      link.ready = open(link);
      return resultFor(e, await link.ready);
    },

    async stopStream(streamId, deviceId) {
      const e = find(streamId, deviceId);
      if (!e) {
        const gone = ended.get(streamId);
        if (gone && (deviceId === undefined || gone.deviceId === deviceId)) {
          return { kind: "ok", result: { streamId, state: gone.state, byeSent: false } };
        }
        return mediaFailure("STREAM_NOT_FOUND", `no stream ${streamId} on this agent`);
      }
      return detach(e, { code: "STOPPED", message: "stopped by request" });
    },

    async control(params, deviceId) {
      const e = find(params.streamId, deviceId);
      if (!e) {
        return ended.has(params.streamId)
          ? mediaFailure("STREAM_ENDED", "the stream has ended")
          : mediaFailure("STREAM_NOT_FOUND", `no stream ${params.streamId} on this agent`);
      }
      const link = e.link;
      const { action } = params;
      if (action === "force-iframe") {
        if (link.spec.kind !== "live") {
          return mediaFailure("STREAM_NOT_PLAYBACK", "force-iframe applies to live streams");
        }
        link.lastKeyframeAt = now();
        c.keyframeRequests++;
        const outcome = await deps.send(link.deviceId, "forceIFrame", {
          channel: link.spec.channel,
          channelType: CHANNEL_TYPE[link.spec.streamType ?? "main"],
        });
        if (outcome.kind !== "ok") return outcome;
        return { kind: "ok", result: { streamId: e.streamId, action, state: e.state } };
      }
      if (link.spec.kind !== "playback") {
        return mediaFailure("STREAM_NOT_PLAYBACK", `${action} applies to playback streams`);
      }
      if (link.session === undefined) {
        return mediaFailure("STREAM_NOT_FOUND", "the playback has not started yet");
      }
      const speed =
        action === "fast" || action === "slow"
          ? params.speed !== undefined && params.speed < 0
            ? params.speed
            : playbackSpeedValue(action, params.speed)
          : action === "normal"
            ? 1
            : undefined;
      // ehome-2.0 §8 Playback control row: Session, Action, Speed, SeekTime.
      const outcome = await deps.send(link.deviceId, "playbackControl", {
        session: link.session,
        action: PLAYBACK_ACTION[action],
        ...(speed === undefined ? {} : { speed }),
        ...(action === "seek" && params.seekTime !== undefined
          ? { seekTime: params.seekTime }
          : {}),
      });
      if (outcome.kind !== "ok") return outcome;
      if (entries.get(e.streamId) === e && link.state !== "ended") {
        const next: StreamState | undefined =
          action === "pause"
            ? "paused"
            : (action === "resume" ||
                  action === "normal" ||
                  action === "fast" ||
                  action === "slow") &&
                e.state === "paused"
              ? "active"
              : undefined;
        if (next) link.paused = next === "paused";
        // Before the device connected, the state follows at `begin`.
        if (next && next !== e.state && link.reading) {
          link.state = next === "paused" ? "paused" : "active";
          setState(e, next);
        }
      }
      const state: StreamState = e.state === "starting" && link.paused ? "paused" : e.state;
      return { kind: "ok", result: { streamId: e.streamId, action, state } };
    },

    async searchRecords(deviceId, params: RecordSearchParams) {
      const device = deps.device(deviceId);
      if (!device) return { kind: "offline" };
      c.recordSearches++;
      const outcome = await searchRecords(deviceId, params, {
        send: deps.send,
        view: device.view ?? DEFAULT_VIEW,
        stats: recordStats,
      });
      c.recordPages = recordStats.pages;
      c.recordFiles = recordStats.files;
      c.recordMalformedLines = recordStats.malformedLines;
      return outcome;
    },

    attachViewer(streamId, deviceId, format, sink) {
      const e = entries.get(streamId);
      if (!e || e.deviceId !== deviceId) {
        c.viewersRefused++;
        const gone = ended.get(streamId);
        return gone && gone.deviceId === deviceId ? "ended" : "not-found";
      }
      const relay = e.link.relay;
      if (!relay) {
        c.viewersRefused++;
        return "not-viewable";
      }
      if (e.viewers.size >= config.maxViewersPerStream || totalViewers >= config.maxViewers) {
        c.viewersRefused++;
        return "full";
      }
      e.viewers.set(sink, undefined);
      totalViewers++;
      c.viewersAttached++;
      disarmIdle(e);
      sink.once("close", () => {
        if (!e.viewers.delete(sink)) return;
        totalViewers--;
        if (entries.get(e.streamId) === e) armIdle(e);
      });
      const handle = relay.addViewer(sink, format);
      if (e.viewers.has(sink)) e.viewers.set(sink, handle);
      return "ok";
    },

    streams: () =>
      [...entries.values()].map((e) => ({
        streamId: e.streamId,
        deviceId: e.deviceId,
        state: e.state,
        ...(e.link.lease ? { port: e.link.lease.port } : {}),
      })),

    get viewers() {
      return totalViewers;
    },

    counters: () => ({ ...c }),

    deviceGone(deviceId, why) {
      const reason = { code: "DEVICE_OFFLINE", message: `the device went offline (${why})` };
      for (const link of [...links]) {
        if (link.deviceId !== deviceId || link.state === "ended" || link.state === "finishing") {
          continue;
        }
        endLink(link, "stopped", { reason }, false).catch((err: unknown) =>
          warn("device-gone", "ending a stream of a device gone offline failed", { err }),
        );
      }
    },

    close() {
      closing ??= (async () => {
        closed = true;
        clearInterval(reportTimer);
        const reason = { code: "AGENT_SHUTDOWN", message: "the agent is shutting down" };
        const all = [...links];
        await Promise.all(all.map((l) => endLink(l, "stopped", { reason }, true)));
        // Starts still waiting for the device's answer end when it comes (or times out).
        await Promise.allSettled(all.map((l) => l.ready));
      })();
      return closing;
    },
  };
}
