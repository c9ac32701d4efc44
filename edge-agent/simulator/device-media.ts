import type { MediaSession } from "./handlers/context.ts";
import {
  type MediaEndReason,
  MediaPush,
  type MediaPushConfig,
  type MediaSessionInfo,
} from "./media-push.ts";
import { createFixtureCache, type FixtureName, type MediaFixture } from "./media-source.ts";
import type { ResolvedOptions } from "./options.ts";
import { seededRandom } from "./random.ts";
import { createRecordStore, type RecordStore } from "./records.ts";
import type { Scheduler } from "./scheduler.ts";
import type { CounterName } from "./stats.ts";
import { TalkPush, type TalkSessionInfo } from "./talk-push.ts";

/** Media shared by every device of a simulator: the fixtures and the record store, loaded lazily. */
export interface SimMediaEnv {
  fixture(name: FixtureName): MediaFixture;
  records(): RecordStore;
}

export function createSimMediaEnv(options: ResolvedOptions): SimMediaEnv {
  const fixture = createFixtureCache(options.mediaFixtureDir, options.mediaBitrateKbps);
  let store: RecordStore | null = null;
  return {
    fixture,
    records() {
      store ??= createRecordStore(fixture("main"), {
        recordSeconds: options.recordSeconds,
        audio: options.mediaAudio,
      });
      return store;
    },
  };
}

/** Ended pushes remembered per device for `mediaSessions()`. */
const HISTORY = 16;

export interface DeviceMediaDeps {
  scheduler: Scheduler;
  options: ResolvedOptions;
  env: SimMediaEnv;
  deviceId: string;
  /** The device's address: pushes connect from it (the agent accepts only that address). */
  localAddress: string;
  /** The device's signalling sessions: a push that ends forgets its session. */
  sessions: Map<string, MediaSession>;
  count(name: CounterName, n?: number): void;
}

export type PushRequest = Omit<
  MediaPushConfig,
  "deviceId" | "localAddress" | "header" | "speed" | "audio" | "capture" | "framing" | "udp"
> & {
  framing?: MediaPushConfig["framing"];
  /** `LinkMode` UDP (issue 8): RTP datagrams with the `mediaLossRate`/`mediaReorderRate` impairments. */
  udp?: boolean;
};

/** A device's media pushes (ehome-2.0 §4.1, §8): started by the MEDIA handlers, one per Session. */
export class DeviceMedia {
  private readonly pushes = new Map<string, MediaPush>();
  private readonly history: MediaSessionInfo[] = [];
  private readonly talkPushes = new Map<string, TalkPush>();
  private readonly talkHistory: TalkSessionInfo[] = [];

  constructor(private readonly deps: DeviceMediaDeps) {}

  get env(): SimMediaEnv {
    return this.deps.env;
  }

  /** Connects to the sink and starts pushing. */
  start(request: PushRequest): MediaPush {
    const o = this.deps.options;
    const { udp, ...rest } = request;
    const push = new MediaPush(
      {
        ...rest,
        // ehome-2.0 §8: UDP carries RTP datagrams only (no raw PS, no private header).
        framing: udp ? "rtp" : (request.framing ?? "rtp"),
        ...(udp
          ? {
              udp: {
                lossRate: o.mediaLossRate,
                reorderRate: o.mediaReorderRate,
                random: seededRandom((o.seed ^ Number(request.session)) >>> 0),
              },
            }
          : {}),
        deviceId: this.deps.deviceId,
        localAddress: this.deps.localAddress,
        header: udp ? false : o.mediaHeader,
        speed: o.mediaSpeed,
        audio: o.mediaAudio,
        capture: o.mediaCapture,
      },
      {
        scheduler: this.deps.scheduler,
        onBytes: (n) => this.deps.count("mediaBytesSent", n),
        onEnd: (p, reason) => this.ended(p, reason),
      },
    );
    this.pushes.set(push.session, push);
    this.deps.count("mediaStreams");
    return push;
  }

  /** INVITETALK answered (issue 8): connect to the sink and talk (talk-push.ts, `talkMode`). */
  startTalk(request: {
    session: string;
    target: { host: string; port: number };
    law: "ulaw" | "alaw";
  }): TalkPush {
    const push = new TalkPush(
      {
        ...request,
        localAddress: this.deps.localAddress,
        mode: this.deps.options.talkMode,
      },
      this.deps.scheduler,
      (p) => {
        if (this.talkPushes.get(p.session) !== p) return;
        this.talkPushes.delete(p.session);
        this.deps.sessions.delete(p.session);
        this.talkHistory.push(p.info());
        if (this.talkHistory.length > HISTORY) this.talkHistory.shift();
      },
    );
    this.talkPushes.set(push.session, push);
    return push;
  }

  /** Talk sessions: recently ended, then running. */
  talks(): TalkSessionInfo[] {
    return [...this.talkHistory, ...[...this.talkPushes.values()].map((p) => p.info())];
  }

  get(session: string): MediaPush | undefined {
    return this.pushes.get(session);
  }

  /** FORCEIFRAME: every live push of this channel and stream type sends an IDR next. */
  forceIdr(channel: number, streamType: number): number {
    let n = 0;
    for (const p of this.pushes.values()) {
      const c = p.config;
      if (c.kind === "live" && c.channel === channel && c.streamType === streamType) {
        p.forceIdr();
        n++;
      }
    }
    return n;
  }

  /** Pushes now running, then recently ended ones (newest last). */
  infos(): MediaSessionInfo[] {
    return [...this.history, ...[...this.pushes.values()].map((p) => p.info())];
  }

  stop(session: string, reason: MediaEndReason = "bye"): void {
    this.talkPushes.get(session)?.close();
    this.pushes.get(session)?.close(reason);
  }

  /** Ends every push (reboot, silence, close). */
  closeAll(reason: MediaEndReason = "device-closed"): void {
    for (const p of [...this.pushes.values()]) p.close(reason);
    for (const t of [...this.talkPushes.values()]) t.close();
  }

  private ended(push: MediaPush, reason: MediaEndReason): void {
    if (this.pushes.get(push.session) !== push) return;
    this.pushes.delete(push.session);
    this.deps.sessions.delete(push.session);
    if (reason === "error") this.deps.count("mediaFailures");
    this.history.push(push.info());
    if (this.history.length > HISTORY) this.history.shift();
  }
}
