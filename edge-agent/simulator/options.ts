import { isIP } from "node:net";
import type { WireEncoding } from "../signalling/codec/index.ts";

/** Which encoding the devices write. `mixed`: odd indexes GB2312, even indexes UTF-8. */
export type EncodingChoice = "gb2312" | "utf8" | "mixed";

/**
 * PTZ capability. `mixed`: half the devices, in pairs (indexes 2, 3, 6, 7, …), so that with `mixed`
 * encoding every encoding/PTZ combination occurs.
 */
export type PtzChoice = boolean | "mixed";
export const UPGRADE_FAULTS = ["none", "bad-checksum", "refuse", "never-return"] as const;
export type UpgradeFault = (typeof UPGRADE_FAULTS)[number];

export interface AgentAddress {
  host: string;
  port: number;
}

/**
 * Simulator configuration. Plain data only (no functions), so the same object can be handed to
 * worker processes over IPC.
 */
export interface SimulatorOptions {
  /** Where REGISTER/KEEPALIVE go (the agent's signalling port). */
  agent: AgentAddress;
  /** Number of devices. */
  devices: number;
  /**
   * Local address(es) the device sockets bind to (one socket per device, port 0). Several addresses
   * are used round-robin by device index: one address offers only the ephemeral port range (~28k
   * on Linux), so 100k loopback devices need e.g. 127.0.0.1–127.0.0.4. Default 127.0.0.1.
   */
  bind?: string | readonly string[];
  /** DeviceID = prefix + zero-padded index. Default `sim-`. */
  idPrefix?: string;
  /** Index of the first device. Default 1. */
  firstIndex?: number;
  /** Digits of the zero-padded index. Default: enough for the last index, at least 5. */
  idWidth?: number;
  /** Default `gb2312` (what EHome 2.0 firmware declares, ehome-2.0 §1.3). */
  encoding?: EncodingChoice;
  /** Optional `Password` element in REGISTER (EHome 4.0 template, ehome-2.0 §2.1). */
  password?: string;
  /** `DevType` in REGISTER. Default `31` (the captured IPC, ehome-2.0 §2.1). */
  devType?: string;
  /** `FirmwareVersion` in REGISTER. Default `V5.5.0 build 180101`. */
  firmwareVersion?: string;
  /** Video channels per device (1..64). Default 1; more than 1 plays an NVR. */
  channels?: number;
  /** PTZ capability. Default false (a fixed camera answers PTZ with 401, ehome-2.0 §3.4). */
  ptz?: PtzChoice;
  /** REGISTERs are spread evenly over this window after start(). Default 1000 ms. */
  registerSpreadMs?: number;
  /** An unanswered (or refused) REGISTER is retried after this. Default 5000 ms (±20 % jitter). */
  registerRetryMs?: number;
  /** Overrides the `KeepAliveSeconds` of the REGISTER response (fractions allowed for tests). */
  keepAliveSeconds?: number;
  /** Consecutive unanswered KEEPALIVEs after which the device re-registers; 0 = never. Default 3. */
  keepaliveMissLimit?: number;
  /** GPS report period in seconds; 0 (default) = no GPS. ehome-2.0 §2.9 */
  gpsIntervalSeconds?: number;
  /** An unanswered GPS report is resent (RetransFlag 1) after this. Default 3000 ms. */
  gpsRetryMs?: number;
  /**
   * Waypoints `[longitude, latitude]` (signed degrees) every device drives along, from the first,
   * at its speed, turning back at the end. Default: a random drive around Hangzhou.
   */
  gpsPath?: ReadonlyArray<readonly [number, number]>;
  /** GPS reports per device, then it stops reporting; 0 (default) = no limit. */
  gpsMaxReports?: number;
  /**
   * Share (0..1) of GPS answers the device acts as if lost: it resends the report with
   * RetransFlag 1 and the same Sequence after `gpsRetryMs`. Default 0.
   */
  gpsAnswerLossRate?: number;
  /** Period of unsolicited TRANSPARENT messages (ehome-2.0 §8), seconds; 0 (default) = none. */
  passthroughIntervalSeconds?: number;
  /** How long a device stays silent after answering REBOOT. Default 10000 ms. */
  rebootMs?: number;
  /**
   * After answering UPDATE the device "downloads and flashes" for this long, then reboots into the
   * new `FirmwareVersion`. Negative = wait for a REBOOT command instead. Default 3000 ms.
   */
  upgradeMs?: number;
  /**
   * Fetch UPDATE's `URL` for real (HTTP GET, resumed with `Range`), check `FileSize` and `MD5`, then
   * go offline for `upgradeMs` ("flashing") and re-register with `Version`. Default false: the
   * device only waits `upgradeMs` and reboots, without touching the URL.
   */
  upgradeDownload?: boolean;
  /**
   * Upgrade failure played by a share of devices (`upgradeFaultRate`): `bad-checksum` (the download
   * does not match: UPGRADESTATUS FAILED, stays on the old version), `refuse` (UPDATE answered
   * non-200), `never-return` (silent forever after the download). Default `none`.
   */
  upgradeFault?: UpgradeFault;
  /** Share (0..1) of devices with `upgradeFault`, chosen by device id and seed. Default 1. */
  upgradeFaultRate?: number;
  /** The first download connection drops after this many bytes and resumes with Range. 0 = never. */
  upgradeInterruptBytes?: number;
  /** Send UPGRADESTATUS reports (DOWNLOADING / UPGRADING / FAILED / SUCCEEDED). Default false. */
  upgradeStatus?: boolean;
  /**
   * PEM certificate(s) trusted for `https://` firmware URLs, in place of the system's CAs (a
   * self-signed or private CA). Default: the system's CAs.
   */
  upgradeCa?: string;
  /** Accept any certificate for `https://` firmware URLs (tests only). Default false. */
  upgradeInsecure?: boolean;
  /** Probability (0..1) of dropping a datagram, applied to each direction. Default 0. */
  loss?: number;
  /** One-way delay added to each direction, ms. Default 0. */
  latencyMs?: number;
  /** Uniform jitter (± ms) added to the latency. Default 0. */
  jitterMs?: number;
  /** Probability (0..1) that a datagram the device sends goes out twice. Default 0. */
  duplicate?: number;
  /** Probability (0..1) that a reply to a platform request is corrupted (truncated). Default 0. */
  malformed?: number;
  /** Seed for every random decision (impairments, content). Default: random. */
  seed?: number;
  /** Received commands kept per device (oldest dropped). Default 50. */
  commandLogSize?: number;
  /** Largest reply datagram a device writes. Default 8192 (SDK replies exceed 1500, §1.1). */
  maxReplyBytes?: number;
  /** Each online device raises an alarm this often, in seconds; 0 (default) = none (§5.1, §8). */
  alarmEverySeconds?: number;
  /** Pictures announced (`PicID`) and uploaded per alarm. Default 1. */
  alarmPictures?: number;
  /** Videos announced (`VideoId`) and uploaded per alarm. Default 0. */
  alarmVideos?: number;
  /** An alarm start is followed by its stop (AlarmAction 1, no media) after this; 0 = no stop. */
  alarmStopAfterMs?: number;
  /** An unanswered ALARM is resent (same Sequence, RetransFlag 1) after this. Default 3000 ms. */
  alarmRetryMs?: number;
  /**
   * When an alarm's media are uploaded: `after` the alarm (default), `before` it, `twice` (after,
   * each file twice), `never`, or `mixed` (each alarm picks one of the four).
   */
  uploadOrder?: UploadOrder;
  /** Wait between the alarm and its uploads (either order), and before a MANUALSNAP upload. Default 0. */
  uploadDelayMs?: number;
  /** Probability (0..1) that an upload is not made at all (a lost picture). Default 0. */
  uploadFailRate?: number;
  /** Size of a simulated video upload in bytes. Default 32768. */
  videoBytes?: number;
  /** Media pushes start with the 256-byte private header (ehome-2.0 §4.1 item 2). Default false. */
  mediaHeader?: boolean;
  /**
   * Pacing of live and playback pushes: 1 = real time (default), 2 = twice as fast, …; 0 = as fast
   * as the socket takes (tests, benchmarks). DOWNLOAD is always as fast as the socket takes.
   */
  mediaSpeed?: number;
  /** Playback pushes raw MPEG-PS (`ps`, default, ehome-2.0 §2.7) or `$`-RTP like live (`rtp`). */
  playbackFraming?: PlaybackFraming;
  /** INVITETALK (issue 8): the device sends a 1 kHz tone (`tone`, default) or echoes what it hears. */
  talkMode?: "tone" | "echo";
  /** `LinkMode` UDP pushes (issue 8): share (0..1) of RTP packets not sent (seeded). Default 0. */
  mediaLossRate?: number;
  /** `LinkMode` UDP pushes: share (0..1) of RTP packets sent after the next one (seeded). Default 0. */
  mediaReorderRate?: number;
  /** Add G.711 A-law silence (PES 0xC0, stream_type 0x90) to every PS pack. Default false. */
  mediaAudio?: boolean;
  /** Keep the PS each push sent (`mediaSessions()[i].captured`, ≤ 64 MiB each). Default false. */
  mediaCapture?: boolean;
  /** Length of each record file (one per channel per hour), seconds. Default 60. */
  recordSeconds?: number;
  /**
   * Pad every frame of the fixtures with H.264 filler data up to this bitrate (kbit/s at 25 fps)
   * for benchmark-sized streams; 0 (default) = the fixtures as they are (~620 / ~225 kbit/s).
   */
  mediaBitrateKbps?: number;
  /** Directory of the H.264 fixtures and fixtures.json. Default test/fixtures/media/. */
  mediaFixtureDir?: string;
}

