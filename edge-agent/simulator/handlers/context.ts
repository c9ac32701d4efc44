import type { CatalogueView } from "../../signalling/catalogue.ts";
import type { PlatformRequestMessage, XmlElement } from "../../signalling/codec/index.ts";
import type { DeviceMedia } from "../device-media.ts";
import type { ResolvedOptions, UpgradeFault } from "../options.ts";
import type { DeviceProfile } from "../profile.ts";
import type { Random } from "../random.ts";
import type { StoredPictureFile } from "../stored-pictures.ts";

/** A media session a device opened for INVITESTREAM / PLAYBACK / DOWNLOAD / INVITETALK. */
export interface MediaSession {
  session: string;
  command: string;
  channel: number;
  openedAt: number;
}

/** Per-device state the command handlers read and change. */
export interface DeviceData {
  readonly profile: DeviceProfile;
  /** Stored SETDEVICECONFIG bodies, keyed by configKey(). */
  readonly config: Map<string, XmlElement>;
  /** Open media sessions by Session id. */
  readonly sessions: Map<string, MediaSession>;
  /** Device clock − host clock, ms (set by ADJUSTTIME). */
  timeOffsetMs: number;
  /** `TimeZone` last given by ADJUSTTIME, e.g. `+08:00`. */
  timeZone: string;
  /** Version an UPDATE announced, applied at the next boot. */
  pendingFirmware: string | null;
}

/** An UPDATE to carry out (ehome-2.0 §8 row UPDATE). */
export interface UpgradeJob {
  url: string;
  fileSize: number | undefined;
  md5: string | undefined;
  version: string;
}

/** What a handler may do beyond answering. */
export interface DeviceActions {
  /** Answered REBOOT: go silent for `silenceMs`, then boot (and re-register). */
  reboot(silenceMs: number): void;
  /** Answered UPDATE: flash for `afterMs` (negative = wait for REBOOT), then boot into `version`. */
  upgrade(version: string, afterMs: number): void;
  /** The upgrade fault this device plays (`upgradeFault` for a `upgradeFaultRate` share). */
  upgradeFault(): UpgradeFault;
  /**
   * Answered UPDATE with `upgradeDownload`: fetch `url`, check size and MD5, then go offline for
   * `upgradeMs` and boot into `version` (or report FAILED and stay).
   */
  downloadUpgrade(job: UpgradeJob): void;
  /** One PTZ movement performed (counted once per Sequence). */
  ptzAction(): void;
  /** Answered MANUALSNAP with SendTo 1: upload a picture named `picId` (ehome-2.0 §8). */
  snapshot(channel: number, picId: string): void;
  /** Answered UPLOADPIC with a PicID: upload that stored file under `picId` (ehome-2.0 §8). */
  uploadStoredPicture(file: StoredPictureFile, picId: string): void;
}

export interface HandlerContext {
  readonly device: DeviceData;
  readonly actions: DeviceActions;
  readonly view: CatalogueView;
  readonly options: ResolvedOptions;
  /** The device's media pushes (ehome-2.0 §4.1, §8). */
  readonly media: DeviceMedia;
  readonly random: Random;
  /** Host wall clock, epoch ms. */
  readonly wallClock: () => number;
}

export interface CommandReply {
  status: number;
  description: string;
  params?: XmlElement;
  /** Runs after the reply has been handed to the link (REBOOT goes silent only once it answered). */
  afterReply?: () => void;
}

export type CommandHandler = (ctx: HandlerContext, request: PlatformRequestMessage) => CommandReply;
