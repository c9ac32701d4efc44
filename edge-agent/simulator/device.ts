import { type CommandEntry, ENVELOPE } from "../signalling/catalogue.ts";
import {
  buildFields,
  childText,
  decode,
  encode,
  type ResponseMessage,
  readFields,
  type XmlElement,
} from "../signalling/codec/index.ts";
import { AlarmRaiser, type AlarmSpec, type RaisedAlarm } from "./alarms.ts";
import type { DeviceEnv, DevicePort } from "./device-env.ts";
import { DeviceMedia } from "./device-media.ts";
import { downloadFirmware } from "./firmware-download.ts";
import { GpsReporter } from "./gps-reporter.ts";
import { deviceLocalNow, formatDeviceTime, parseTimeZone } from "./handlers/clock.ts";
import type { DeviceActions, DeviceData, UpgradeJob } from "./handlers/context.ts";
import { configKey } from "./handlers/param.ts";
import { recordLatency } from "./histogram.ts";
import { createLink, type DatagramPort, type Link } from "./link.ts";
import type { MediaSessionInfo } from "./media-push.ts";
import type { UpgradeFault } from "./options.ts";
import { PassthroughReporter } from "./passthrough-reporter.ts";
import type { DeviceProfile } from "./profile.ts";
import { randomInt } from "./random.ts";
import { CommandResponder } from "./responder.ts";
import type { TaskHandle } from "./scheduler.ts";
import { type CounterName, type Counters, type DeviceState, emptyCounters } from "./stats.ts";
import type { StoredPictureFile } from "./stored-pictures.ts";
import type { TalkSessionInfo } from "./talk-push.ts";
import type { ReceivedCommand, SimulatedDevice } from "./types.ts";

export type { DeviceEnv } from "./device-env.ts";

/** ehome-2.0 §2.1 (SDK): KeepAliveSeconds 0 or absent means 15. */
const DEFAULT_KEEPALIVE_SECONDS = 15;
/** Late KEEPALIVE answers are still matched this far back. */
const MAX_OUTSTANDING_KEEPALIVES = 8;
/** ehome-2.0 §3.2: counters wrap below 2^31. */
const SEQUENCE_LIMIT = 0x7fffffff;
/** REGISTER `NetUnitType` of a device (ehome-2.0 §2.1, A) and `Manufacture` 0 (Hikvision). */
const NET_UNIT_TYPE = "PU";
const MANUFACTURE = "0";

/** FNV-1a of `text` as a number in [0, 1): a stable per-device draw. */
function unitHash(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h / 2 ** 32;
}

/**
 * One simulated EHOME 2.0 device: registration with retry, keepalive at the agent's interval,
 * reboot and upgrade. GPS reports (gps-reporter.ts) and answers to platform requests
 * (responder.ts → handlers/) are its parts. All timing goes through the shared scheduler, all I/O
 * through its link.
 */
export class SimDevice implements SimulatedDevice, DeviceActions, DevicePort {
  readonly counters: Counters = emptyCounters();
  readonly commands: ReceivedCommand[] = [];
  keepAliveSeconds: number | null = null;
  registration: Record<string, string> | null = null;
  state: DeviceState = "stopped";
  silent = false;

  private readonly link: Link;
  private readonly data: DeviceData;
  private readonly gps: GpsReporter;
  private readonly passthrough: PassthroughReporter;
  private readonly alarms: AlarmRaiser;
  private readonly responder: CommandResponder;
  private readonly media: DeviceMedia;
  private sequence: number;
  private closed = false;

  private registerSeq: number | null = null;
  /** KEEPALIVEs sent and not yet answered: Sequence → send time (a slow link answers late). */
  private readonly keepalives = new Map<number, number>();
  private lastKeepalive: number | null = null;
  private keepaliveDueAt = 0;
  private missed = 0;

