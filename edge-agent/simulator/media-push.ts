import net from "node:net";
import { createFramer, type Framer, privateHeader } from "../media/framer.ts";
import { BASE_PTS, createPsWriter, type PsWriter } from "./media-ps.ts";
import type { FixtureName, MediaFixture } from "./media-source.ts";
import type { Random } from "./random.ts";
import type { MediaPlan } from "./records.ts";
import type { Scheduler, TaskHandle } from "./scheduler.ts";
import { UdpPushSocket } from "./udp-push-socket.ts";

/**
 * One media push of a simulated device (ehome-2.0 §4.1, §8): after answering INVITESTREAM,
 * PLAYBACK or DOWNLOAD with a Session, the device connects over TCP to SinkIP:SinkPort and sends
 * frames of a fixture packed as MPEG-PS, optionally behind the 256-byte private header:
 *
 * - live: `$`-RTP records (framer.ts) with SSRC = Session, 0x0d for chunks that fit and 0x1c
 *   fragments for larger ones, the fixture looped until BYESTREAM or the socket closes; FORCEIFRAME
 *   jumps to the fixture's next GOP so the next frame sent is an IDR;
 * - playback: raw PS (or RTP with `framing: "rtp"`) of a plan (records.ts), paced, honouring
 *   PLAYBACKCONTROL (pause/resume, fast/slow, seek to the IDR before a time, GOPs in reverse
 *   order), closed at its end;
 * - download: the record file's PS as fast as the socket takes it, then closed.
 *
 * Pacing follows the frame rate (one frame per 1/fps s, × `speed` × the playback rate); `speed` 0
 * sends as fast as the socket drains (tests, benchmarks). Writes always respect backpressure.
 */

export type MediaKind = "live" | "playback" | "download";
export type MediaFraming = "rtp" | "ps";
export type MediaPushState = "connecting" | "streaming" | "paused" | "ended" | "failed";
type RunState = Exclude<MediaPushState, "paused">;
export type MediaEndReason = "completed" | "bye" | "peer-closed" | "error" | "device-closed";
export const PLAYBACK_CONTROLS = [
  "pause",
  "resume",
  "fast",
  "slow",
  "normal",
  "seek",
  "reverse",
  "forward",
] as const;
export type PlaybackControl = (typeof PLAYBACK_CONTROLS)[number];

/** A PLAYBACKCONTROL as the device received it. */
export interface ControlRecord {
  action: PlaybackControl;
  speed: number | undefined;
  seekTime: string | undefined;
  /** Frames sent before it arrived. */
  atFrame: number;
}

/** A FORCEIFRAME as the device carried it out. */
export interface ForcedIdr {
  /** Index (in frames sent) of the IDR that answered it: the next frame sent. */
  atFrame: number;
  /** The fixture frame sent there (a GOP start). */
  fixtureFrame: number;
}

/** Socket errors that mean the platform closed the connection. */
const PEER_GONE = new Set(["ECONNRESET", "EPIPE", "ERR_STREAM_WRITE_AFTER_END"]);

/** Caps what `capture` keeps per session. */
export const MAX_CAPTURE_BYTES = 64 * 1024 * 1024;
/** Frames one turn of the event loop sends at most when unpaced. */
const BATCH_FRAMES = 256;
/** After its last byte, a finished push waits this long for the peer to close, then destroys. */
const LINGER_MS = 5000;

export interface MediaPushConfig {
  session: string;
  kind: MediaKind;
  deviceId: string;
  channel: number;
  /** 0 main, 1 sub, 2 third (private header only). */
  streamType: number;
  fileName?: string;
  target: { host: string; port: number };
  /** Source address (the device's address, so the agent's pool accepts it). */
  localAddress?: string;
  fixture: MediaFixture;
  /** Frames to send (playback, download); absent = the fixture looped forever (live). */
  plan?: MediaPlan;
  /** Playback starting at the last GOP and walking GOPs backwards. */
  reverse?: boolean;
  framing: MediaFraming;
  header: boolean;
  /** Pacing factor; 0 = as fast as the socket takes. Download is never paced. */
  speed: number;
  audio: boolean;
  capture: boolean;
  /** Device-local epoch ms of a plan entry (for SEEK). */
  seekTarget?: (seekTime: string) => number | undefined;
  /** `LinkMode` UDP (issue 8): RTP datagrams instead of the TCP connection (udp-push-socket.ts). */
  udp?: { lossRate: number; reorderRate: number; random: Random };
}

