import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import {
  type EncodingChoice,
  PLAYBACK_FRAMINGS,
  type PlaybackFraming,
  type PtzChoice,
  type SimulatorOptions,
  UPGRADE_FAULTS,
  UPLOAD_ORDERS,
  type UpgradeFault,
  type UploadOrder,
} from "./options.ts";

/** Devices one process plays before the CLI splits the work over processes (fd limit, README). */
export const DEVICES_PER_WORKER = 15_000;

export interface CliConfig {
  options: SimulatorOptions;
  /** Worker processes; 1 = play every device in this process. */
  workers: number;
  /** Status line period; 0 = no status lines. */
  statusIntervalMs: number;
  /** Stop after this long and print the summary; undefined = until Ctrl-C. */
  durationSeconds: number | undefined;
}

export class CliUsageError extends Error {
  readonly code = "SIMULATOR_USAGE";
  constructor(message: string) {
    super(message);
    this.name = "CliUsageError";
  }
}

export const USAGE = `Usage: npm run sim -- [options]

Plays N EHOME 2.0 devices against an agent (docs/simulator.md).

  --agent HOST:PORT          agent signalling address (default 127.0.0.1:7660)
  --devices N                number of devices (default 1)
  --bind ADDR[,ADDR…]        local address(es) of the device sockets, used round-robin
                             (default 127.0.0.1; ~28k devices per address)
  --id-prefix TEXT           DeviceID prefix (default sim-)
  --id-start N               index of the first device (default 1)
  --id-width N               digits of the zero-padded index (default: fit, at least 5)
  --encoding E               gb2312 | utf8 | mixed (default gb2312)
  --password TEXT            send Password in REGISTER
  --dev-type N               DevType (default 31)
  --firmware TEXT            FirmwareVersion (default "V5.5.0 build 180101")
  --channels N               video channels per device, 1..64 (default 1; >1 plays an NVR)
  --ptz MODE                 true | false | mixed (default false)
  --register-spread-ms MS    spread first REGISTERs over this window (default 1000)
  --register-retry-ms MS     retry an unanswered REGISTER after this (default 5000)
  --keepalive-seconds S      override the agent's KeepAliveSeconds
  --keepalive-miss-limit N   re-register after N unanswered KEEPALIVEs, 0 = never (default 3)
  --gps-seconds S            GPS report period, 0 = off (default 0)
  --gps-retry-ms MS          resend an unanswered GPS report after this (default 3000)
  --gps-path LON,LAT;...     drive along these waypoints (signed degrees) instead of at random
  --gps-max-reports N        GPS reports per device, then stop, 0 = no limit (default 0)
  --gps-answer-loss R        share of GPS answers ignored, so reports are resent (default 0)
  --passthrough-seconds S    unsolicited TRANSPARENT period, 0 = off (default 0)
  --alarm-every-s S          each device raises an alarm this often, 0 = off (default 0)
  --alarm-pictures N         PicIDs announced and uploaded per alarm (default 1)
  --alarm-videos N           VideoIds announced and uploaded per alarm (default 0)
  --alarm-stop-after-ms MS   send the alarm's stop (AlarmAction 1) after this, 0 = never (default 0)
  --alarm-retry-ms MS        resend an unanswered ALARM after this (default 3000)
  --upload-order O           after | before | twice | never | mixed (default after)
  --upload-delay-ms MS       wait between an alarm (or MANUALSNAP) and its uploads (default 0)
  --upload-fail-rate P       probability an upload is never made, 0..1 (default 0)
  --video-bytes N            size of a simulated video upload (default 32768)
  --media-header             start media pushes with the 256-byte private header
  --media-speed X            pacing of live/playback pushes: 1 real time, 2 twice as
                             fast, 0 as fast as the socket takes (default 1)
  --playback-framing F       ps (raw MPEG-PS) | rtp ($-RTP like live) (default ps)
  --media-loss-rate P        LinkMode UDP pushes: share of RTP packets lost, 0..1 (default 0)
  --media-reorder-rate P     LinkMode UDP pushes: share sent after the next one, 0..1 (default 0)
  --media-audio              add G.711 silence (PES 0xC0, stream_type 0x90) to the PS
  --media-kbps K             pad frames with H.264 filler data up to K kbit/s
                             (benchmarks; default 0 = the fixtures as they are)
  --record-seconds S         length of each hourly record file, 1..3600 (default 60)
  --media-fixture-dir DIR    H.264 fixtures and fixtures.json (default test/fixtures/media)
  --reboot-ms MS             silence after REBOOT before re-registering (default 10000)
  --upgrade-ms MS            after UPDATE, reboot into the new version after this;
                             -1 = wait for REBOOT (default 3000)
  --upgrade-download         fetch UPDATE's URL for real, check FileSize/MD5, then go
                             offline for --upgrade-ms and re-register with Version
  --upgrade-fault KIND       none | bad-checksum | refuse | never-return (default none)
  --upgrade-fault-rate P     share of devices with --upgrade-fault, 0..1 (default 1)
  --upgrade-interrupt-bytes N  drop the first download after N bytes, resume with Range
                             (default 0 = never)
  --upgrade-status           send UPGRADESTATUS reports during an upgrade
  --upgrade-ca FILE          PEM CA certificate(s) trusted for https:// firmware URLs
  --upgrade-insecure         accept any certificate for https:// firmware URLs (tests only)
  --loss P                   drop probability 0..1, each direction (default 0)
  --latency-ms MS            one-way delay, each direction (default 0)
  --jitter-ms MS             ± uniform jitter on the delay (default 0)
  --duplicate P              probability a device datagram is sent twice (default 0)
  --malformed P              probability a reply is corrupted (default 0)
  --seed N                   seed for all random decisions (default random)
  --workers K                split devices over K processes (default: 1 per ${DEVICES_PER_WORKER} devices)
  --status-interval-ms MS    status line period on stderr, 0 = none (default 2000)
  --duration-s S             stop after S seconds (default: run until Ctrl-C)
  -h, --help                 this text

A status line goes to stderr every interval; the final JSON summary goes to stdout.`;