  private registerTimer: TaskHandle | null = null;
  private keepaliveTimer: TaskHandle | null = null;
  private bootTimer: TaskHandle | null = null;
  private upgradeTimer: TaskHandle | null = null;
  private downloadAbort: AbortController | null = null;
  /** Booted into a downloaded firmware: UPGRADESTATUS SUCCEEDED follows the next registration. */
  private upgradeSucceeded = false;

  constructor(
    private readonly env: DeviceEnv,
    readonly profile: DeviceProfile,
    port: DatagramPort,
    readonly localAddress: { address: string; port: number },
  ) {
    this.sequence = this.randomSequence();
    this.link = createLink({
      port,
      impairments: env.options,
      random: env.random,
      scheduler: env.scheduler,
      count: (name, n) => this.count(name, n),
    });
    this.data = {
      profile,
      config: new Map(),
      sessions: new Map(),
      timeOffsetMs: 0,
      timeZone: "+08:00",
      pendingFirmware: null,
    };
    this.gps = new GpsReporter(env, this, profile, {
      deviceTime: () => this.deviceTime(),
      timeZone: () => this.data.timeZone,
    });
    this.passthrough = new PassthroughReporter(env, this, profile);
    this.alarms = new AlarmRaiser(env, {
      id: profile.id,
      channelCount: profile.channels,
      localAddress,
      count: (name, n) => this.count(name, n),
      nextSequence: () => this.nextSequence(),
      sendRequest: (entry, sequence, params) => this.sendRequest(entry, sequence, params),
      sendAlarm: (entry, sequence, params) => this.sendAlarm(entry, sequence, params),
      deviceTime: () => this.deviceTime(),
      timeDiff: () => {
        const minutes = parseTimeZone(this.data.timeZone) ?? 0;
        return { hours: Math.trunc(minutes / 60), minutes: minutes % 60 };
      },
      pictureServer: () => this.pictureServer(),
      online: () => this.state === "online" && !this.silent && !this.closed,
    });
    this.media = new DeviceMedia({
      scheduler: env.scheduler,
      options: env.options,
      env: env.media,
      deviceId: profile.id,
      localAddress: localAddress.address,
      sessions: this.data.sessions,
      count: (name, n) => this.count(name, n),
    });
    const ctx = {
      media: this.media,
      device: this.data,
      actions: this,
      view: env.view,
      options: env.options,
      random: env.random,
      wallClock: env.wallClock,
    };
    this.responder = new CommandResponder(env, this, this, ctx, this.link, this.commands);
  }

  get id(): string {
    return this.profile.id;
  }
  get index(): number {
    return this.profile.index;
  }
  get encoding() {
    return this.profile.encoding;
  }
  get firmwareVersion(): string {
    return this.profile.firmwareVersion;
  }

  deviceTime(): string {
    return formatDeviceTime(
      deviceLocalNow(this.env.wallClock(), this.data.timeOffsetMs, this.data.timeZone),
    );
  }

  mediaSessions(): MediaSessionInfo[] {
    return this.media.infos();
  }

  /** Voice talk sessions (INVITETALK, issue 8): what the device sent and received. */
  talkSessions(): TalkSessionInfo[] {
    return this.media.talks();
  }

  recordPs(fileName: string): Buffer | undefined {
    const store = this.env.media.records();
    const record = store.byName(fileName, this.profile.channels);
    return record ? store.ps(record) : undefined;
  }

  storedConfig(configCmd: string, ...configParams: Array<string | number>): XmlElement | undefined {
    const [p1, p2, p3, p4] = configParams.map(String);
    const key = configKey(configCmd, {
      configParam1: p1,
      configParam2: p2,
      configParam3: p3,
      configParam4: p4,
    });
    return this.data.config.get(key);
  }

  /**
   * Raises an alarm now (ehome-2.0 §5.1, §8) with its pictures/videos uploaded per `spec.order`.
   * Library API; periodic alarms come from `alarmEverySeconds`.
   */
  raiseAlarm(spec?: AlarmSpec): RaisedAlarm {
    if (this.closed) throw new Error(`device ${this.id} is closed`);
    return this.alarms.raise(spec);
  }

