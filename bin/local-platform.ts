import { randomBytes } from "node:crypto";
import { createEdgeAgent, type EdgeAgent } from "../edge-agent/agent.ts";
import { createAlarmParts } from "../edge-agent/alarms/index.ts";
import type { DynamoSender } from "../edge-agent/cloud/aws.ts";
import {
  type CloudAdapters,
  type CloudAdaptersConfig,
  cloudConfigFromEnv,
  createCloudAdapters,
} from "../edge-agent/cloud/index.ts";
import type { AgentConfig } from "../edge-agent/config.ts";
import {
  createDeviceDataReporter,
  type DeviceDataReporter,
} from "../edge-agent/device-data/reporter.ts";
import { createDeviceHttpServer, type DeviceHttpServer } from "../edge-agent/http/device-http.ts";
import { createDeviceHttpsServer } from "../edge-agent/http/device-tls.ts";
import type { Logger } from "../edge-agent/log.ts";
import {
  type AgentMedia,
  type AgentMediaConfig,
  type AgentMediaDeps,
  createAgentMedia,
  mediaConfigFromEnv,
} from "../edge-agent/media/index.ts";
import type { ReportSink } from "../edge-agent/ports.ts";
import { createUdpTransport } from "../edge-agent/signalling/server.ts";
import {
  type AgentUpgrades,
  createAgentUpgrades,
  upgradesConfigFromEnv,
} from "../edge-agent/upgrades/index.ts";
import { createAlarmsHandlerFromEnv } from "../functions/alarms/handler.ts";
import { createApp } from "../functions/api/app.ts";
import type { ApiConfig } from "../functions/api/config.ts";
import { createApiDepsFromEnv } from "../functions/api/handler.ts";
import { createCommandResultsHandlerFromEnv } from "../functions/command-results/handler.ts";
import { createDeviceDataHandlerFromEnv } from "../functions/device-data/handler.ts";
import { createMediaHandlerFromEnv } from "../functions/media/handler.ts";
import { createRegistryHandlerFromEnv } from "../functions/registry/handler.ts";
import {
  createUpgradesFunctionFromEnv,
  type UpgradesFunction,
} from "../functions/upgrades/handler.ts";
import { ENV } from "../lib/contracts/env.ts";
import {
  type LocalBackends,
  type LocalBackendsConfig,
  startLocalBackends,
} from "../lib/local/backends.ts";
import { type LocalHttpApi, startHttpApi } from "../lib/local/http-api.ts";
import {
  createSqsEventSource,
  eventSourceConfigFor,
  type SqsEventSource,
  type SqsHandler,
} from "../lib/local/sqs-event-source.ts";

/**
 * The whole platform in one process on the embedded backends (architecture §5): DynamoDB Local
 * and fauxqs, the registry, command-results, alarms, upgrades and media functions behind SQS pollers with their event
 * source settings, the api function behind the bearer-token server, and the edge agent with its
 * cloud adapters. `npm start` (bin/local.ts) runs it from the environment; end-to-end tests run
 * it with short timers. No process.env is read or written here.
 *
 *   const platform = createLocalPlatform(options, { log });
 *   await platform.start();   // rejects only when the backends cannot start
 *   platform.missing;         // parts that did not start, with the reason
 *   await platform.close();   // reverse start order; may be called while start() runs
 */

