import { randomUUID } from "node:crypto";
import type { AgentCommand, CommandResult } from "../lib/contracts/commands.ts";
import type { DeviceEvent, DeviceEventInput, OfflineReason } from "../lib/contracts/events.ts";
import type { AgentConfig } from "./config.ts";
import { createRateLimiter, type Logger, type LogLevel, silentLogger } from "./log.ts";
import type { MediaCommandTarget, TalkCommandTarget } from "./media/media-commands.ts";
import { type AgentMetrics, createAgentMetrics } from "./metrics.ts";
import type {
  DatagramTransport,
  DeviceReport,
  EventSink,
  Peer,
  ProvisioningSource,
  ReportSink,
  TraceRecorder,
} from "./ports.ts";
import { createAddressLimiter } from "./signalling/address-limiter.ts";
import {
  type CatalogueView,
  type CommandId,
  DEFAULT_VIEW,
  ENVELOPE,
} from "./signalling/catalogue.ts";
import { decode, encode, type Message } from "./signalling/codec/index.ts";
import {
  type CommandOutcome,
  type CommandSender,
  type CommandValues,
  createCommandSender,
  type SendOptions,
} from "./signalling/command-sender.ts";
import { executeCommand } from "./signalling/commands.ts";
import { createDialect, type Dialect } from "./signalling/dialect.ts";
import { dispatch, type HandlerContext } from "./signalling/handlers/index.ts";
import { createLearner } from "./signalling/learn.ts";
import {
  createSessionStore,
  type DeviceSession,
  type ReadonlySession,
} from "./signalling/sessions.ts";

/**
 * The edge agent's signalling core, built by a factory and separate from the code that binds
 * sockets (main.ts), so tests drive it through an in-memory transport (style: Hono/Fastify).
 */

export type EdgeAgentConfig = Pick<
  AgentConfig,
  | "agentId"
  | "publicHost"
  | "alarmPort"
  | "httpPort"
  | "keepAliveSeconds"
  | "offlineAfterMissed"
  | "autoProvision"
  | "maxDatagramBytes"
  | "maxOutboundBytes"
  | "commandResendMs"
  | "commandMaxSends"
  | "commandTimeoutMs"
  | "lastSeenFlushSeconds"
  | "ntpHost"
  | "ntpPort"
  | "alarmServerType"
  | "pictureServerType"
  | "learnDevices"
> &
  // Abuse limits (issue 7); unset: no limit.
  Partial<
    Pick<
      AgentConfig,
      | "signalRatePerAddress"
      | "signalBurstPerAddress"
      | "maxSessionsPerAddress"
      | "addressBinding"
      | "requirePassword"
    >
  > &
  Partial<Pick<AgentConfig, "httpsUrl">>;

export interface EdgeAgentDeps {
  transport: DatagramTransport;
  /**
   * The alarm port (`EHOME_ALARM_PORT`, ehome-2.0 §5.1/§8): ALARMs arriving here take the same
   * path as those on the signalling port (answered on this socket, de-duplicated per device,
   * handed to `reports`). Other messages on it are counted and ignored.
   */
  alarmTransport?: DatagramTransport;
  events: EventSink;
  /** Default: nobody listed (auto-provisioning decides). */
  provisioning?: ProvisioningSource;
  /** Default: the catalogue with no overrides. */
  dialect?: Dialect;
  trace?: TraceRecorder;
  reports?: ReportSink;
  /** Told before a firmware-update's UPDATE goes out (edge-agent/upgrades/progress.ts). */
  upgrades?: {
    sending(deviceId: string, token: string): void;
    /** Port of the `/fw/` URL when it differs from `httpPort` (bound to port 0). */
    publicPort?(): number | undefined;
  };
  /**
   * The media module (edge-agent/media/manager.ts) that runs `record-search` and `stream-*`
   * commands; a getter because the manager is built with this agent's command sender. Without it
   * those commands fail `MEDIA_UNAVAILABLE`.
   */
  media?: () => MediaCommandTarget | undefined;
  /** Voice talk (`media.talk` of createAgentMedia): runs `talk-start` / `talk-stop`. */
  talk?: () => TalkCommandTarget | undefined;
  log?: Logger;
  /** Event ids; default crypto.randomUUID. */
  uuid?: () => string;
  /** Start of each device's Sequence counter; default Math.random. */
  random?: () => number;
  /** Interval of the per-source rate-limited logs. Default 60 s. */
  logIntervalMs?: number;
  /** Devices learned concurrently after registration. Default 256. */
  learnConcurrency?: number;
}