  /** The picture server of the REGISTER reply (ehome-2.0 §2.1); undefined before one. */
  pictureServer(): { host: string; port: number } | undefined {
    const host = this.registration?.pictureServer;
    const port = Number(this.registration?.pictureServerPort);
    if (!host || !Number.isInteger(port) || port <= 0 || port > 65535) return undefined;
    // An agent bound to every interface announces 0.0.0.0: use the address we register with.
    return { host: host === "0.0.0.0" ? this.env.options.agent.host : host, port };
  }

  // ---- lifecycle ------------------------------------------------------------------------------

  /** Schedules the first REGISTER. */
  start(delayMs: number): void {
    if (this.closed || this.state !== "stopped" || this.silent) return;
    this.setState("registering");
    this.registerTimer = this.env.scheduler.after(delayMs, () => this.register());
  }

  goSilent(): void {
    if (this.closed || this.silent) return;
    this.silent = true;
    this.media.closeAll();
    this.cancelTimers();
    this.cancelUpgrade();
    this.setState("stopped");
  }

  resume(): void {
    if (this.closed || !this.silent) return;
    this.silent = false;
    if (this.registration === null || this.keepAliveSeconds === null) {
      this.register();
      return;
    }
    // Carry on as if the outage never happened; an agent that gave up answers 403 (§2.2).
    this.setState("online");
    this.forgetKeepalives();
    this.keepaliveDueAt = this.env.scheduler.now();
    this.keepaliveTick();
    this.gps.start();
    this.passthrough.start();
    this.alarms.start();
  }

  reregister(): void {
    if (this.closed) return;
    this.silent = false;
    this.register();
  }

  close(): void {
    if (this.closed) return;
    this.alarms.close();
    this.media.closeAll();
    this.cancelTimers();
    this.cancelUpgrade();
    this.setState("stopped");
    this.closed = true;
  }

  // ---- DeviceActions (called by command handlers) ---------------------------------------------

  reboot(silenceMs: number): void {
    if (this.closed) return;
    this.cancelTimers();
    this.cancelUpgrade();
    this.count("reboots");
    this.setState("rebooting");
    this.responder.clear();
    this.gps.reset();
    this.passthrough.stop();
    this.alarms.reset();
    this.media.closeAll();
    this.data.sessions.clear();
    this.registerSeq = null;
    this.forgetKeepalives();
    this.bootTimer = this.env.scheduler.after(silenceMs, () => this.boot());
  }

  upgrade(_version: string, afterMs: number): void {
    if (afterMs < 0 || this.closed) return;
    this.cancelUpgrade();
    // Downloading and flashing happen while the device stays online; then it reboots (§6).
    this.upgradeTimer = this.env.scheduler.after(afterMs, () => {
      this.upgradeTimer = null;
      if (this.state === "online" || this.state === "registering") {
        this.reboot(this.env.options.rebootMs);
      }
    });
  }

  upgradeFault(): UpgradeFault {
    const { upgradeFault, upgradeFaultRate, seed } = this.env.options;
    if (upgradeFault === "none") return "none";
    return unitHash(`${seed}:${this.profile.id}`) < upgradeFaultRate ? upgradeFault : "none";
  }

