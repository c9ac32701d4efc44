import {
  emptyHistogram,
  type HistogramData,
  type LatencySummary,
  mergeHistogram,
  summarise,
} from "./histogram.ts";

export const DEVICE_STATES = ["registering", "online", "rebooting", "stopped"] as const;
export type DeviceState = (typeof DEVICE_STATES)[number];

/** Event counters, kept per device and summed for the simulator (and across workers). */
export interface Counters {
  /** REGISTER answered 200. */
  registrations: number;
  /** REGISTER requests sent (first tries and retries). */
  registerAttempts: number;
  /** REGISTER answered with a non-200 Status. */
  registerRefused: number;
  keepalivesSent: number;
  keepalivesAnswered: number;
  /** KEEPALIVEs still unanswered when the next one was due. */
  keepalivesMissed: number;
  /** KEEPALIVE answered 403 (unknown to the agent), followed by a re-register. */
  keepalive403: number;
  gpsSent: number;
  gpsResent: number;
  gpsAnswered: number;
  /** Unsolicited TRANSPARENT messages sent, and answered (ehome-2.0 §8). */
  passthroughSent: number;
  passthroughAnswered: number;
  /** ALARM reports raised (start and stop), first sends only. */
  alarmsSent: number;
  /** ALARM copies resent (same Sequence, RetransFlag 1) because unanswered. */
  alarmsResent: number;
  /** ALARMs answered 200 (stored). */
  alarmsAnswered: number;
  /** ALARM answers other than 200 (e.g. 403 before a re-registration); the alarm stays pending. */
  alarmsRefused: number;
  /** Picture/video uploads made (POST /pictures, /videos), copies included. */
  uploadsSent: number;
  /** Uploads answered 200. */
  uploadsOk: number;
  /** Uploads answered otherwise, or that could not be made (no picture server, network). */
  uploadsFailed: number;
  /** Uploads left out on purpose (`uploadFailRate`, `uploadOrder` never). */
  uploadsSkipped: number;
  /** MANUALSNAP requests acted on (a picture taken and uploaded). */
  snapshots: number;
  /** UPLOADPIC requests acted on (a stored picture uploaded). */
  storedPicturesUploaded: number;
  /** Platform requests received, copies included. */
  commandsReceived: number;
  /** Replies sent to platform requests, copies included. */
  commandsAnswered: number;
  /** Copies of a request already acted on (same Sequence): answered again, not acted on. */
  commandDuplicates: number;
  /** Replies with a non-200 Status. */
  commandsRefused: number;
  unknownCommands: number;
  ptzActions: number;
  reboots: number;
  firmwareChanges: number;
  /** Firmware downloads completed with the right size and MD5 (`upgradeDownload`). */
  firmwareDownloads: number;
  /** Firmware body bytes received (resumed ranges included). */
  firmwareBytes: number;
  /** Upgrades that failed on the device: download error, size/MD5 mismatch, `bad-checksum`. */
  upgradeFailures: number;
  datagramsSent: number;
  datagramsReceived: number;
  bytesSent: number;
  bytesReceived: number;
  /** Datagrams dropped by the loss knob, each direction. */
  droppedOutbound: number;
  droppedInbound: number;
  /** Extra copies sent by the duplicate knob. */
  duplicatesSent: number;
  /** Replies corrupted by the malformed knob. */
  malformedSent: number;
  /** Datagrams from the agent the codec refused. */
  decodeErrors: number;
  /** Replies that could not be encoded (answered with a failure Status instead). */
  encodeErrors: number;
  sendErrors: number;
  /** Media pushes started (INVITESTREAM, PLAYBACK, DOWNLOAD answered 200). */
  mediaStreams: number;
  /** Media pushes that failed (could not connect, socket error). */
  mediaFailures: number;
  /** Bytes written to media sockets (header, RTP framing and PS). */
  mediaBytesSent: number;
}

export type CounterName = keyof Counters;

const COUNTER_NAMES: readonly CounterName[] = [
  "registrations",
  "registerAttempts",
  "registerRefused",
  "keepalivesSent",
  "keepalivesAnswered",
  "keepalivesMissed",
  "keepalive403",
  "gpsSent",
  "gpsResent",
  "gpsAnswered",
  "passthroughSent",
  "passthroughAnswered",
  "alarmsSent",
  "alarmsResent",
  "alarmsAnswered",
  "alarmsRefused",
  "uploadsSent",
  "uploadsOk",
  "uploadsFailed",
  "uploadsSkipped",
  "snapshots",
  "storedPicturesUploaded",
  "commandsReceived",
  "commandsAnswered",
  "commandDuplicates",
  "commandsRefused",
  "unknownCommands",
  "ptzActions",
  "reboots",
  "firmwareChanges",
  "firmwareDownloads",
  "firmwareBytes",
  "upgradeFailures",
  "datagramsSent",
  "datagramsReceived",
  "bytesSent",
  "bytesReceived",
  "droppedOutbound",
  "droppedInbound",
  "duplicatesSent",
  "malformedSent",
  "decodeErrors",
  "encodeErrors",
  "sendErrors",
  "mediaStreams",
  "mediaFailures",
  "mediaBytesSent",
];

export function emptyCounters(): Counters {
  const c = {} as Counters;
  for (const k of COUNTER_NAMES) c[k] = 0;
  return c;
}

/** Raw, mergeable statistics (what a worker process reports). */
export interface StatsSnapshot {
  devices: number;
  states: Record<DeviceState, number>;
  counters: Counters;
  /** KEEPALIVE round trips (send → answer), ms. */
  latency: HistogramData;
  elapsedMs: number;
}

/** What `stats()` returns. */
export interface SimulatorStats extends Counters {
  devices: number;
  states: Record<DeviceState, number>;
  /** KEEPALIVE round-trip time (request sent → answer processed), impairments included. */
  latency: LatencySummary;
  elapsedMs: number;
}

export function emptyStates(): Record<DeviceState, number> {
  return { registering: 0, online: 0, rebooting: 0, stopped: 0 };
}

export function emptySnapshot(): StatsSnapshot {
  return {
    devices: 0,
    states: emptyStates(),
    counters: emptyCounters(),
    latency: emptyHistogram(),
    elapsedMs: 0,
  };
}

export function mergeSnapshots(snapshots: readonly StatsSnapshot[]): StatsSnapshot {
  const out = emptySnapshot();
  for (const s of snapshots) {
    out.devices += s.devices;
    for (const st of DEVICE_STATES) out.states[st] += s.states[st];
    for (const k of COUNTER_NAMES) out.counters[k] += s.counters[k];
    mergeHistogram(out.latency, s.latency);
    out.elapsedMs = Math.max(out.elapsedMs, s.elapsedMs);
  }
  return out;
}

export function toStats(s: StatsSnapshot): SimulatorStats {
  return {
    devices: s.devices,
    states: { ...s.states },
    ...s.counters,
    latency: summarise(s.latency),
    elapsedMs: Math.round(s.elapsedMs),
  };
}