export interface SessionsApi {
  get(deviceId: string): ReadonlySession | undefined;
  readonly size: number;
  list(): ReadonlySession[];
}

export interface CommandsApi {
  send<C extends CommandId>(
    deviceId: string,
    commandId: C,
    values?: CommandValues<C>,
    options?: SendOptions,
  ): Promise<CommandOutcome>;
  execute(command: AgentCommand): Promise<CommandResult>;
}

export interface EdgeAgent {
  start(): Promise<void>;
  /** Idempotent: offline events (`agent-shutdown`), pending commands settled, socket closed. */
  close(): Promise<void>;
  signalAddress(): Peer;
  /** The bound alarm port; undefined without an alarm transport. */
  alarmAddress(): Peer | undefined;
  /**
   * The device HTTP port once bound: with `httpPort` configured as 0 (a free port), REGISTER
   * replies announce this one as `PictureServerPort` (ehome-2.0 §2.1).
   */
  httpPortBound(port: number): void;
  readonly sessions: SessionsApi;
  readonly commands: CommandsApi;
  /** Removes an online device now (e.g. deprovisioned); false when it was not online here. */
  dropDevice(deviceId: string, reason: OfflineReason): boolean;
  /** Looks the device up again and drops it (`deprovisioned`) if it may no longer register. */
  provisioningChanged(deviceId: string): Promise<boolean>;
  metrics(): Record<string, number>;
}