  downloadUpgrade(job: UpgradeJob): void {
    if (this.closed) return;
    this.cancelUpgrade();
    const abort = new AbortController();
    this.downloadAbort = abort;
    this.upgradeStatus("DOWNLOADING", 0);
    const { options } = this.env;
    void downloadFirmware(job.url, {
      expectedSize: job.fileSize,
      interruptAt: options.upgradeInterruptBytes,
      onBytes: (n) => this.count("firmwareBytes", n),
      signal: abort.signal,
      tls: { ca: options.upgradeCa, insecure: options.upgradeInsecure },
    }).then((result) => {
      if (abort.signal.aborted || this.closed) return;
      this.downloadAbort = null;
      const fault = this.upgradeFault();
      const failure = !result.ok
        ? result.reason
        : job.fileSize !== undefined && result.size !== job.fileSize
          ? `size ${result.size}, expected ${job.fileSize}`
          : fault === "bad-checksum" || (job.md5 !== undefined && result.md5 !== job.md5)
            ? "MD5 mismatch"
            : undefined;
      if (failure !== undefined) {
        this.count("upgradeFailures");
        this.upgradeStatus("FAILED", undefined, failure);
        return;
      }
      this.count("firmwareDownloads");
      if (fault === "never-return") {
        this.goSilent();
        return;
      }
      this.upgradeStatus("UPGRADING", 100);
      this.data.pendingFirmware = job.version;
      // Flashing: offline for upgradeMs, then boot into the new version (§6 completion signal).
      if (options.upgradeMs >= 0) this.reboot(options.upgradeMs);
    });
  }

  ptzAction(): void {
    this.count("ptzActions");
  }

  snapshot(channel: number, picId: string): void {
    this.alarms.snapshot(channel, picId);
  }

  uploadStoredPicture(file: StoredPictureFile, picId: string): void {
    this.alarms.uploadStored(file, picId);
  }

  /** ehome-2.0 §8 row UPGRADESTATUS (optional): sent only with the `upgradeStatus` option. */
  private upgradeStatus(status: string, percent?: number, description?: string): void {
    if (!this.env.options.upgradeStatus || this.state !== "online") return;
    const c = this.env.view.commands.upgradeStatus;
    this.sendRequest(
      c,
      this.nextSequence(),
      buildFields(c.params, { deviceId: this.profile.id, percent, status, description }),
    );
  }

  // ---- DevicePort (used by the GPS reporter and the responder) --------------------------------

  count(name: CounterName, n = 1): void {
    this.counters[name] += n;
    this.env.totals[name] += n;
  }

  nextSequence(): number {
    this.sequence = this.sequence >= SEQUENCE_LIMIT ? 1 : this.sequence + 1;
    return this.sequence;
  }

  sendRequest(entry: CommandEntry, sequence: number, params: XmlElement): void {
    // Device requests carry no Method in the 2.0 captures (ehome-2.0 §1.2).
    const encoded = encode(
      {
        kind: "request",
        version: ENVELOPE.deviceVersion,
        sequence,
        command: entry.command,
        params,
      },
      { encoding: this.profile.encoding },
    );
    if (!encoded.ok) {
      this.count("encodeErrors");
      return;
    }
    this.link.send(encoded.bytes, false);
  }

  /** ehome-2.0 §2.1, §5.1: to the announced alarm server when there is one and a socket for it. */
  private sendAlarm(entry: CommandEntry, sequence: number, params: XmlElement): void {
    const host = this.registration?.alarmServerIp;
    const port = Number(this.registration?.alarmServerPort);
    const send = this.env.sendAlarm;
    if (!send || !host || !Number.isInteger(port) || port <= 0 || port > 65535) {
      this.sendRequest(entry, sequence, params);
      return;
    }
    const encoded = encode(
      {
        kind: "request",
        version: ENVELOPE.deviceVersion,
        sequence,
        command: entry.command,
        params,
      },
      { encoding: this.profile.encoding },
    );
    if (!encoded.ok) {
      this.count("encodeErrors");
      return;
    }
    const target = { host: host === "0.0.0.0" ? this.env.options.agent.host : host, port };
    this.count("datagramsSent");
    this.count("bytesSent", encoded.bytes.length);
    send(encoded.bytes, target, sequence, this.id, (m) => {
      if (this.listening()) this.alarms.onResponse(m);
    });
  }

  // ---- inbound --------------------------------------------------------------------------------