export const PLAYBACK_FRAMINGS = ["ps", "rtp"] as const;
export type PlaybackFraming = (typeof PLAYBACK_FRAMINGS)[number];

export const UPLOAD_ORDERS = ["after", "before", "twice", "never", "mixed"] as const;
export type UploadOrder = (typeof UPLOAD_ORDERS)[number];

export interface ResolvedOptions {
  agent: AgentAddress;
  devices: number;
  bind: readonly string[];
  idPrefix: string;
  firstIndex: number;
  idWidth: number;
  encoding: EncodingChoice;
  password: string | undefined;
  devType: string;
  firmwareVersion: string;
  channels: number;
  ptz: PtzChoice;
  registerSpreadMs: number;
  registerRetryMs: number;
  keepAliveSeconds: number | undefined;
  keepaliveMissLimit: number;
  gpsIntervalSeconds: number;
  gpsRetryMs: number;
  gpsPath: ReadonlyArray<readonly [number, number]> | undefined;
  gpsMaxReports: number;
  gpsAnswerLossRate: number;
  passthroughIntervalSeconds: number;
  rebootMs: number;
  upgradeMs: number;
  upgradeDownload: boolean;
  upgradeFault: UpgradeFault;
  upgradeFaultRate: number;
  upgradeInterruptBytes: number;
  upgradeStatus: boolean;
  upgradeCa: string | undefined;
  upgradeInsecure: boolean;
  loss: number;
  latencyMs: number;
  jitterMs: number;
  duplicate: number;
  malformed: number;
  seed: number;
  commandLogSize: number;
  maxReplyBytes: number;
  alarmEverySeconds: number;
  alarmPictures: number;
  alarmVideos: number;
  alarmStopAfterMs: number;
  alarmRetryMs: number;
  uploadOrder: UploadOrder;
  uploadDelayMs: number;
  uploadFailRate: number;
  videoBytes: number;
  mediaHeader: boolean;
  mediaSpeed: number;
  playbackFraming: PlaybackFraming;
  mediaLossRate: number;
  mediaReorderRate: number;
  talkMode: "tone" | "echo";
  mediaAudio: boolean;
  mediaCapture: boolean;
  recordSeconds: number;
  mediaBitrateKbps: number;
  mediaFixtureDir: string | undefined;
}