function number(name: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const v = Number(text);
  if (text.trim() === "" || !Number.isFinite(v)) {
    throw new CliUsageError(`--${name} expects a number, got "${text}"`);
  }
  return v;
}

function agentAddress(text: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[3]) : Number.NaN;
  if (!m || port < 1 || port > 65535) {
    throw new CliUsageError(`--agent expects HOST:PORT, got "${text}"`);
  }
  return { host: (m[1] ?? m[2])!, port };
}

/** `--gps-path 121.42,31.2;121.43,31.21` → waypoints (range checks: `resolveOptions`). */
function gpsPathArg(text: string | undefined): [number, number][] | undefined {
  if (text === undefined) return undefined;
  const points = text.split(";").map((pair) => pair.split(",").map((v) => Number(v.trim())));
  if (points.some((p) => p.length !== 2 || p.some((v) => !Number.isFinite(v)))) {
    throw new CliUsageError(`--gps-path expects LON,LAT;LON,LAT;… in degrees, got "${text}"`);
  }
  return points as [number, number][];
}

function ptzChoice(text: string | undefined): PtzChoice | undefined {
  if (text === undefined) return undefined;
  if (text === "true") return true;
  if (text === "false") return false;
  if (text === "mixed") return "mixed";
  throw new CliUsageError(`--ptz expects true, false or mixed, got "${text}"`);
}

function encodingChoice(text: string | undefined): EncodingChoice | undefined {
  if (text === undefined) return undefined;
  const t = text.toLowerCase().replace("-", "");
  if (t === "gb2312" || t === "utf8" || t === "mixed") return t;
  throw new CliUsageError(`--encoding expects gb2312, utf8 or mixed, got "${text}"`);
}