export interface MediaPushDeps {
  scheduler: Scheduler;
  /** Bytes written to the socket. */
  onBytes(n: number): void;
  /** Called once, when the push has ended (any reason). */
  onEnd(push: MediaPush, reason: MediaEndReason): void;
}

/** What tests and the CLI can see of a push. */
export interface MediaSessionInfo {
  session: string;
  kind: MediaKind;
  channel: number;
  fixture: FixtureName;
  fileName: string | undefined;
  target: { host: string; port: number };
  framing: MediaFraming;
  header: boolean;
  state: MediaPushState;
  endReason: MediaEndReason | undefined;
  error: string | undefined;
  framesSent: number;
  /** PS bytes sent (before RTP framing and header). */
  psBytes: number;
  /** Bytes written to the socket. */
  wireBytes: number;
  /** Bytes written but not yet handed to the kernel (backpressure keeps this small). */
  bufferedBytes: number;
  /** Playback rate now (1 normal, 2 fast ×2, 0.5 slow ÷2). */
  rate: number;
  direction: "forward" | "reverse";
  controls: readonly ControlRecord[];
  forcedIdrs: readonly ForcedIdr[];
  /**
   * With `capture`: the plan index (playback, download) or fixture frame (live) of every frame
   * sent, in order.
   */
  sentFrames: readonly number[];
  /** The PS sent, when the `capture` option is on (capped at 64 MiB: `captureTruncated`). */
  captured: Buffer | undefined;
  captureTruncated: boolean;
}

export class MediaPush {
  readonly config: MediaPushConfig;
  private readonly deps: MediaPushDeps;
  private readonly writer: PsWriter;
  private readonly framer: Framer | null;
  private readonly socket: net.Socket;
  private state: RunState = "connecting";
  private endReason: MediaEndReason | undefined;
  private error: string | undefined;
  private framesSent = 0;
  private psBytes = 0;
  private wireBytes = 0;
  private rate = 1;
  private direction: "forward" | "reverse";
  private readonly controls: ControlRecord[] = [];
  private readonly forcedIdrs: ForcedIdr[] = [];
  private readonly sentFrames: number[] = [];
  private readonly captured: Buffer[] = [];
  private capturedBytes = 0;
  private captureTruncated = false;
  private timer: TaskHandle | null = null;
  private waitingDrain = false;
  private paused = false;
  private finishing = false;
  /** Pacing reference: frames sent since `refAt` (ms, scheduler clock). */
  private refAt = 0;
  private refFrames = 0;
  // Live cursor: next fixture frame.
  private fixtureFrame = 0;
  // Plan cursor: GOP index, offset inside it.
  private gop = 0;
  private offset = 0;

  constructor(config: MediaPushConfig, deps: MediaPushDeps) {
    this.config = config;
    this.deps = deps;
    this.direction = config.reverse ? "reverse" : "forward";
    this.writer = createPsWriter({ fps: config.fixture.fps, audio: config.audio });
    const ssrc = Number(config.session) >>> 0;
    this.framer = config.framing === "rtp" ? createFramer({ ssrc }) : null;
    if (config.plan && config.reverse) this.gop = config.plan.gopStarts.length - 1;
    this.socket = config.udp
      ? // The part of net.Socket a push uses (connect, write/cork, drain, end, close, destroy).
        (new UdpPushSocket({
          target: config.target,
          ...(config.localAddress ? { localAddress: config.localAddress } : {}),
          ...config.udp,
        }) as unknown as net.Socket)
      : net.connect({
          host: config.target.host,
          port: config.target.port,
          ...(config.localAddress ? { localAddress: config.localAddress } : {}),
        });
    this.socket.setNoDelay(true);
    this.socket.on("connect", () => this.onConnect());
    this.socket.on("drain", () => {
      this.waitingDrain = false;
      this.pump();
    });
    this.socket.on("error", (err: NodeJS.ErrnoException) => {
      this.error = err.message;
      // Once connected, a reset or broken pipe is the platform going away, not a device failure.
      const gone = this.state === "streaming" && PEER_GONE.has(err.code ?? "");
      this.end(this.finishing ? "completed" : gone ? "peer-closed" : "error");
    });
    // The platform closed its side (or answered our FIN): stop at once, before another write.
    this.socket.on("end", () => this.end(this.finishing ? "completed" : "peer-closed"));
    this.socket.on("close", () => this.end(this.finishing ? "completed" : "peer-closed"));
    // The platform never sends on a media link; drain anything it does.
    this.socket.on("data", () => {});
  }