export class SimulatorOptionsError extends Error {
  readonly code = "SIMULATOR_BAD_OPTION";
  constructor(
    readonly option: string,
    message: string,
  ) {
    super(`${option}: ${message}`);
    this.name = "SimulatorOptionsError";
  }
}

export const MAX_CHANNELS = 64;

function num(
  name: string,
  value: number | undefined,
  fallback: number,
  min: number,
  max: number,
  integer = false,
): number {
  const v = value ?? fallback;
  if (typeof v !== "number" || Number.isNaN(v) || v < min || v > max) {
    throw new SimulatorOptionsError(name, `must be a number in [${min}, ${max}], got ${value}`);
  }
  if (integer && !Number.isInteger(v)) {
    throw new SimulatorOptionsError(name, `must be an integer, got ${value}`);
  }
  return v;
}

const HOUR = 3_600_000;

function bindAddresses(value: string | readonly string[] | undefined): string[] {
  const list =
    value === undefined ? ["127.0.0.1"] : typeof value === "string" ? [value] : [...value];
  if (list.length === 0) throw new SimulatorOptionsError("bind", "needs at least one address");
  const families = new Set(list.map((a) => isIP(a)));
  if (families.has(0)) throw new SimulatorOptionsError("bind", "must be IP addresses");
  if (families.size > 1) throw new SimulatorOptionsError("bind", "mixes IPv4 and IPv6");
  return list;
}