export interface LocalPlatformOptions {
  backends: LocalBackendsConfig;
  api: {
    port: number;
    host: string;
    token: string;
    /** Overrides of the api function's settings (tests shorten command deadlines). */
    config?: Partial<ApiConfig>;
  };
  /** The agent's configuration; `false` runs no agent here (a test runs it as a child process). */
  agent: AgentConfig | false;
  /**
   * More agents in this process against the same backends (multi-agent: each with its own id,
   * ports, command queue and heartbeat), started after `agent`. Default none.
   */
  extraAgents?: readonly AgentConfig[];
  /**
   * How often the registry function's agent-lost sweep runs (EventBridge runs it every minute on
   * AWS; `AGENT_LOST_AFTER_SECONDS` in `env` sets the deadline). Default 15 000; 0 disables it.
   */
  agentSweepIntervalMs?: number;
  /** Tuning of the agent's cloud adapters (defaults otherwise). */
  cloud?: Pick<CloudAdaptersConfig, "events" | "commands" | "provisioning" | "heartbeat">;
  /**
   * How often the alarms function's deadline sweep runs (EventBridge runs it every minute on
   * AWS). Default 60 000; tests shorten it.
   */
  alarmSweepIntervalMs?: number;
  /**
   * Interval of the upgrade engine's tick (EventBridge every minute on AWS). Default 5000 ms;
   * 0 disables the tick (tests drive it themselves through `upgrades`).
   */
  upgradesTickMs?: number;
  /** Environment the functions read, under the backends' variables. Default none. */
  env?: Readonly<Record<string, string | undefined>>;
  /**
   * Batches of the device-events queue handled at once by the registry (pollers on the queue).
   * Lambda's event source runs several concurrent batches per function; one local poller could
   * not keep up with a register storm (issue 7): the writes of one batch leave DynamoDB Local
   * idle while the next batch is received. Default 3.
   */
  registryConcurrency?: number;
}

export interface LocalPlatformDeps {
  log: Logger;
}

/** One edge agent of the platform, with its cloud adapters and device HTTP server. */
export interface LocalAgent {
  readonly agentId: string;
  readonly agent: EdgeAgent;
  readonly cloud: CloudAdapters;
  readonly deviceHttp: DeviceHttpServer | undefined;
  /** The same routes over TLS, when `EHOME_HTTPS_CERT_FILE`/`EHOME_HTTPS_KEY_FILE` are set. */
  readonly deviceHttps: DeviceHttpServer | undefined;
  /** Clean stop: `offline/agent-shutdown` for its devices, heartbeat record deleted. */
  close(): Promise<void>;
  /**
   * Stops it as a crash would look from the cloud: from now on none of its events reach the queue
   * and its heartbeat record stays behind (the agent-lost sweep's case). Its sockets are closed.
   */
  kill(): Promise<void>;
}

export interface LocalPlatform {
  /** Starts every part in order. Rejects (having closed what started) if the backends fail. */
  start(): Promise<void>;
  readonly backends: LocalBackends | undefined;
  readonly api: LocalHttpApi | undefined;
  readonly agent: EdgeAgent | undefined;
  readonly cloud: CloudAdapters | undefined;
  /** The upgrades function (engine tick + upgrade-events consumer), when it started. */
  readonly upgrades: UpgradesFunction | undefined;
  /** The agent's device-facing HTTP port (health check; uploads and firmware later). */
  readonly deviceHttp: DeviceHttpServer | undefined;
  /** The agent's device-facing HTTPS port, when a certificate is configured (`EHOME_HTTPS_*`). */
  readonly deviceHttps: DeviceHttpServer | undefined;
  /** Every agent that started: `agent` first (when it started), then `extraAgents`. */
  readonly agents: readonly LocalAgent[];
  /** What the functions and an agent process read: `options.env` plus the backends' variables. */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Parts that are not running, each with the reason. */
  readonly missing: readonly string[];
  /** Stops every part in reverse start order; idempotent. */
  close(reason?: string): Promise<void>;
}

type Stop = { name: string; close: () => Promise<void> };

/**
 * The agent's media module (edge-agent/media/index.ts) with its viewer server bound. The local
 * runner shares the machine with other runs and tests: when the configured viewer port is taken,
 * it binds a free one instead (the heartbeat announces the bound port, so stream URLs follow).
 */