  get session(): string {
    return this.config.session;
  }

  get ended(): boolean {
    return this.state === "ended" || this.state === "failed";
  }

  /** A snapshot; `sentFrames` and `captured` are built only when read. */
  info(): MediaSessionInfo {
    const c = this.config;
    const sent = this.sentFrames;
    const sentCount = sent.length;
    const parts = this.captured;
    const partCount = parts.length;
    return {
      session: c.session,
      kind: c.kind,
      channel: c.channel,
      fixture: c.fixture.name,
      fileName: c.fileName,
      target: { ...c.target },
      framing: c.framing,
      header: c.header,
      state: this.state === "streaming" && this.paused ? "paused" : this.state,
      endReason: this.endReason,
      error: this.error,
      framesSent: this.framesSent,
      psBytes: this.psBytes,
      wireBytes: this.wireBytes,
      bufferedBytes: this.socket.writableLength,
      rate: this.rate,
      direction: this.direction,
      controls: [...this.controls],
      forcedIdrs: [...this.forcedIdrs],
      get sentFrames() {
        return sent.slice(0, sentCount);
      },
      get captured() {
        return c.capture ? Buffer.concat(parts.slice(0, partCount)) : undefined;
      },
      captureTruncated: this.captureTruncated,
    };
  }

  /** ehome-2.0 §8 FORCEIFRAME: the next frame sent is the start of the fixture's next GOP. */
  forceIdr(): void {
    if (this.ended || this.config.plan) return;
    const f = this.config.fixture;
    if (!f.frames[this.fixtureFrame]!.idr) {
      this.fixtureFrame = f.idrIndexes.find((i) => i > this.fixtureFrame) ?? 0;
    }
    this.forcedIdrs.push({ atFrame: this.framesSent, fixtureFrame: this.fixtureFrame });
  }

  /**
   * ehome-2.0 §8 PLAYBACKCONTROL. `speed` is the factor (FAST 2/4/8; SLOW as 2/4/8 or -2/-4/-8);
   * `seekTime` the device-local time SEEK asked for. Recorded on every push, applied to playback
   * only. Returns false when it was not applied.
   */
  control(
    action: PlaybackControl,
    speed: number | undefined,
    seekTime: string | undefined,
  ): boolean {
    this.controls.push({ action, speed, seekTime, atFrame: this.framesSent });
    if (this.ended || this.config.kind !== "playback") return false;
    const plan = this.config.plan;
    switch (action) {
      case "pause":
        this.paused = true;
        if (!this.finishing) this.cancelTimer();
        return true;
      case "resume":
        this.paused = false;
        break;
      case "fast":
        this.rate = Math.abs(speed ?? 2) || 1;
        break;
      case "slow":
        this.rate = 1 / (Math.abs(speed ?? 2) || 1);
        break;
      case "normal":
        this.rate = 1;
        break;
      case "seek": {
        const at = seekTime === undefined ? undefined : this.config.seekTarget?.(seekTime);
        if (!plan || at === undefined) return false;
        this.seekTo(at);
        break;
      }
      case "reverse":
      case "forward":
        if (!plan) return false;
        this.direction = action;
        break;
    }
    this.resetPacing();
    this.pump();
    return true;
  }

  /**
   * Stops now (BYESTREAM, device closed). Idempotent. A push that already sent its last byte ended
   * `completed` (the platform's BYESTREAM after a finished playback is only clean-up).
   */
  close(reason: MediaEndReason = "bye"): void {
    this.end(this.finishing ? "completed" : reason);
  }

  // ---- internals ------------------------------------------------------------------------------

  private onConnect(): void {
    if (this.ended) return;
    this.state = "streaming";
    if (this.config.header) {
      const c = this.config;
      this.write(
        privateHeader({
          session: Number(c.session),
          channel: c.channel,
          streamType: c.streamType,
          deviceId: c.deviceId,
        }),
      );
    }
    this.resetPacing();
    this.pump();
  }

  private paced(): boolean {
    return this.config.kind !== "download" && this.config.speed > 0;
  }