function uploadOrderChoice(text: string | undefined): UploadOrder | undefined {
  if (text === undefined) return undefined;
  if ((UPLOAD_ORDERS as readonly string[]).includes(text)) return text as UploadOrder;
  throw new CliUsageError(`--upload-order expects ${UPLOAD_ORDERS.join(", ")}, got "${text}"`);
}

function pemFile(path: string | undefined): string | undefined {
  if (path === undefined) return undefined;
  try {
    return readFileSync(path, "utf8");
  } catch (err) {
    throw new CliUsageError(`--upgrade-ca: cannot read ${path}: ${(err as Error).message}`);
  }
}

function playbackFramingChoice(text: string | undefined): PlaybackFraming | undefined {
  if (text === undefined) return undefined;
  if ((PLAYBACK_FRAMINGS as readonly string[]).includes(text)) return text as PlaybackFraming;
  throw new CliUsageError(`--playback-framing expects ps or rtp, got "${text}"`);
}

function upgradeFault(text: string | undefined): UpgradeFault | undefined {
  if (text === undefined) return undefined;
  if ((UPGRADE_FAULTS as readonly string[]).includes(text)) return text as UpgradeFault;
  throw new CliUsageError(`--upgrade-fault expects ${UPGRADE_FAULTS.join(", ")}, got "${text}"`);
}