  /** A datagram from the agent. */
  receive(bytes: Uint8Array): void {
    this.count("datagramsReceived");
    this.count("bytesReceived", bytes.length);
    if (!this.listening()) return;
    this.link.receive(bytes, (b) => {
      if (this.listening()) this.handle(b);
    });
  }

  private listening(): boolean {
    return !this.closed && !this.silent && this.state !== "rebooting" && this.state !== "stopped";
  }

  private handle(bytes: Uint8Array): void {
    const decoded = decode(bytes, { role: "device", view: this.env.view });
    if (!decoded.ok) {
      this.count("decodeErrors");
      return;
    }
    const m = decoded.message;
    if (m.kind === "response") this.onResponse(m);
    else if (m.kind === "platform-request") this.responder.handle(m);
    else this.count("decodeErrors");
  }

  private onResponse(m: ResponseMessage): void {
    const seq = m.header.sequence;
    if (seq === this.registerSeq) {
      if (m.status === 200) this.registered(m);
      else {
        this.count("registerRefused");
        this.reject(m);
      }
      return;
    }
    const keepaliveSentAt = this.keepalives.get(seq);
    if (keepaliveSentAt !== undefined) {
      this.keepalives.delete(seq);
      if (m.status === 200) {
        this.count("keepalivesAnswered");
        this.missed = 0;
        recordLatency(this.env.latency, this.env.scheduler.now() - keepaliveSentAt);
      } else if (m.status === 403) {
        this.count("keepalive403");
        this.reject(m);
        this.reregisterSoon();
      }
      return;
    }
    if (this.alarms.onResponse(m)) return;
    if (this.passthrough.onResponse(m)) return;
    this.gps.onResponse(m);
  }

  private reject(m: ResponseMessage): void {
    if (!this.env.events.has("rejected")) return;
    this.env.events.emit("rejected", {
      device: this,
      whichCommand: m.whichCommand,
      status: m.status,
      description: m.description,
    });
  }

  // ---- registration and keepalive -------------------------------------------------------------

  /** ehome-2.0 §2.1: REGISTER, retried until answered 200. */
  private register(): void {
    if (this.closed) return;
    this.cancelTimers();
    this.setState("registering");
    const c = this.env.view.commands.register;
    const seq = this.nextSequence();
    this.registerSeq = seq;
    this.forgetKeepalives();
    const params = buildFields(c.params, {
      netUnitType: NET_UNIT_TYPE,
      deviceId: this.profile.id,
      firmwareVersion: this.profile.firmwareVersion,
      localIp: this.localAddress.address,
      localPort: this.localAddress.port,
      devType: this.profile.devType,
      manufacture: MANUFACTURE,
      password: this.profile.password,
    });
    this.count("registerAttempts");
    this.sendRequest(c, seq, params);
    const retry = this.env.options.registerRetryMs * (0.8 + 0.4 * this.env.random());
    this.registerTimer = this.env.scheduler.after(retry, () => this.register());
  }

  /**
   * ehome-2.0 §2.2: the agent does not know us (restarted, or timed us out): register again, a
   * little later, so a whole fleet answered 403 at once does not re-register in one burst.
   */
  private reregisterSoon(): void {
    this.cancelTimers();
    this.setState("registering");
    const spreadMs = Math.min(1000, (this.keepAliveSeconds ?? 1) * 100);
    this.registerTimer = this.env.scheduler.after(spreadMs * this.env.random(), () =>
      this.register(),
    );
  }