function uploadOrder(v: UploadOrder | undefined): UploadOrder {
  const o = v ?? "after";
  if (!(UPLOAD_ORDERS as readonly string[]).includes(o)) {
    throw new SimulatorOptionsError("uploadOrder", `must be one of ${UPLOAD_ORDERS.join(", ")}`);
  }
  return o;
}

function playbackFraming(v: PlaybackFraming | undefined): PlaybackFraming {
  const f = v ?? "ps";
  if (!(PLAYBACK_FRAMINGS as readonly string[]).includes(f)) {
    throw new SimulatorOptionsError("playbackFraming", "must be ps or rtp");
  }
  return f;
}

/** Applies defaults and validates; throws SimulatorOptionsError naming the bad option. */
export function resolveOptions(o: SimulatorOptions): ResolvedOptions {
  if (!o || typeof o !== "object") throw new SimulatorOptionsError("options", "required");
  if (!o.agent || typeof o.agent.host !== "string" || o.agent.host === "") {
    throw new SimulatorOptionsError("agent", "host is required");
  }
  const port = num("agent.port", o.agent.port, 0, 1, 65535, true);
  const devices = num("devices", o.devices, 0, 1, 1_000_000, true);
  const firstIndex = num("firstIndex", o.firstIndex, 1, 0, 1e12, true);
  const lastIndex = firstIndex + devices - 1;
  const idWidth = num("idWidth", o.idWidth, Math.max(5, String(lastIndex).length), 1, 16, true);
  if (String(lastIndex).length > idWidth) {
    throw new SimulatorOptionsError("idWidth", `${idWidth} digits cannot hold index ${lastIndex}`);
  }
  const encoding = o.encoding ?? "gb2312";
  if (!["gb2312", "utf8", "mixed"].includes(encoding)) {
    throw new SimulatorOptionsError("encoding", "must be gb2312, utf8 or mixed");
  }
  const ptz = o.ptz ?? false;
  if (ptz !== true && ptz !== false && ptz !== "mixed") {
    throw new SimulatorOptionsError("ptz", "must be true, false or mixed");
  }
  const keepAliveSeconds =
    o.keepAliveSeconds === undefined
      ? undefined
      : num("keepAliveSeconds", o.keepAliveSeconds, 15, 0.01, 86_400);
  const upgradeFault = o.upgradeFault ?? "none";
  if (!UPGRADE_FAULTS.includes(upgradeFault)) {
    throw new SimulatorOptionsError("upgradeFault", `must be one of ${UPGRADE_FAULTS.join(", ")}`);
  }
  const text = (name: string, v: string | undefined, fallback: string): string => {
    const s = v ?? fallback;
    if (typeof s !== "string" || s.length === 0 || s.length > 64) {
      throw new SimulatorOptionsError(name, "must be a non-empty string of at most 64 characters");
    }
    return s;
  };
  return {
    agent: { host: o.agent.host, port },
    devices,
    bind: bindAddresses(o.bind),
    idPrefix: o.idPrefix ?? "sim-",
    firstIndex,
    idWidth,
    encoding,
    password: o.password,
    devType: text("devType", o.devType, "31"),
    firmwareVersion: text("firmwareVersion", o.firmwareVersion, "V5.5.0 build 180101"),
    channels: num("channels", o.channels, 1, 1, MAX_CHANNELS, true),
    ptz,
    registerSpreadMs: num("registerSpreadMs", o.registerSpreadMs, 1000, 0, HOUR),
    registerRetryMs: num("registerRetryMs", o.registerRetryMs, 5000, 10, HOUR),
    keepAliveSeconds,
    keepaliveMissLimit: num("keepaliveMissLimit", o.keepaliveMissLimit, 3, 0, 1000, true),
    gpsIntervalSeconds: num("gpsIntervalSeconds", o.gpsIntervalSeconds, 0, 0, 86_400),
    gpsRetryMs: num("gpsRetryMs", o.gpsRetryMs, 3000, 10, HOUR),
    gpsPath: gpsPath(o.gpsPath),
    gpsMaxReports: num("gpsMaxReports", o.gpsMaxReports, 0, 0, 1e9, true),
    gpsAnswerLossRate: num("gpsAnswerLossRate", o.gpsAnswerLossRate, 0, 0, 1),
    passthroughIntervalSeconds: num(
      "passthroughIntervalSeconds",
      o.passthroughIntervalSeconds,
      0,
      0,
      86_400,
    ),
    rebootMs: num("rebootMs", o.rebootMs, 10_000, 0, HOUR),
    upgradeMs: num("upgradeMs", o.upgradeMs, 3000, -1, HOUR),
    upgradeDownload: o.upgradeDownload ?? false,
    upgradeFault,
    upgradeFaultRate: num("upgradeFaultRate", o.upgradeFaultRate, 1, 0, 1),
    upgradeInterruptBytes: num(
      "upgradeInterruptBytes",
      o.upgradeInterruptBytes,
      0,
      0,
      Number.MAX_SAFE_INTEGER,
      true,
    ),
    upgradeStatus: o.upgradeStatus ?? false,
    upgradeCa: o.upgradeCa,
    upgradeInsecure: o.upgradeInsecure ?? false,
    loss: num("loss", o.loss, 0, 0, 1),
    latencyMs: num("latencyMs", o.latencyMs, 0, 0, 60_000),
    jitterMs: num("jitterMs", o.jitterMs, 0, 0, 60_000),
    duplicate: num("duplicate", o.duplicate, 0, 0, 1),
    malformed: num("malformed", o.malformed, 0, 0, 1),
    seed: num("seed", o.seed, Math.floor(Math.random() * 2 ** 31), 0, 2 ** 32 - 1, true),
    commandLogSize: num("commandLogSize", o.commandLogSize, 50, 0, 10_000, true),
    maxReplyBytes: num("maxReplyBytes", o.maxReplyBytes, 8192, 512, 65_000, true),
    alarmEverySeconds: num("alarmEverySeconds", o.alarmEverySeconds, 0, 0, 86_400),
    alarmPictures: num("alarmPictures", o.alarmPictures, 1, 0, 16, true),
    alarmVideos: num("alarmVideos", o.alarmVideos, 0, 0, 16, true),
    alarmStopAfterMs: num("alarmStopAfterMs", o.alarmStopAfterMs, 0, 0, HOUR),
    alarmRetryMs: num("alarmRetryMs", o.alarmRetryMs, 3000, 10, HOUR),
    uploadOrder: uploadOrder(o.uploadOrder),
    uploadDelayMs: num("uploadDelayMs", o.uploadDelayMs, 0, 0, HOUR),
    uploadFailRate: num("uploadFailRate", o.uploadFailRate, 0, 0, 1),
    videoBytes: num("videoBytes", o.videoBytes, 32_768, 4, 64 * 1024 * 1024, true),
    mediaHeader: o.mediaHeader ?? false,
    mediaSpeed: num("mediaSpeed", o.mediaSpeed, 1, 0, 1000),
    playbackFraming: playbackFraming(o.playbackFraming),
    mediaLossRate: num("mediaLossRate", o.mediaLossRate, 0, 0, 1),
    mediaReorderRate: num("mediaReorderRate", o.mediaReorderRate, 0, 0, 1),
    talkMode: o.talkMode === "echo" ? "echo" : "tone",
    mediaAudio: o.mediaAudio ?? false,
    mediaCapture: o.mediaCapture ?? false,
    recordSeconds: num("recordSeconds", o.recordSeconds, 60, 1, 3600, true),
    mediaBitrateKbps: num("mediaBitrateKbps", o.mediaBitrateKbps, 0, 0, 100_000),
    mediaFixtureDir: o.mediaFixtureDir,
  };
}