  private resetPacing(): void {
    this.refAt = this.deps.scheduler.now();
    this.refFrames = 0;
  }

  private cancelTimer(): void {
    this.timer?.cancel();
    this.timer = null;
  }

  private pump(): void {
    if (this.state !== "streaming" || this.paused || this.waitingDrain || this.finishing) return;
    if (this.timer) return;
    const frameMs = 1000 / this.config.fixture.fps;
    for (let sent = 0; ; sent++) {
      if (this.paced()) {
        const due = this.refAt + (this.refFrames * frameMs) / (this.config.speed * this.rate);
        const wait = due - this.deps.scheduler.now();
        if (wait > 1) {
          this.timer = this.deps.scheduler.after(wait, () => {
            this.timer = null;
            this.pump();
          });
          return;
        }
      } else if (sent >= BATCH_FRAMES) {
        this.timer = this.deps.scheduler.after(0, () => {
          this.timer = null;
          this.pump();
        });
        return;
      }
      const next = this.nextFrame();
      if (next === undefined) {
        this.finish();
        return;
      }
      this.refFrames++;
      if (!this.sendFrame(next.index, next.position)) {
        this.waitingDrain = true;
        return;
      }
    }
  }

  /** The next fixture frame to send and its PTS position; undefined at the end of the plan. */
  private nextFrame(): { index: number; position: number } | undefined {
    const plan = this.config.plan;
    const n = this.config.fixture.frames.length;
    if (!plan) {
      const index = this.fixtureFrame;
      this.fixtureFrame = (index + 1) % n;
      if (this.config.capture) this.sentFrames.push(index);
      return { index, position: this.framesSent };
    }
    const starts = plan.gopStarts;
    for (;;) {
      if (this.gop < 0 || this.gop >= starts.length) return undefined;
      const end = this.gop + 1 < starts.length ? starts[this.gop + 1]! : plan.length;
      const i = starts[this.gop]! + this.offset;
      if (i < end) {
        this.offset++;
        if (this.config.capture) this.sentFrames.push(i);
        return { index: plan.recFrame[i]! % n, position: i };
      }
      this.gop += this.direction === "forward" ? 1 : -1;
      this.offset = 0;
    }
  }

  /** SEEK: the GOP holding the last frame at or before `atMs`. */
  private seekTo(atMs: number): void {
    const plan = this.config.plan!;
    const frameMs = 1000 / this.config.fixture.fps;
    let target = 0;
    for (let i = 0; i < plan.length; i++) {
      if (plan.recStart[i]! + plan.recFrame[i]! * frameMs <= atMs) target = i;
      else break;
    }
    let g = 0;
    while (g + 1 < plan.gopStarts.length && plan.gopStarts[g + 1]! <= target) g++;
    this.gop = g;
    this.offset = 0;
  }

  private sendFrame(index: number, position: number): boolean {
    const au = this.config.fixture.frames[index]!;
    const ps = this.writer.frame(au, position);
    this.framesSent++;
    this.psBytes += ps.length;
    if (this.config.capture && !this.captureTruncated) {
      if (this.capturedBytes + ps.length > MAX_CAPTURE_BYTES) this.captureTruncated = true;
      else {
        this.captured.push(ps);
        this.capturedBytes += ps.length;
      }
    }
    if (!this.framer) return this.write(ps);
    const pts = Math.round(BASE_PTS + (position * 90_000) / this.config.fixture.fps);
    // One writev for the frame's records instead of concatenating them (a copy less per frame).
    this.socket.cork();
    let drained = true;
    for (const record of this.framer.frame(ps, { timestamp: pts })) drained = this.write(record);
    this.socket.uncork();
    return drained;
  }

  private write(bytes: Buffer): boolean {
    this.wireBytes += bytes.length;
    this.deps.onBytes(bytes.length);
    return this.socket.write(bytes);
  }

  /** End of the plan: half-close and wait for the peer to close (or LINGER_MS). */
  private finish(): void {
    this.finishing = true;
    this.socket.end();
    this.timer = this.deps.scheduler.after(LINGER_MS, () => {
      this.timer = null;
      this.end("completed");
    });
  }

  private end(reason: MediaEndReason): void {
    if (this.ended) return;
    this.state = reason === "error" ? "failed" : "ended";
    this.endReason = reason;
    this.cancelTimer();
    this.socket.destroy();
    this.deps.onEnd(this, reason);
  }
}
