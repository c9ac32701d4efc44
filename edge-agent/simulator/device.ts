import {
  type CatalogueView,
  type CommandEntry,
  type CommandId,
  ENVELOPE,
} from "../signalling/catalogue.ts";
import {
  buildFields,
  childText,
  decode,
  encode,
  type PlatformRequestMessage,
  type ResponseMessage,
  readFields,
  type XmlElement,
} from "../signalling/codec/index.ts";
import type { SafeEmitter } from "./emitter.ts";
import { advance, fixOf, type GpsTrack, startTrack } from "./gps.ts";
import { deviceLocalNow, formatDeviceTime } from "./handlers/clock.ts";
import type { DeviceActions, DeviceData, HandlerContext } from "./handlers/context.ts";
import { handlerFor } from "./handlers/index.ts";
import { configKey } from "./handlers/param.ts";
import { badRequest } from "./handlers/status.ts";
import type { HistogramData } from "./histogram.ts";
import { recordLatency } from "./histogram.ts";
import { createLink, type DatagramPort, type Link } from "./link.ts";
import type { ResolvedOptions } from "./options.ts";
import type { DeviceProfile } from "./profile.ts";
import { type Random, randomInt } from "./random.ts";
import type { Scheduler, TaskHandle } from "./scheduler.ts";
import { type CounterName, type Counters, type DeviceState, emptyCounters } from "./stats.ts";
import type { ReceivedCommand, SimulatedDevice, SimulatorEvents } from "./types.ts";

/** What every device shares with the simulator that owns it. */
export interface DeviceEnv {
  readonly options: ResolvedOptions;
  readonly view: CatalogueView;
  readonly scheduler: Scheduler;
  readonly random: Random;
  readonly wallClock: () => number;
  readonly totals: Counters;
  readonly latency: HistogramData;
  readonly events: SafeEmitter<SimulatorEvents>;
  stateChanged(from: DeviceState, to: DeviceState): void;
  onError(err: unknown): void;
}

/** ehome-2.0 §2.1 (SDK): KeepAliveSeconds 0 or absent means 15. */
const DEFAULT_KEEPALIVE_SECONDS = 15;
/** Replies remembered for answering retransmitted platform requests (§3.3 triple send). */
const DEDUPE_WINDOW = 16;
/** Late KEEPALIVE answers are still matched this far back. */
const MAX_OUTSTANDING_KEEPALIVES = 8;
/** ehome-2.0 §3.2: counters wrap below 2^31. */
const SEQUENCE_LIMIT = 0x7fffffff;
/** REGISTER `NetUnitType` of a device (ehome-2.0 §2.1, A) and `Manufacture` 0 (Hikvision). */
const NET_UNIT_TYPE = "PU";
const MANUFACTURE = "0";

interface CachedReply {
  bytes: Uint8Array;
  status: number;
  description: string;
}

interface PendingGps {
  sequence: number;
  params: XmlElement;
}

/**
 * One simulated EHOME 2.0 device: registration with retry, keepalive at the agent's interval, GPS
 * with retransmission, and answers to platform requests (handlers/ does the per-command work).
 * All timing goes through the shared scheduler; all I/O through its link.
 */
export class SimDevice implements SimulatedDevice, DeviceActions {
  readonly counters: Counters = emptyCounters();
  readonly commands: ReceivedCommand[] = [];
  keepAliveSeconds: number | null = null;
  registration: Record<string, string> | null = null;
  state: DeviceState = "stopped";
  silent = false;

  private readonly link: Link;
  private readonly data: DeviceData;
  private readonly ctx: HandlerContext;
  private readonly dedupe = new Map<string, CachedReply>();
  private sequence: number;
  private closed = false;

  private registerSeq: number | null = null;
  /** KEEPALIVEs sent and not yet answered: Sequence → send time (a slow link answers late). */
  private readonly keepalives = new Map<number, number>();
  private keepaliveSeq: number | null = null;
  private keepaliveDueAt = 0;
  private missed = 0;
  private gpsPending: PendingGps | null = null;
  private gpsTrack: GpsTrack | null = null;