/** The encoding device `index` writes. */
export function encodingFor(choice: EncodingChoice, index: number): WireEncoding {
  if (choice === "gb2312") return "GB2312";
  if (choice === "utf8") return "UTF-8";
  return index % 2 === 1 ? "GB2312" : "UTF-8";
}

export function ptzFor(choice: PtzChoice, index: number): boolean {
  return choice === "mixed" ? Math.floor(index / 2) % 2 === 1 : choice;
}

/** `gpsPath`: 1..10 000 waypoints of finite degrees within ±180 / ±90. */
function gpsPath(
  path: ReadonlyArray<readonly [number, number]> | undefined,
): ReadonlyArray<readonly [number, number]> | undefined {
  if (path === undefined) return undefined;
  const ok =
    Array.isArray(path) &&
    path.length >= 1 &&
    path.length <= 10_000 &&
    path.every(
      (p) =>
        Array.isArray(p) &&
        p.length === 2 &&
        Number.isFinite(p[0]) &&
        Number.isFinite(p[1]) &&
        Math.abs(p[0]) <= 180 &&
        Math.abs(p[1]) <= 90,
    );
  if (!ok) {
    throw new SimulatorOptionsError(
      "gpsPath",
      "must be 1-10000 [longitude, latitude] pairs within ±180 / ±90 degrees",
    );
  }
  return path.map((p) => [p[0], p[1]] as const);
}