  private registered(m: ResponseMessage): void {
    this.registerTimer?.cancel();
    this.registerTimer = null;
    this.registerSeq = null;
    const reply = this.env.view.commands.register.reply;
    this.registration = readFields(m.params, reply) as Record<string, string>;
    const offered = Number(childText(m.params, reply.keepAliveSeconds!));
    const seconds =
      this.env.options.keepAliveSeconds ??
      (Number.isFinite(offered) && offered > 0 ? offered : DEFAULT_KEEPALIVE_SECONDS);
    this.keepAliveSeconds = seconds;
    this.count("registrations");
    this.forgetKeepalives();
    this.setState("online");
    this.keepaliveTimer?.cancel();
    // The first KEEPALIVE goes out somewhere in the first period rather than exactly one period
    // later, so a fleet registered in a burst (start, agent restart) keepalives evenly.
    const firstMs = seconds * 1000 * (0.1 + 0.9 * this.env.random());
    this.keepaliveDueAt = this.env.scheduler.now() + firstMs;
    this.keepaliveTimer = this.env.scheduler.after(firstMs, () => this.keepaliveTick());
    this.gps.start();
    this.passthrough.start();
    this.alarms.start();
    if (this.upgradeSucceeded) {
      this.upgradeSucceeded = false;
      this.upgradeStatus("SUCCEEDED", 100);
    }
    if (this.env.events.has("registered")) {
      this.env.events.emit("registered", { device: this, keepAliveSeconds: seconds });
    }
  }

  /** ehome-2.0 §2.2: KEEPALIVE every KeepAliveSeconds, drift-free. */
  private keepaliveTick(): void {
    this.keepaliveTimer = null;
    if (this.state !== "online" || this.keepAliveSeconds === null) return;
    if (this.lastKeepalive !== null && this.keepalives.has(this.lastKeepalive)) {
      this.count("keepalivesMissed");
      this.missed++;
      const limit = this.env.options.keepaliveMissLimit;
      if (limit > 0 && this.missed >= limit) {
        this.register();
        return;
      }
    }
    const c = this.env.view.commands.keepalive;
    const seq = this.nextSequence();
    const now = this.env.scheduler.now();
    this.lastKeepalive = seq;
    this.keepalives.set(seq, now);
    if (this.keepalives.size > MAX_OUTSTANDING_KEEPALIVES) {
      const oldest = this.keepalives.keys().next().value;
      if (oldest !== undefined) this.keepalives.delete(oldest);
    }
    this.count("keepalivesSent");
    this.sendRequest(c, seq, buildFields(c.params, { deviceId: this.profile.id }));
    this.keepaliveDueAt = Math.max(this.keepaliveDueAt + this.keepAliveSeconds * 1000, now + 1);
    this.keepaliveTimer = this.env.scheduler.after(this.keepaliveDueAt - now, () =>
      this.keepaliveTick(),
    );
  }

  private forgetKeepalives(): void {
    this.lastKeepalive = null;
    this.keepalives.clear();
    this.missed = 0;
  }

  // ---- helpers --------------------------------------------------------------------------------

  private boot(): void {
    this.bootTimer = null;
    const next = this.data.pendingFirmware;
    if (next !== null && next !== this.profile.firmwareVersion) {
      this.profile.firmwareVersion = next;
      this.count("firmwareChanges");
      this.upgradeSucceeded = this.env.options.upgradeDownload;
    }
    this.data.pendingFirmware = null;
    // A rebooted device starts a fresh Sequence counter.
    this.sequence = this.randomSequence();
    this.register();
  }

  private randomSequence(): number {
    return randomInt(this.env.random, 1, 1_000_000);
  }

  /** Session timers; a pending upgrade survives re-registration (cancelUpgrade). */
  private cancelTimers(): void {
    this.registerTimer?.cancel();
    this.keepaliveTimer?.cancel();
    this.bootTimer?.cancel();
    this.registerTimer = null;
    this.keepaliveTimer = null;
    this.bootTimer = null;
    this.gps.stop();
    this.passthrough.stop();
    this.alarms.stop();
  }

  private cancelUpgrade(): void {
    this.upgradeTimer?.cancel();
    this.upgradeTimer = null;
    this.downloadAbort?.abort();
    this.downloadAbort = null;
  }

  private setState(to: DeviceState): void {
    const from = this.state;
    if (from === to) return;
    this.state = to;
    this.env.stateChanged(from, to);
    if (this.env.events.has("state")) this.env.events.emit("state", { device: this, from, to });
  }
}