  private registerTimer: TaskHandle | null = null;
  private keepaliveTimer: TaskHandle | null = null;
  private gpsTimer: TaskHandle | null = null;
  private gpsResendTimer: TaskHandle | null = null;
  private bootTimer: TaskHandle | null = null;
  private upgradeTimer: TaskHandle | null = null;

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
    this.ctx = {
      device: this.data,
      actions: this,
      view: env.view,
      options: env.options,
      random: env.random,
      wallClock: env.wallClock,
    };
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

  storedConfig(configCmd: string, ...configParams: Array<string | number>): XmlElement | undefined {
    const [p1, p2, p3, p4] = configParams.map(String);
    return this.data.config.get(
      configKey(configCmd, {
        configParam1: p1,
        configParam2: p2,
        configParam3: p3,
        configParam4: p4,
      }),
    );
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
    this.keepaliveSeq = null;
    this.keepalives.clear();
    this.missed = 0;
    this.keepaliveDueAt = this.env.scheduler.now();
    this.keepaliveTick();
    this.scheduleGps();
  }

  reregister(): void {
    if (this.closed) return;
    this.silent = false;
    this.register();
  }

  close(): void {
    if (this.closed) return;
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
    this.dedupe.clear();
    this.data.sessions.clear();
    this.gpsPending = null;
    this.registerSeq = null;
    this.keepaliveSeq = null;
    this.keepalives.clear();
    this.bootTimer = this.env.scheduler.after(silenceMs, () => this.boot());
  }

  upgrade(_version: string, afterMs: number): void {
    if (afterMs < 0 || this.closed) return;
    this.upgradeTimer?.cancel();
    // Downloading and flashing happen while the device stays online; then it reboots (§6).
    this.upgradeTimer = this.env.scheduler.after(afterMs, () => {
      this.upgradeTimer = null;
      if (this.state === "online" || this.state === "registering") {
        this.reboot(this.env.options.rebootMs);
      }
    });
  }

  ptzAction(): void {
    this.count("ptzActions");
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
    else if (m.kind === "platform-request") this.onPlatformRequest(m);
    else this.count("decodeErrors");
  }