export function createEdgeAgent(config: EdgeAgentConfig, deps: EdgeAgentDeps): EdgeAgent {
  const log = deps.log ?? silentLogger;
  const metrics: AgentMetrics = createAgentMetrics();
  const c = metrics.c;
  const dialect = deps.dialect ?? createDialect();
  const dialectActive = dialect.profiles.length > 0;
  const provisioning: ProvisioningSource = deps.provisioning ?? { lookup: () => undefined };
  const uuid = deps.uuid ?? randomUUID;
  const limiter = createRateLimiter({ intervalMs: deps.logIntervalMs ?? 60_000 });
  const { transport, trace } = deps;
  const inflightEmits = new Set<Promise<void>>();
  let lastVersion = 0;
  let started = false;
  let closed = false;
  let closing: Promise<void> | undefined;
  let flushTimer: NodeJS.Timeout | undefined;

  const logLimited = (
    key: string,
    level: LogLevel,
    msg: string,
    fields?: Record<string, unknown>,
  ): void => {
    if (!log.enabled(level)) return;
    const { allowed, suppressed } = limiter.allow(key);
    if (!allowed) return;
    log[level === "silent" ? "debug" : level](msg, suppressed ? { ...fields, suppressed } : fields);
  };

  // The one place that writes to a socket (style: one small write path that counts errors).
  const writeVia =
    (t: DatagramTransport) =>
    (bytes: Uint8Array, host: string, port: number): void => {
      try {
        t.send(bytes, host, port);
        c.datagrams_out++;
        if (trace) trace.record("out", host, port, bytes);
      } catch (err) {
        c.send_errors++;
        logLimited("send-error", "warn", "signalling send failed", { err });
      }
    };
  const write = writeVia(transport);

  // Per-device monotonic: a single agent-wide counter of µs since the epoch is strictly increasing
  // for every device at once, survives restarts while clocks do not go backwards, and needs no
  // per-device memory.
  const nextVersion = (now: number): number => {
    lastVersion = Math.max(now * 1000, lastVersion + 1);
    return lastVersion;
  };

  const emit = (input: DeviceEventInput): void => {
    const now = Date.now();
    const event = {
      ...input,
      eventId: uuid(),
      agentId: config.agentId,
      version: nextVersion(now),
      at: new Date(now).toISOString(),
    } as DeviceEvent;
    c.events_emitted++;
    const failed = (err: unknown) => {
      c.event_sink_errors++;
      logLimited("event-sink", "error", "event sink failed", { err, type: event.type });
    };
    try {
      const r = deps.events.emit(event);
      if (r instanceof Promise) {
        const p = r.catch(failed).finally(() => inflightEmits.delete(p));
        inflightEmits.add(p);
      }
    } catch (err) {
      failed(err);
    }
  };

  const report = (r: DeviceReport): void => {
    if (!deps.reports) return;
    const failed = (err: unknown) => {
      c.report_sink_errors++;
      logLimited("report-sink", "error", "report sink failed", { err, kind: r.kind });
    };
    try {
      const p = deps.reports.report(r);
      if (p instanceof Promise) p.catch(failed);
    } catch (err) {
      failed(err);
    }
  };

  const gone = (session: DeviceSession, reason: OfflineReason): void => {
    emit({ type: "offline", deviceId: session.deviceId, reason });
    sender.deviceGone(session.deviceId);
    // Its media streams stop now, not when their TCP closes or the idle timer fires.
    try {
      deps.media?.()?.deviceGone?.(session.deviceId, reason);
    } catch (err) {
      log.error("stopping the streams of a device gone offline failed", {
        err,
        deviceId: session.deviceId,
      });
    }
  };

  // Per-source-address datagram limit, checked before decoding (issue 7).
  const signalLimiter = createAddressLimiter({
    ratePerSecond: config.signalRatePerAddress ?? 0,
    burst: config.signalBurstPerAddress ?? 1,
  });

  const sessions = createSessionStore({
    maxPerAddress: config.maxSessionsPerAddress ?? 0,
    timeoutMs: config.keepAliveSeconds * config.offlineAfterMissed * 1000,
    onExpire: (s) => {
      c.sessions_expired++;
      gone(s, "keepalive-timeout");
    },
  });

  const sender: CommandSender = createCommandSender(config, { sessions, write, metrics });

  const learner = createLearner(
    { concurrency: deps.learnConcurrency ?? 256 },
    { sender, sessions, emit, metrics, log, now: Date.now },
  );

  // What REGISTER replies announce; an alarm port configured as 0 is announced as bound.
  const announced = { ...config };
  const ctx: HandlerContext = {
    config: announced,
    sessions,
    sender,
    metrics,
    log,
    dialect,
    provisioning,
    registering: new Set(),
    random: deps.random ?? Math.random,
    emit,
    report,
    logLimited,
    learn: (s) => {
      if (config.learnDevices) learner.learn(s);
    },
    respond: (host, port, encoding, r) => respondVia(write, host, port, encoding, r),
  };

  function respondVia(
    out: (bytes: Uint8Array, host: string, port: number) => void,
    host: string,
    port: number,
    encoding: Parameters<HandlerContext["respond"]>[2],
    r: Parameters<HandlerContext["respond"]>[3],
  ): void {
    const encoded = encode(
      {
        kind: "response",
        version: ENVELOPE.platformVersion,
        sequence: r.sequence,
        method: r.method,
        whichCommand: r.whichCommand,
        status: r.status,
        description: r.description,
        params: r.params,
      },
      { encoding, maxBytes: config.maxOutboundBytes },
    );
    if (!encoded.ok) {
      if (encoded.error.code === "MESSAGE_TOO_LARGE") c.outbound_too_large++;
      // Keyed by the error code, not the command name: the name is the sender's text (a hostile
      // datagram may carry one the encoding cannot), so it must not mint rate-limiter keys.
      logLimited(`encode:${encoded.error.code}`, "warn", "cannot encode a response", {
        error: encoded.error,
        whichCommand: r.whichCommand.slice(0, 64),
      });
      return;
    }
    out(encoded.bytes, host, port);
  }

  const alarmTransport = deps.alarmTransport;
  const writeAlarm = alarmTransport && writeVia(alarmTransport);
  const alarmCtx: HandlerContext | undefined = writeAlarm && {
    ...ctx,
    respond: (host, port, encoding, r) => respondVia(writeAlarm, host, port, encoding, r),
  };

  /** Decodes with the view of the device at this address (only when a dialect is loaded). */
  const decodeDatagram = (bytes: Buffer, host: string, port: number) => {
    let view: CatalogueView = DEFAULT_VIEW;
    if (dialectActive) view = sessions.byAddress(host, port)?.view ?? DEFAULT_VIEW;
    const opts = { role: "platform" as const, view, maxBytes: config.maxDatagramBytes };
    const result = decode(bytes, opts);
    if (!dialectActive || !result.ok) return { result, view };
    const m: Message = result.message;
    if (m.kind !== "device-request" || m.commandId !== null) return { result, view };
    // Not recognised with this view: try the view of the named device (its address changed), then
    // the profiles that rename REGISTER.
    const candidates: CatalogueView[] = [];
    const byId = m.deviceId === null ? undefined : sessions.get(m.deviceId)?.view;
    if (byId && byId !== view) candidates.push(byId);
    candidates.push(...dialect.registerViews());
    for (const v of candidates) {
      const again = decode(bytes, { ...opts, view: v });
      if (again.ok && !(again.message.kind === "device-request" && !again.message.commandId)) {
        return { result: again, view: v };
      }
    }
    return { result, view };
  };

  const onDatagram = (bytes: Buffer, host: string, port: number): void => {
    if (closed) return;
    const now = Date.now();
    if (!signalLimiter.allow(host, now)) return; // counted by the limiter
    c.datagrams_in++;
    if (trace) trace.record("in", host, port, bytes);
    if (bytes.length > config.maxDatagramBytes) {
      c.datagrams_oversize++;
      logLimited(`oversize:${host}`, "warn", "oversize datagram refused", {
        peer: host,
        bytes: bytes.length,
        max: config.maxDatagramBytes,
      });
      return;
    }
    const { result, view } = decodeDatagram(bytes, host, port);
    if (!result.ok) {
      c.decode_errors++;
      logLimited(`decode:${host}`, "warn", "undecodable datagram", {
        peer: host,
        code: result.error.code,
        reason: result.error.message,
      });
      return;
    }
    try {
      dispatch(ctx, result.message, host, port, now, view);
    } catch (err) {
      c.handler_errors++;
      logLimited("handler-error", "error", "handler failed", { err, kind: result.message.kind });
    }
  };

  // ehome-2.0 §8 Alarm report: "UDP 7332; also accepted on 7660". Only ALARM is served here.
  const onAlarmDatagram = (bytes: Buffer, host: string, port: number): void => {
    if (closed || !alarmCtx) return;
    if (!signalLimiter.allow(host, Date.now())) return;
    c.datagrams_in++;
    c.alarm_port_datagrams++;
    if (trace) trace.record("in", host, port, bytes);
    if (bytes.length > config.maxDatagramBytes) {
      c.datagrams_oversize++;
      return;
    }
    const { result, view } = decodeDatagram(bytes, host, port);
    if (!result.ok) {
      c.decode_errors++;
      logLimited(`decode:${host}`, "warn", "undecodable datagram on the alarm port", {
        peer: host,
        code: result.error.code,
        reason: result.error.message,
      });
      return;
    }
    if (result.message.kind !== "alarm") {
      c.alarm_port_ignored++;
      return;
    }
    try {
      dispatch(alarmCtx, result.message, host, port, Date.now(), view);
    } catch (err) {
      c.handler_errors++;
      logLimited("handler-error", "error", "handler failed", { err, kind: "alarm" });
    }
  };

  // Coalesced last-seen (architecture §2: heartbeats stay at the edge): at most one event per
  // device per interval, only for devices heard from since their previous flush.
  const flushLastSeen = (): void => {
    for (const s of sessions.values()) {
      if (s.lastSeen <= s.lastSeenFlushed) continue;
      s.lastSeenFlushed = s.lastSeen;
      c.last_seen_flushed++;
      emit({
        type: "last-seen",
        deviceId: s.deviceId,
        lastSeen: new Date(s.lastSeen).toISOString(),
      });
    }
  };

  const dropDevice = (deviceId: string, reason: OfflineReason): boolean => {
    const s = sessions.get(deviceId);
    if (!s || !sessions.remove(s)) return false;
    c.sessions_dropped++;
    gone(s, reason);
    return true;
  };

  const sessionsApi: SessionsApi = {
    get: (id) => sessions.get(id),
    get size() {
      return sessions.size;
    },
    list: () => [...sessions.values()],
  };

  return {
    async start() {
      if (started) throw new Error("agent already started");
      if (closed) throw new Error("agent is closed");
      started = true;
      sessions.start();
      await transport.start({
        onDatagram,
        onSendError: (err) => {
          c.send_errors++;
          logLimited("send-error", "warn", "signalling send failed", { err });
        },
      });
      const alarmBound = await alarmTransport?.start({
        onDatagram: onAlarmDatagram,
        onSendError: (err) => {
          c.send_errors++;
          logLimited("send-error", "warn", "alarm port send failed", { err });
        },
      });
      if (alarmBound && announced.alarmPort === 0) announced.alarmPort = alarmBound.port;
      flushTimer = setInterval(flushLastSeen, config.lastSeenFlushSeconds * 1000);
      flushTimer.unref();
    },

    close() {
      closing ??= (async () => {
        closed = true;
        if (flushTimer) clearInterval(flushTimer);
        flushTimer = undefined;
        sessions.close();
        signalLimiter.close();
        learner.close();
        for (const s of [...sessions.values()]) {
          sessions.remove(s);
          gone(s, "agent-shutdown");
        }
        sender.close();
        ctx.registering.clear();
        await transport.close();
        await alarmTransport?.close();
        await trace?.close();
        await Promise.allSettled([...inflightEmits]);
      })();
      return closing;
    },

    signalAddress: () => transport.address(),
    alarmAddress: () => (alarmTransport && started ? alarmTransport.address() : undefined),
    httpPortBound(port) {
      if (config.httpPort === 0) announced.httpPort = port;
    },
    sessions: sessionsApi,
    commands: {
      send: (deviceId, commandId, values, options) =>
        sender.send(deviceId, commandId, values, options),
      execute: (command) =>
        executeCommand(command, {
          sender,
          sessions,
          agentId: config.agentId,
          // firmware-update URLs point at this agent's device HTTP port (issue 6).
          firmware: {
            host: config.publicHost,
            port: deps.upgrades?.publicPort?.() ?? config.httpPort,
            sending: (deviceId, token) => deps.upgrades?.sending(deviceId, token),
            https: config.httpsUrl,
          },
          media: deps.media?.(),
          talk: deps.talk?.(),
        }),
    },
    dropDevice,
    async provisioningChanged(deviceId) {
      if (!sessions.get(deviceId)) return false;
      const d = await provisioning.lookup(deviceId);
      const allowed = d ? d.allowed : config.autoProvision;
      return allowed ? false : dropDevice(deviceId, "deprovisioned");
    },
    metrics: () => ({
      ...metrics.snapshot(),
      sessions: sessions.size,
      commands_pending: sender.pending,
      learn_backlog: learner.backlog,
      trace_dropped: trace?.dropped ?? 0,
      signal_rate_limited: signalLimiter.counters().limited,
      signal_limiter_addresses: signalLimiter.counters().addresses,
      signal_limiter_evicted: signalLimiter.counters().evicted,
      registers_address_cap: sessions.capRefused,
    }),
  };
}
