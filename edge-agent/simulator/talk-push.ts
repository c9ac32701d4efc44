import net from "node:net";
import { encodeG711, G711_FRAME_SAMPLES, G711_PAYLOAD_TYPE, type G711Law } from "../media/g711.ts";
import { splitTalkRecords, talkRtpRecord } from "../media/talk.ts";
import type { Scheduler, TaskHandle } from "./scheduler.ts";

/**
 * The simulated device's side of voice talk (issue 8 items 2 and 8; ehome-2.0 §8 `INVITETALK`):
 * after answering 200 + Session, the device connects to `SinkIP:SinkPort` over TCP and sends
 * `$`-framed RTP with payload type 0 (G711U) or 8 (G711A), one 160-byte frame every 20 ms:
 * a 1 kHz tone (`mode: "tone"`) or what it received (`"echo"`). It keeps every payload it
 * receives (`received`, capped), so tests can decode what the platform said.
 */

export type TalkMode = "tone" | "echo";

export interface TalkPushConfig {
  session: string;
  target: { host: string; port: number };
  localAddress?: string;
  law: G711Law;
  mode: TalkMode;
}

export interface TalkSessionInfo {
  session: string;
  law: G711Law;
  mode: TalkMode;
  framesSent: number;
  framesReceived: number;
  /** The G.711 payloads received, concatenated (≤ 1 MiB). */
  received: Buffer;
  ended: boolean;
}

const MAX_RECEIVED = 1 << 20;
const FRAME_MS = 20;

export class TalkPush {
  private readonly socket: net.Socket;
  private readonly config: TalkPushConfig;
  private readonly scheduler: Scheduler;
  private readonly onEnd: (push: TalkPush) => void;
  private timer: TaskHandle | null = null;
  private inbound: Buffer = Buffer.alloc(0);
  private readonly received: Buffer[] = [];
  private receivedBytes = 0;
  private echo: Buffer[] = [];
  private framesSent = 0;
  private framesReceived = 0;
  private ended = false;
  private readonly tone: Buffer;

  constructor(config: TalkPushConfig, scheduler: Scheduler, onEnd: (push: TalkPush) => void) {
    this.config = config;
    this.scheduler = scheduler;
    this.onEnd = onEnd;
    // One second of a 1 kHz tone at 8 kHz: a whole number of periods, so it loops seamlessly.
    const pcm = Buffer.alloc(8000 * 2);
    for (let i = 0; i < 8000; i++) {
      pcm.writeInt16LE(Math.round(8000 * Math.sin((2 * Math.PI * 1000 * i) / 8000)), i * 2);
    }
    this.tone = encodeG711(pcm, config.law);
    this.socket = net.connect({
      host: config.target.host,
      port: config.target.port,
      ...(config.localAddress ? { localAddress: config.localAddress } : {}),
    });
    this.socket.on("connect", () => this.tick());
    this.socket.on("data", (c: Buffer) => this.onData(c));
    this.socket.on("error", () => this.close());
    this.socket.on("close", () => this.close());
  }

  get session(): string {
    return this.config.session;
  }

  info(): TalkSessionInfo {
    return {
      session: this.config.session,
      law: this.config.law,
      mode: this.config.mode,
      framesSent: this.framesSent,
      framesReceived: this.framesReceived,
      received: Buffer.concat(this.received),
      ended: this.ended,
    };
  }

  close(): void {
    if (this.ended) return;
    this.ended = true;
    this.timer?.cancel();
    this.timer = null;
    this.socket.destroy();
    this.onEnd(this);
  }

  private onData(chunk: Buffer): void {
    const { payloads, rest } = splitTalkRecords(
      this.inbound.length ? Buffer.concat([this.inbound, chunk]) : chunk,
    );
    this.inbound = rest;
    for (const p of payloads) {
      this.framesReceived++;
      if (this.receivedBytes + p.length <= MAX_RECEIVED) {
        this.received.push(Buffer.from(p));
        this.receivedBytes += p.length;
      }
      if (this.config.mode === "echo" && this.echo.length < 50) this.echo.push(Buffer.from(p));
    }
  }

  /** One frame every 20 ms: the tone, or the oldest frame to echo. */
  private tick(): void {
    if (this.ended) return;
    let frame: Buffer | undefined;
    if (this.config.mode === "tone") {
      const at = (this.framesSent * G711_FRAME_SAMPLES) % this.tone.length;
      frame = this.tone.subarray(at, at + G711_FRAME_SAMPLES);
    } else {
      frame = this.echo.shift();
    }
    if (frame) {
      const ssrc = Number(this.config.session) >>> 0;
      this.socket.write(
        talkRtpRecord(
          G711_PAYLOAD_TYPE[this.config.law],
          this.framesSent,
          this.framesSent * G711_FRAME_SAMPLES,
          ssrc,
          frame,
        ),
      );
      this.framesSent++;
    }
    this.timer = this.scheduler.after(FRAME_MS, () => this.tick());
  }
}
