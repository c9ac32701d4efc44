import type { WireEncoding, XmlElement } from "../signalling/codec/index.ts";
import type { AlarmSpec, RaisedAlarm } from "./alarms.ts";
import type { MediaSessionInfo } from "./media-push.ts";
import type { DeviceProfile } from "./profile.ts";
import type { Counters, DeviceState } from "./stats.ts";
import type { TalkSessionInfo } from "./talk-push.ts";

/** One platform request as a device saw it (the per-device command log). */
export interface ReceivedCommand {
  /** Host wall clock, epoch ms. */
  at: number;
  sequence: number;
  /** `Command` as received. */
  command: string;
  /** Catalogue id, or null for a command the catalogue does not know. */
  commandId: string | null;
  params: XmlElement;
  /** A copy of a request already acted on (same Sequence): answered again only. */
  duplicate: boolean;
  /** What the device answered. */
  status: number;
  description: string;
}

/** A simulated device as tests and the CLI see it. */
export interface SimulatedDevice {
  readonly id: string;
  readonly index: number;
  readonly state: DeviceState;
  /** True between goSilent() and resume()/reregister(). */
  readonly silent: boolean;
  readonly encoding: WireEncoding;
  /** The device socket's local address (its source address as the agent sees it on loopback). */
  readonly localAddress: { address: string; port: number };
  readonly profile: Readonly<DeviceProfile>;
  readonly firmwareVersion: string;
  /** Keepalive period in use (response or override), seconds; null before the first 200. */
  readonly keepAliveSeconds: number | null;
  /** REGISTER response Params of the last successful registration (catalogue field keys). */
  readonly registration: Readonly<Record<string, string>> | null;
  readonly counters: Readonly<Counters>;
  /** The last `commandLogSize` platform requests, oldest first. */
  readonly commands: readonly ReceivedCommand[];
  /** The device's clock as it would write it (`YYYY-MM-DD HH:MM:SS`, after ADJUSTTIME). */
  deviceTime(): string;
  /**
   * Media pushes (ehome-2.0 §4.1, §8): those running, then the last 16 ended, with what was sent
   * and, with the `mediaCapture` option, the PS itself.
   */
  mediaSessions(): MediaSessionInfo[];
  /** Voice talk sessions (INVITETALK, issue 8): frames sent and the G.711 received. */
  talkSessions(): TalkSessionInfo[];
  /** The bytes DOWNLOAD of this record file pushes (its PS); undefined for an unknown name. */
  recordPs(fileName: string): Buffer | undefined;
  /** Stored SETDEVICECONFIG body for this ConfigCmd (Get or Set name) and ConfigParam1..4. */
  storedConfig(configCmd: string, ...configParams: Array<string | number>): XmlElement | undefined;
  /** Stops sending and ignores everything received (a cable pulled), timers included. */
  goSilent(): void;
  /** Ends a silence: keepalives continue where a registered device left off, else it registers. */
  resume(): void;
  /** Sends a fresh REGISTER now (ends a silence too). */
  reregister(): void;
  /**
   * Raises an ALARM now (ehome-2.0 §5.1, §8) naming its pictures and videos, uploaded to the
   * picture server per `spec.order` (default the `uploadOrder` option).
   */
  raiseAlarm(spec?: AlarmSpec): RaisedAlarm;
  /** `PictureServer`:`PictureServerPort` of the last REGISTER reply; undefined before one. */
  pictureServer(): { host: string; port: number } | undefined;
}

export interface SimulatorEvents {
  state: { device: SimulatedDevice; from: DeviceState; to: DeviceState };
  registered: { device: SimulatedDevice; keepAliveSeconds: number };
  /** A platform request arrived and was answered (copies included, flagged `duplicate`). */
  command: { device: SimulatedDevice; command: ReceivedCommand };
  /** The agent answered a device request with a non-200 Status (403 KEEPALIVE, refused REGISTER). */
  rejected: { device: SimulatedDevice; whichCommand: string; status: number; description: string };
}