  private onResponse(m: ResponseMessage): void {
    const seq = m.header.sequence;
    const c = this.env.view.commands;
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
        // ehome-2.0 §2.2: the agent does not know us (restarted, or timed us out): register again,
        // a little later so a whole fleet answered 403 at once does not re-register in one burst.
        this.count("keepalive403");
        this.reject(m);
        this.cancelTimers();
        this.setState("registering");
        const spread = Math.min(1000, (this.keepAliveSeconds ?? 1) * 100);
        this.registerTimer = this.env.scheduler.after(spread * this.env.random(), () =>
          this.register(),
        );
      }
      return;
    }
    if (this.gpsPending && seq === this.gpsPending.sequence && sameCommand(m, c.gps)) {
      this.count("gpsAnswered");
      this.gpsPending = null;
      this.gpsResendTimer?.cancel();
      this.gpsResendTimer = null;
    }
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

  private onPlatformRequest(m: PlatformRequestMessage): void {
    this.count("commandsReceived");
    const key = `${m.header.sequence}|${m.command.toUpperCase()}`;
    const cached = this.dedupe.get(key);
    if (cached) {
      // ehome-2.0 §3.3: the platform may send a request up to three times with one Sequence:
      // answer every copy, act once.
      this.count("commandDuplicates");
      this.sendReply(cached);
      this.logCommand(m, true, cached.status, cached.description);
      return;
    }
    const handler = handlerFor(m.commandId);
    let reply: ReturnType<NonNullable<typeof handler>>;
    if (!handler) {
      this.count("unknownCommands");
      reply = badRequest(`unknown command ${m.command}`);
    } else {
      try {
        reply = handler(this.ctx, m);
      } catch (err) {
        this.env.onError(err);
        reply = { status: 500, description: "internal error" };
      }
    }
    // Known commands are answered with the catalogue's spelling, unknown ones echoed as received.
    const whichCommand = m.commandId
      ? this.env.view.commands[m.commandId as CommandId].command
      : m.command;
    const encoded = this.encodeReply(m, whichCommand, reply);
    if (this.dedupe.size >= DEDUPE_WINDOW) {
      const oldest = this.dedupe.keys().next().value;
      if (oldest !== undefined) this.dedupe.delete(oldest);
    }
    this.dedupe.set(key, encoded);
    this.sendReply(encoded);
    this.logCommand(m, false, encoded.status, encoded.description);
    if (encoded.status === reply.status) reply.afterReply?.();
  }

  private encodeReply(
    m: PlatformRequestMessage,
    whichCommand: string,
    reply: { status: number; description: string; params?: XmlElement },
  ): CachedReply {
    const message = {
      kind: "response" as const,
      version: ENVELOPE.deviceVersion,
      sequence: m.header.sequence,
      whichCommand,
      status: reply.status,
      description: reply.description,
      params: reply.params ?? {},
    };
    const opts = { encoding: this.profile.encoding, maxBytes: this.env.options.maxReplyBytes };
    const encoded = encode(message, opts);
    if (encoded.ok)
      return { bytes: encoded.bytes, status: reply.status, description: reply.description };
    // E.g. a stored config holding characters GB2312 lacks: answer, but as a failure.
    this.count("encodeErrors");
    const fallback = { ...message, status: 500, description: "reply not encodable", params: {} };
    const again = encode(fallback, opts);
    return {
      bytes: again.ok ? again.bytes : new Uint8Array(0),
      status: fallback.status,
      description: fallback.description,
    };
  }

  private sendReply(reply: CachedReply): void {
    this.count("commandsAnswered");
    if (reply.status !== 200) this.count("commandsRefused");
    if (reply.bytes.length > 0) this.link.send(reply.bytes, true);
  }

  private logCommand(
    m: PlatformRequestMessage,
    duplicate: boolean,
    status: number,
    description: string,
  ): void {
    const size = this.env.options.commandLogSize;
    const hasListener = this.env.events.has("command");
    if (size === 0 && !hasListener) return;
    const entry: ReceivedCommand = {
      at: this.env.wallClock(),
      sequence: m.header.sequence,
      command: m.command,
      commandId: m.commandId,
      params: m.params,
      duplicate,
      status,
      description,
    };
    if (size > 0) {
      this.commands.push(entry);
      if (this.commands.length > size) this.commands.shift();
    }
    if (hasListener) this.env.events.emit("command", { device: this, command: entry });
  }

  // ---- outbound requests ----------------------------------------------------------------------

  private nextSequence(): number {
    this.sequence = this.sequence >= SEQUENCE_LIMIT ? 1 : this.sequence + 1;
    return this.sequence;
  }

  private randomSequence(): number {
    return randomInt(this.env.random, 1, 1_000_000);
  }

  private sendRequest(entry: CommandEntry, sequence: number, params: XmlElement): void {
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

  /** ehome-2.0 §2.1: REGISTER, retried until answered 200. */
  private register(): void {
    if (this.closed) return;
    this.cancelTimers();
    this.setState("registering");
    const c = this.env.view.commands.register;
    const seq = this.nextSequence();
    this.registerSeq = seq;
    this.keepaliveSeq = null;
    this.keepalives.clear();
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
    this.missed = 0;
    this.keepaliveSeq = null;
    this.keepalives.clear();
    this.setState("online");
    this.keepaliveTimer?.cancel();
    // The first KEEPALIVE goes out somewhere in the first period rather than exactly one period
    // later, so a fleet registered in a burst (start, agent restart) keepalives evenly, not in bursts.
    const firstMs = seconds * 1000 * (0.1 + 0.9 * this.env.random());
    this.keepaliveDueAt = this.env.scheduler.now() + firstMs;
    this.keepaliveTimer = this.env.scheduler.after(firstMs, () => this.keepaliveTick());
    this.scheduleGps();
    if (this.env.events.has("registered")) {
      this.env.events.emit("registered", { device: this, keepAliveSeconds: seconds });
    }
  }

  /** ehome-2.0 §2.2: KEEPALIVE every KeepAliveSeconds, drift-free. */
  private keepaliveTick(): void {
    this.keepaliveTimer = null;
    if (this.state !== "online" || this.keepAliveSeconds === null) return;
    if (this.keepaliveSeq !== null && this.keepalives.has(this.keepaliveSeq)) {
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
    this.keepaliveSeq = seq;
    this.keepalives.set(seq, now);
    if (this.keepalives.size > MAX_OUTSTANDING_KEEPALIVES) {
      const oldest = this.keepalives.keys().next().value;
      if (oldest !== undefined) this.keepalives.delete(oldest);
    }
    this.count("keepalivesSent");
    this.sendRequest(c, seq, buildFields(c.params, { deviceId: this.profile.id }));
    const periodMs = this.keepAliveSeconds * 1000;
    this.keepaliveDueAt = Math.max(this.keepaliveDueAt + periodMs, now + 1);
    this.keepaliveTimer = this.env.scheduler.after(this.keepaliveDueAt - now, () =>
      this.keepaliveTick(),
    );
  }

  // ---- GPS ------------------------------------------------------------------------------------

  private scheduleGps(): void {
    const seconds = this.env.options.gpsIntervalSeconds;
    if (seconds <= 0 || this.state !== "online") return;
    this.gpsTimer?.cancel();
    // The first report lands somewhere in the first period, so a fleet's reports are spread out.
    this.gpsTimer = this.env.scheduler.after(seconds * 1000 * this.env.random(), () =>
      this.gpsTick(),
    );
    if (this.gpsPending) this.scheduleGpsResend();
  }

  private gpsTick(): void {
    const seconds = this.env.options.gpsIntervalSeconds;
    this.gpsTimer = this.env.scheduler.after(seconds * 1000, () => this.gpsTick());
    if (this.state !== "online") return;
    const random = this.env.random;
    if (this.gpsTrack === null) this.gpsTrack = startTrack(this.profile.index, random);
    else advance(this.gpsTrack, seconds, random);
    // A report still unanswered keeps being resent; the new position waits for the next period.
    if (this.gpsPending) return;
    const c = this.env.view.commands.gps;
    const fix = fixOf(this.gpsTrack, random);
    const sequence = this.nextSequence();
    const params = buildFields(c.params, {
      deviceId: this.profile.id,
      time: this.deviceTime(),
      ...fix,
      retransFlag: 0,
      needsResponse: 1,
      timeZone: this.data.timeZone,
    });
    this.gpsPending = { sequence, params };
    this.count("gpsSent");
    this.sendRequest(c, sequence, params);
    this.scheduleGpsResend();
  }

  /** ehome-2.0 §2.9 (C): NeedsResponse reports are resent with RetransFlag 1 until answered. */
  private scheduleGpsResend(): void {
    this.gpsResendTimer?.cancel();
    this.gpsResendTimer = this.env.scheduler.after(this.env.options.gpsRetryMs, () => {
      this.gpsResendTimer = null;
      const pending = this.gpsPending;
      if (!pending || this.state !== "online") return;
      const c = this.env.view.commands.gps;
      pending.params[c.params.retransFlag!] = "1";
      this.count("gpsResent");
      this.sendRequest(c, pending.sequence, pending.params);
      this.scheduleGpsResend();
    });
  }

  // ---- helpers --------------------------------------------------------------------------------

  private boot(): void {
    this.bootTimer = null;
    const next = this.data.pendingFirmware;
    if (next !== null && next !== this.profile.firmwareVersion) {
      this.profile.firmwareVersion = next;
      this.count("firmwareChanges");
    }
    this.data.pendingFirmware = null;
    // A rebooted device starts a fresh Sequence counter.
    this.sequence = this.randomSequence();
    this.register();
  }

  /** Session timers; a pending upgrade survives re-registration (cancelUpgrade). */
  private cancelTimers(): void {
    for (const t of [
      this.registerTimer,
      this.keepaliveTimer,
      this.gpsTimer,
      this.gpsResendTimer,
      this.bootTimer,
    ]) {
      t?.cancel();
    }
    this.registerTimer = null;
    this.keepaliveTimer = null;
    this.gpsTimer = null;
    this.gpsResendTimer = null;
    this.bootTimer = null;
  }

  private cancelUpgrade(): void {
    this.upgradeTimer?.cancel();
    this.upgradeTimer = null;
  }

  private setState(to: DeviceState): void {
    const from = this.state;
    if (from === to) return;
    this.state = to;
    this.env.stateChanged(from, to);
    if (this.env.events.has("state")) this.env.events.emit("state", { device: this, from, to });
  }

  private count(name: CounterName, n = 1): void {
    this.counters[name] += n;
    this.env.totals[name] += n;
  }
}

function sameCommand(m: ResponseMessage, entry: CommandEntry): boolean {
  return m.whichCommand.toUpperCase() === entry.command.toUpperCase();
}