async function startAgentMedia(
  config: AgentMediaConfig,
  deps: AgentMediaDeps,
): Promise<{ media: AgentMedia; viewerPort: number | undefined }> {
  const attempt = async (c: AgentMediaConfig) => {
    const media = createAgentMedia(c, deps);
    try {
      const { viewerPort } = await media.start();
      return { media, viewerPort };
    } catch (err) {
      await media.close();
      throw err;
    }
  };
  try {
    return await attempt(config);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EADDRINUSE" || config.viewerPort === 0) throw err;
    deps.log?.warn("viewer port taken; binding a free one", { port: config.viewerPort });
    return attempt({ ...config, viewerPort: 0 });
  }
}

export function createLocalPlatform(
  options: LocalPlatformOptions,
  deps: LocalPlatformDeps,
): LocalPlatform {
  const { log } = deps;
  const stops: Stop[] = [];
  const missing: string[] = [];
  let env: Readonly<Record<string, string | undefined>> = { ...options.env };
  let backends: LocalBackends | undefined;
  let api: LocalHttpApi | undefined;
  let agent: EdgeAgent | undefined;
  let cloud: CloudAdapters | undefined;
  let deviceHttp: DeviceHttpServer | undefined;
  let deviceHttps: DeviceHttpServer | undefined;
  let upgrades: UpgradesFunction | undefined;
  const agents: LocalAgent[] = [];
  let starting: Promise<void> | undefined;
  let stopped = false;
  let closing: Promise<void> | undefined;

  const startPollers = (b: LocalBackends): void => {
    const { queues } = b.resources;
    const pollers: [
      keyof typeof queues,
      () => { handler: SqsHandler; close(): void | Promise<void> },
      number?,
    ][] = [
      ["deviceEvents", () => startRegistry(), Math.max(1, options.registryConcurrency ?? 3)],
      ["commandResults", () => createCommandResultsHandlerFromEnv(env)],
      ["alarmEvents", () => startAlarmsFunction()],
      ["upgradeEvents", () => startUpgrades()],
      ["deviceData", () => createDeviceDataHandlerFromEnv(env)],
      ["mediaEvents", () => createMediaHandlerFromEnv(env)],
    ];
    for (const [key, build, concurrency = 1] of pollers) {
      const name = queues[key].definition.consumer.handler;
      try {
        const fn = build();
        // One function, `concurrency` pollers: as many of its batches in flight at once.
        const sources: SqsEventSource[] = Array.from({ length: concurrency }, () =>
          createSqsEventSource(eventSourceConfigFor(queues[key], b.endpoints.region), {
            sqs: b.clients.sqs,
            handler: fn.handler,
            log: log.child({ function: name }),
          }),
        );
        stops.push({
          name,
          close: async () => {
            await Promise.all(sources.map((source) => source.close()));
            await fn.close();
          },
        });
      } catch (err) {
        missing.push(`${name} function: ${(err as Error).message}`);
      }
    }
  };

  /**
   * The registry function: its queue handler for the poller, and its scheduled agent-lost sweep
   * on a timer (the local stand-in for the EventBridge rule), never overlapping itself.
   */
  const startRegistry = (): { handler: SqsHandler; close(): Promise<void> } => {
    const fn = createRegistryHandlerFromEnv(env);
    const intervalMs = options.agentSweepIntervalMs ?? 15_000;
    const sweepLog = log.child({ function: "registry", trigger: "schedule" });
    let running: Promise<void> | undefined;
    const timer =
      intervalMs > 0
        ? setInterval(() => {
            if (running) return;
            running = fn
              .sweep()
              .then(() => undefined)
              .catch((err: unknown) => sweepLog.error("agent sweep failed", { err }))
              .finally(() => {
                running = undefined;
              });
          }, intervalMs)
        : undefined;
    timer?.unref();
    return {
      handler: fn.handler,
      async close() {
        if (timer) clearInterval(timer);
        await running;
        fn.close();
      },
    };
  };

  /**
   * The alarms function: its queue handler for the poller, and its scheduled deadline sweep on a
   * timer (the local stand-in for the EventBridge rule), stopped with it.
   */
  const startAlarmsFunction = (): { handler: SqsHandler; close(): void } => {
    const fn = createAlarmsHandlerFromEnv(env);
    const sweepLog = log.child({ function: "alarms", trigger: "schedule" });
    let sweeping = false;
    const timer = setInterval(() => {
      if (sweeping) return;
      sweeping = true;
      fn.sweep()
        .catch((err: unknown) => sweepLog.error("alarm sweep failed", { err }))
        .finally(() => {
          sweeping = false;
        });
    }, options.alarmSweepIntervalMs ?? 60_000);
    timer.unref();
    return {
      handler: fn.batch,
      close: () => {
        clearInterval(timer);
        fn.close();
      },
    };
  };

  /**
   * The upgrades function: its queue handler for the poller, plus the scheduler stand-in that
   * runs the engine's tick every `upgradesTickMs` (never overlapping itself).
   */
  const startUpgrades = (): { handler: SqsHandler; close(): Promise<void> } => {
    const fn = createUpgradesFunctionFromEnv(env);
    const tickMs = options.upgradesTickMs ?? 5000;
    const tickLog = log.child({ function: "upgrades" });
    let timer: ReturnType<typeof setTimeout> | undefined;
    let running: Promise<void> | undefined;
    let closed = false;
    const schedule = () => {
      if (closed || tickMs <= 0) return;
      timer = setTimeout(() => {
        running = fn
          .tick()
          .then(() => undefined)
          .catch((err: unknown) => tickLog.error("upgrade tick failed", { err }))
          .finally(schedule);
      }, tickMs);
      timer.unref?.();
    };
    schedule();
    upgrades = fn;
    return {
      handler: fn.handler,
      async close() {
        closed = true;
        if (timer) clearTimeout(timer);
        // A tick in progress finishes before its clients are released.
        await running;
        fn.close();
      },
    };
  };

  const startApi = async (): Promise<void> => {
    const { port, host, token } = options.api;
    try {
      const fnDeps = createApiDepsFromEnv(env);
      const app = createApp(
        options.api.config
          ? { ...fnDeps, config: { ...fnDeps.config, ...options.api.config } }
          : fnDeps,
      );
      const server = await startHttpApi(
        { port, host, token },
        { app, log: log.child({ function: "api" }) },
      ).catch((err: unknown) => {
        fnDeps.close();
        throw err;
      });
      api = server;
      stops.push({
        name: "api",
        close: async () => {
          await server.close();
          fnDeps.close();
        },
      });
    } catch (err) {
      missing.push(`HTTP API on port ${port}: ${(err as Error).message}`);
    }
  };

  const startAgent = async (
    b: LocalBackends,
    agentConfig: AgentConfig,
  ): Promise<LocalAgent | undefined> => {
    // Until kill(): afterwards no event leaves this agent and its DynamoDB calls fail, so its
    // heartbeat record is not deleted (as after a crash).
    let severed = false;
    const dynamodb: DynamoSender = {
      send: ((command: Parameters<DynamoSender["send"]>[0]) =>
        severed
          ? Promise.reject(new Error(`agent ${agentConfig.agentId} was killed`))
          : b.clients.dynamodb.send(command)) as DynamoSender["send"],
    };
    const own: Stop[] = [];
    // Reports other than alarms, upgrade progress, GPS and passthrough (STATUS) have no consumer.
    const otherReports: ReportSink = {
      report(report) {
        log.info("device report (not forwarded)", {
          kind: report.kind,
          deviceId: report.deviceId,
        });
      },
    };
    const logOnly = {
      emit(event: { type: string; deviceId: string }) {
        log.info("alarm event (no alarm-events queue)", event);
      },
    };
    let a: EdgeAgent | undefined;
    let parts: ReturnType<typeof createAlarmParts> | undefined;
    let c: CloudAdapters | undefined;
    let upgrades: AgentUpgrades | undefined;
    let deviceData: DeviceDataReporter | undefined;
    let media: AgentMedia | undefined;
    try {
      const cloudConfig = cloudConfigFromEnv(env, agentConfig);
      if (!cloudConfig) throw new Error("the local resources did not reach the environment");
      // Media (issue 4): built before the cloud adapters, because the heartbeat announces the
      // viewer port the API puts in stream URLs, known once bound. The agent and the media-events
      // sink come later, so both are reached through `late`.
      const late: { agent?: EdgeAgent; cloud?: CloudAdapters } = {};
      const started = await startAgentMedia(mediaConfigFromEnv(env, agentConfig), {
        send: (deviceId, command, values) =>
          late.agent
            ? late.agent.commands.send(deviceId, command, values)
            : Promise.reject(new Error("the agent is not running")),
        device: (deviceId) => {
          const session = late.agent?.sessions.get(deviceId);
          return session && { host: session.host, view: session.view };
        },
        s3: () => b.clients.s3,
        events: {
          emit: (event) => {
            if (severed) return;
            const sink = late.cloud?.mediaEvents;
            if (sink) return sink.emit(event);
            log.info("stream event (no media-events queue)", { ...event });
          },
        },
        log: log.child({ part: "media" }),
      });
      media = started.media;
      if (started.viewerPort !== undefined) cloudConfig.viewerPort = started.viewerPort;
      c = createCloudAdapters(
        { ...cloudConfig, ...options.cloud },
        // The backends' S3 client carries the local credentials and path-style addressing.
        {
          sqs: b.clients.sqs,
          dynamodb,
          s3: b.clients.s3,
          log: log.child({ part: "cloud" }),
        },
      );
      late.cloud = c;
      if (!c.alarmEvents) missing.push("alarm forwarding: no alarm-events queue");
      if (!c.media) missing.push("picture server: no media bucket");
      // GPS positions and device-initiated passthrough to the device-data queue (issue 8).
      if (!c.deviceData) missing.push("GPS and passthrough forwarding: no device-data queue");
      deviceData = createDeviceDataReporter(
        { agentId: agentConfig.agentId },
        {
          sink: c.deviceData ?? logOnly,
          next: otherReports,
          viewOf: (id) => late.agent?.sessions.get(id)?.view,
          log: log.child({ part: "device-data", agentId: agentConfig.agentId }),
        },
      );
      // Alarms to the alarm-events queue; POST /pictures and /videos into the media bucket.
      parts = createAlarmParts(agentConfig, {
        sink: c.alarmEvents ?? logOnly,
        reports: deviceData,
        media: c.media,
        sessions: () => late.agent?.sessions,
        log: log.child({ part: "agent", agentId: agentConfig.agentId }),
      });
      // Upgrade progress (bytes served by /fw/, UPGRADESTATUS) to the upgrade-events queue.
      const upgradeSink = c.upgradeEvents;
      if (!upgradeSink) log.info("upgrade progress is only logged: no upgrade-events queue");
      upgrades = createAgentUpgrades(upgradesConfigFromEnv(env, agentConfig.agentId), {
        s3: () => b.clients.s3,
        sink: upgradeSink ?? {
          emit: (e) => log.info("upgrade progress (not forwarded)", { ...e }),
        },
        sessions: () => a?.sessions,
        log: log.child({ part: "upgrades" }),
      });
      if (upgrades.disabled) missing.push(upgrades.disabled);
      const progress = upgrades.progress;
      const cloudEvents = c.events;
      const alarmReports = parts.reports;
      a = createEdgeAgent(agentConfig, {
        transport: createUdpTransport({
          host: agentConfig.host,
          port: agentConfig.signalPort,
          recvBufferSize: agentConfig.signalRecvBufferBytes,
          log: log.child({ part: "signalling", agentId: agentConfig.agentId }),
        }),
        alarmTransport: createUdpTransport({ host: agentConfig.host, port: agentConfig.alarmPort }),
        events: {
          emit: (event) => (severed ? undefined : cloudEvents.emit(event)),
        },
        provisioning: c.provisioning,
        reports: {
          report: (r) => {
            if (r.kind === "upgradeStatus") return progress.report(r);
            if (r.kind === "alarm") progress.report(r); // AlarmType 18 fails an upgrade
            return alarmReports.report(r);
          },
        },
        upgrades: {
          sending: (deviceId, token) => progress.sending(deviceId, token),
          // The device HTTP port may be bound to port 0 (tests): announce the bound one.
          publicPort: () => http?.address().port,
        },
        media: () => media?.manager,
        // Voice talk (issue 8 item 2): `talk-start` / `talk-stop` from POST /devices/{id}/talk.
        talk: () => media?.talk,
        log: log.child({ part: "agent", agentId: agentConfig.agentId }),
      });
      late.agent = a;
      // Command queue and heartbeat first: the API can route to the agent from then on (retried
      // in the background, without holding the agent back, while SQS or DynamoDB is unreachable).
      await c.start(a);
      await a.start();
      const owned = { agent: a, cloud: c, upgrades, deviceData, media };
      own.push({ name: "agent cloud adapters", close: () => owned.cloud.close() });
      // After the agent, before the adapters: held positions reach the queue.
      own.push({ name: "agent device data", close: async () => owned.deviceData.close() });
      // After the agent, before the adapters: pending progress reaches the queue.
      own.push({ name: "agent upgrades", close: async () => owned.upgrades.close() });
      own.push({ name: "agent", close: () => owned.agent.close() });
      // Streams first (BYESTREAM needs the agent's command sender; the last stream events reach
      // the running adapters).
      own.push({ name: "agent media", close: () => owned.media.close() });
    } catch (err) {
      await media?.close();
      await a?.close();
      deviceData?.close();
      upgrades?.close();
      await c?.close();
      missing.push(
        `edge agent (UDP ${agentConfig.host}:${agentConfig.signalPort}, alarms ${agentConfig.alarmPort}): ${(err as Error).message}`,
      );
      return undefined;
    }
    const running = a;
    const runningCloud = c;
    let http: DeviceHttpServer | undefined;
    const deviceRoutes = {
      health: () => ({
        ok: true,
        agentId: agentConfig.agentId,
        sessions: running.sessions.size,
        // Outage buffers (issue 7): reported, never a reason to be unhealthy.
        ...(c ? { cloud: c.health() } : {}),
      }),
      routes: [...(parts?.routes ?? []), ...(upgrades?.routes ?? [])],
    };
    const h: DeviceHttpServer = createDeviceHttpServer(
      // Uploads of up to EHOME_MAX_VIDEO_BYTES need more than the default 30 s.
      { host: agentConfig.host, port: agentConfig.httpPort, requestTimeoutMs: 10 * 60_000 },
      deviceRoutes,
    );
    try {
      const bound = await h.start();
      running.httpPortBound(bound.port);
      own.push({ name: "device HTTP", close: () => h.close() });
      http = h;
    } catch (err) {
      missing.push(
        `device HTTP (TCP ${agentConfig.host}:${agentConfig.httpPort}): ${(err as Error).message}`,
      );
    }
    // The same routes over TLS when a certificate is configured (issue 8 item 7): firmware URLs
    // are then https (EHOME_HTTPS_*), so something must serve them.
    let https: DeviceHttpServer | undefined;
    try {
      const s = createDeviceHttpsServer(agentConfig, deviceRoutes);
      if (s) {
        await s.start();
        own.push({ name: "device HTTPS", close: () => s.close() });
        https = s;
      }
    } catch (err) {
      missing.push(
        `device HTTPS (TCP ${agentConfig.host}:${agentConfig.httpsListen?.port}): ${(err as Error).message}`,
      );
    }
    let closing: Promise<void> | undefined;
    const close = () => {
      closing ??= (async () => {
        for (const part of own.reverse()) {
          try {
            await part.close();
          } catch (err) {
            log.error("stop failed", { part: part.name, agentId: agentConfig.agentId, err });
          }
        }
      })();
      return closing;
    };
    const handle: LocalAgent = {
      agentId: agentConfig.agentId,
      agent: running,
      cloud: runningCloud,
      deviceHttp: http,
      deviceHttps: https,
      close,
      kill() {
        severed = true;
        return close();
      },
    };
    stops.push({ name: `agent ${agentConfig.agentId}`, close });
    agents.push(handle);
    return handle;
  };

  const run = async (): Promise<void> => {
    // 1. Backends: fatal if they cannot start.
    const b = await startLocalBackends(options.backends, { log: log.child({ part: "backends" }) });
    stops.push({ name: "backends", close: b.close });
    backends = b;
    // Functions read their resources, region, dummy credentials and AWS_ENDPOINT_URL_* from the
    // environment, as on Lambda.
    // The firmware download token key (issue 6): the engine mints with it, the agent verifies.
    // Generated per run unless given; on AWS it comes from Secrets Manager.
    // Likewise the viewer token key (issue 4): the api mints stream URLs, the agent verifies.
    // An agent process started with these variables runs beside the in-process agent, which
    // holds the configured viewer port, so unless told otherwise it binds a free one.
    env = {
      [ENV.FIRMWARE_TOKEN_KEY]: randomBytes(32).toString("hex"),
      [ENV.STREAM_TOKEN_KEY]: randomBytes(32).toString("hex"),
      [ENV.EHOME_VIEWER_PORT]: "0",
      ...options.env,
      ...b.env,
    };
    if (stopped) return;
    // 2. SQS consumers, with the event source settings of their queues.
    startPollers(b);
    // 3. The api function behind the local stand-in for API Gateway.
    await startApi();
    if (stopped) return;
    // 4. The edge agent with its cloud adapters: device events to SQS, provisioning from the
    // devices table, its own command queue and heartbeat (so API commands reach it).
    if (options.agent) {
      const first = await startAgent(b, options.agent);
      if (first) {
        agent = first.agent;
        cloud = first.cloud;
        deviceHttp = first.deviceHttp;
        deviceHttps = first.deviceHttps;
      }
    }
    for (const extra of options.extraAgents ?? []) {
      if (stopped) return;
      await startAgent(b, extra);
    }
  };

  const platform: LocalPlatform = {
    start() {
      if (starting) throw new Error("platform already started");
      if (stopped) throw new Error("platform is closed");
      starting = run().catch(async (err: unknown) => {
        // close() called meanwhile waits for this rejection, then stops what started.
        if (!closing) await platform.close("start failed");
        throw err;
      });
      return starting;
    },
    get backends() {
      return backends;
    },
    get api() {
      return api;
    },
    get agent() {
      return agent;
    },
    get cloud() {
      return cloud;
    },
    get deviceHttp() {
      return deviceHttp;
    },
    get deviceHttps() {
      return deviceHttps;
    },
    get upgrades() {
      return upgrades;
    },
    get agents() {
      return agents;
    },
    get env() {
      return env;
    },
    get missing() {
      return missing;
    },
    close(reason = "close") {
      closing ??= (async () => {
        stopped = true;
        log.info("stopping", { reason });
        // A part being started is finished first, so it is stopped with the others.
        await starting?.catch(() => {});
        // Reverse start order: the agent's shutdown events still reach a running queue.
        for (const part of stops.reverse()) {
          try {
            await part.close();
          } catch (err) {
            log.error("stop failed", { part: part.name, err });
          }
        }
        log.info("stopped");
      })();
      return closing;
    },
  };
  return platform;
}