/** argv (without node and script) → configuration; null means --help. Throws CliUsageError. */
export function parseCliArgs(argv: readonly string[]): CliConfig | null {
  let values: Record<string, string | boolean | undefined>;
  const str = { type: "string" } as const;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        agent: str,
        devices: str,
        bind: str,
        "id-prefix": str,
        "id-start": str,
        "id-width": str,
        encoding: str,
        password: str,
        "dev-type": str,
        firmware: str,
        channels: str,
        ptz: str,
        "register-spread-ms": str,
        "register-retry-ms": str,
        "keepalive-seconds": str,
        "keepalive-miss-limit": str,
        "gps-seconds": str,
        "gps-retry-ms": str,
        "gps-path": str,
        "gps-max-reports": str,
        "gps-answer-loss": str,
        "passthrough-seconds": str,
        "alarm-every-s": str,
        "alarm-pictures": str,
        "alarm-videos": str,
        "alarm-stop-after-ms": str,
        "alarm-retry-ms": str,
        "upload-order": str,
        "upload-delay-ms": str,
        "upload-fail-rate": str,
        "video-bytes": str,
        "media-header": { type: "boolean" },
        "media-speed": str,
        "media-loss-rate": str,
        "media-reorder-rate": str,
        "playback-framing": str,
        "media-audio": { type: "boolean" },
        "record-seconds": str,
        "media-kbps": str,
        "media-fixture-dir": str,
        "reboot-ms": str,
        "upgrade-ms": str,
        "upgrade-download": { type: "boolean" },
        "upgrade-fault": str,
        "upgrade-fault-rate": str,
        "upgrade-interrupt-bytes": str,
        "upgrade-status": { type: "boolean" },
        "upgrade-ca": str,
        "upgrade-insecure": { type: "boolean" },
        loss: str,
        "latency-ms": str,
        "jitter-ms": str,
        duplicate: str,
        malformed: str,
        seed: str,
        workers: str,
        "status-interval-ms": str,
        "duration-s": str,
        help: { type: "boolean", short: "h" },
      },
    }));
  } catch (err) {
    throw new CliUsageError((err as Error).message);
  }
  if (values.help) return null;
  const s = (k: string) => values[k] as string | undefined;
  const n = (k: string) => number(k, s(k));
  const devices = n("devices") ?? 1;
  const options: SimulatorOptions = {
    agent: agentAddress(s("agent") ?? "127.0.0.1:7660"),
    devices,
  };
  const set = <K extends keyof SimulatorOptions>(key: K, v: SimulatorOptions[K] | undefined) => {
    if (v !== undefined) options[key] = v;
  };
  set(
    "bind",
    s("bind")
      ?.split(",")
      .map((a) => a.trim()),
  );
  set("idPrefix", s("id-prefix"));
  set("firstIndex", n("id-start"));
  set("idWidth", n("id-width"));
  set("encoding", encodingChoice(s("encoding")));
  set("password", s("password"));
  set("devType", s("dev-type"));
  set("firmwareVersion", s("firmware"));
  set("channels", n("channels"));
  set("ptz", ptzChoice(s("ptz")));
  set("registerSpreadMs", n("register-spread-ms"));
  set("registerRetryMs", n("register-retry-ms"));
  set("keepAliveSeconds", n("keepalive-seconds"));
  set("keepaliveMissLimit", n("keepalive-miss-limit"));
  set("gpsIntervalSeconds", n("gps-seconds"));
  set("gpsRetryMs", n("gps-retry-ms"));
  set("gpsPath", gpsPathArg(s("gps-path")));
  set("gpsMaxReports", n("gps-max-reports"));
  set("gpsAnswerLossRate", n("gps-answer-loss"));
  set("passthroughIntervalSeconds", n("passthrough-seconds"));
  set("alarmEverySeconds", n("alarm-every-s"));
  set("alarmPictures", n("alarm-pictures"));
  set("alarmVideos", n("alarm-videos"));
  set("alarmStopAfterMs", n("alarm-stop-after-ms"));
  set("alarmRetryMs", n("alarm-retry-ms"));
  set("uploadOrder", uploadOrderChoice(s("upload-order")));
  set("uploadDelayMs", n("upload-delay-ms"));
  set("uploadFailRate", n("upload-fail-rate"));
  set("videoBytes", n("video-bytes"));
  if (values["media-header"]) options.mediaHeader = true;
  set("mediaSpeed", n("media-speed"));
  set("playbackFraming", playbackFramingChoice(s("playback-framing")));
  set("mediaLossRate", n("media-loss-rate"));
  set("mediaReorderRate", n("media-reorder-rate"));
  if (values["media-audio"]) options.mediaAudio = true;
  set("recordSeconds", n("record-seconds"));
  set("mediaBitrateKbps", n("media-kbps"));
  set("mediaFixtureDir", s("media-fixture-dir"));
  set("rebootMs", n("reboot-ms"));
  set("upgradeMs", n("upgrade-ms"));
  if (values["upgrade-download"]) options.upgradeDownload = true;
  set("upgradeFault", upgradeFault(s("upgrade-fault")));
  set("upgradeFaultRate", n("upgrade-fault-rate"));
  set("upgradeInterruptBytes", n("upgrade-interrupt-bytes"));
  if (values["upgrade-status"]) options.upgradeStatus = true;
  set("upgradeCa", pemFile(s("upgrade-ca")));
  if (values["upgrade-insecure"]) options.upgradeInsecure = true;
  set("loss", n("loss"));
  set("latencyMs", n("latency-ms"));
  set("jitterMs", n("jitter-ms"));
  set("duplicate", n("duplicate"));
  set("malformed", n("malformed"));
  set("seed", n("seed"));
  const workers = n("workers") ?? Math.max(1, Math.ceil(devices / DEVICES_PER_WORKER));
  if (!Number.isInteger(workers) || workers < 1) {
    throw new CliUsageError(`--workers expects a positive integer, got ${workers}`);
  }
  const statusIntervalMs = n("status-interval-ms") ?? 2000;
  if (statusIntervalMs < 0) throw new CliUsageError("--status-interval-ms must be >= 0");
  const durationSeconds = n("duration-s");
  if (durationSeconds !== undefined && durationSeconds <= 0) {
    throw new CliUsageError("--duration-s must be > 0");
  }
  return { options, workers, statusIntervalMs, durationSeconds };
}
