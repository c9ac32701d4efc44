import { S3Client } from "@aws-sdk/client-s3";
import type { AlarmQueueMessage } from "../lib/contracts/alarms.ts";
import type { DeviceEvent } from "../lib/contracts/events.ts";
import type { DeviceDataMessage } from "../lib/contracts/passthrough.ts";
import { createEdgeAgent, type EdgeAgent } from "./agent.ts";
import { createAlarmParts } from "./alarms/index.ts";
import {
  type CloudAdaptersConfig,
  cloudConfigFromEnv,
  createCloudAdapters,
} from "./cloud/index.ts";
import { resolvePublicHost } from "./cloud/public-address.ts";
import { ConfigError, loadConfig } from "./config.ts";
import { createDeviceDataReporter } from "./device-data/reporter.ts";
import { createDeviceHttpServer } from "./http/device-http.ts";
import { createDeviceHttpsServer } from "./http/device-tls.ts";
import { createLogger, type Logger } from "./log.ts";
import { type AgentMediaConfig, createAgentMedia, mediaConfigFromEnv } from "./media/index.ts";
import type { EventSink, ProvisioningSource, ReportSink, TraceRecorder } from "./ports.ts";
import { createDialect, type Dialect, loadDialectFile } from "./signalling/dialect.ts";
import { createMemoryProvisioningSource, loadProvisioningFile } from "./signalling/provisioning.ts";
import { createUdpTransport } from "./signalling/server.ts";
import { createTraceWriter } from "./signalling/trace.ts";
import {
  type AgentUpgradesConfig,
  createAgentUpgrades,
  upgradesConfigFromEnv,
} from "./upgrades/index.ts";

/**
 * Composition root of `npm run agent` (architecture §3): the only place that reads process.env and
 * binds sockets. Stand-alone (no cloud variables): events and reports are JSON lines on stdout,
 * provisioning from EHOME_PROVISIONING_FILE. With the cloud variables the stacks set
 * (edge-agent/cloud, docs/agent-cloud.md): events to SQS, provisioning from DynamoDB, commands from
 * the agent's own queue. Logs go to stderr.
 */

function jsonLinesSink(
  write: (line: string) => void,
): EventSink & EventSink<AlarmQueueMessage> & EventSink<DeviceDataMessage> & ReportSink {
  return {
    emit(event: DeviceEvent | AlarmQueueMessage | DeviceDataMessage) {
      write(JSON.stringify({ event }));
    },
    report(report) {
      write(JSON.stringify({ report }));
    },
  };
}

async function main(): Promise<void> {
  let config: ReturnType<typeof loadConfig>;
  let cloudConfig: CloudAdaptersConfig | undefined;
  let mediaConfig: AgentMediaConfig;
  try {
    config = loadConfig(process.env);
    // Validated now, built again below with the announced address: a bad variable must not wait
    // for the discovery's budget to be reported.
    cloudConfigFromEnv(process.env, config);
    mediaConfigFromEnv(process.env, config);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`edge agent: invalid configuration: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const log: Logger = createLogger({
    level: config.logLevel,
    bindings: { agentId: config.agentId },
  });
  // The address announced to devices and viewers: on ECS the task's own public IP
  // (EHOME_PUBLIC_HOST_DISCOVERY=ecs), resolved before anything that announces it is built.
  // A failed discovery falls back to EHOME_PUBLIC_HOST (edge-agent/cloud/public-address.ts).
  const publicHost = await resolvePublicHost(config, process.env, {
    log: log.child({ part: "public-address" }),
  });
  config = publicHost.config;
  try {
    cloudConfig = cloudConfigFromEnv(process.env, config);
    mediaConfig = mediaConfigFromEnv(process.env, config);
    // The heartbeat tells the API where stream URLs point (a port bound as 0 is not known yet).
    if (cloudConfig && mediaConfig.tokenKey && config.viewerPort !== 0) {
      cloudConfig.viewerPort = config.viewerPort;
    }
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`edge agent: invalid configuration: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }

  const fail = (variable: string, err: unknown): never => {
    process.stderr.write(
      `edge agent: invalid configuration: ${variable}: ${(err as Error).message}\n`,
    );
    process.exit(2);
  };
  const cloud = cloudConfig
    ? createCloudAdapters(cloudConfig, { log: log.child({ part: "cloud" }) })
    : undefined;
  let provisioning: ProvisioningSource = cloud?.provisioning ?? createMemoryProvisioningSource();
  if (config.provisioningFile && cloud) {
    log.warn("EHOME_PROVISIONING_FILE is ignored: provisioning comes from the devices table");
  } else if (config.provisioningFile) {
    provisioning = await loadProvisioningFile(config.provisioningFile).catch((err: unknown) =>
      fail("EHOME_PROVISIONING_FILE", err),
    );
  }
  let dialect: Dialect = createDialect();
  if (config.dialectFile) {
    dialect = await loadDialectFile(config.dialectFile).catch((err: unknown) =>
      fail("EHOME_DIALECT_FILE", err),
    );
  }

  let trace: TraceRecorder | undefined;
  if (config.traceFile) {
    trace = createTraceWriter({ file: config.traceFile, maxBytes: config.traceMaxBytes, log });
  }

  const sink = jsonLinesSink((line) => process.stdout.write(`${line}\n`));
  let agentRef: EdgeAgent | undefined;
  // GPS positions (batched per device) and device-initiated TRANSPARENT (issue 8) to the
  // device-data queue; JSON lines stand-alone. Other reports continue to stdout.
  const deviceData = createDeviceDataReporter(
    { agentId: config.agentId },
    {
      sink: cloud?.deviceData ?? sink,
      next: sink,
      viewOf: (id) => agentRef?.sessions.get(id)?.view,
      log: log.child({ part: "device-data" }),
    },
  );
  // Alarms and uploads (ehome-2.0 §5, §8): to the alarm-events queue and the media bucket with
  // the cloud; JSON lines and no upload routes stand-alone.
  const alarms = createAlarmParts(config, {
    sink: cloud?.alarmEvents ?? sink,
    reports: deviceData,
    media: cloud?.media,
    sessions: () => agentRef?.sessions,
    log,
  });
  if (!cloud?.media) log.warn("no media bucket: POST /pictures and /videos are not served");
  // Firmware upgrades (issue 6): /fw/ streams from the media bucket; progress to the
  // upgrade-events queue (or stdout stand-alone).
  let upgradesConfig: AgentUpgradesConfig;
  try {
    upgradesConfig = upgradesConfigFromEnv(process.env, config.agentId);
  } catch (err) {
    // A ConfigError names the variable itself.
    process.stderr.write(`edge agent: invalid configuration: ${(err as Error).message}\n`);
    process.exit(2);
  }
  const s3Endpoint = process.env.AWS_ENDPOINT_URL_S3 ?? process.env.AWS_ENDPOINT_URL;
  let s3: S3Client | undefined;
  const upgrades = createAgentUpgrades(upgradesConfig, {
    s3: () => {
      s3 ??= new S3Client(s3Endpoint ? { endpoint: s3Endpoint, forcePathStyle: true } : {});
      return s3;
    },
    sink: cloud?.upgradeEvents ?? {
      emit: (upgrade) => process.stdout.write(`${JSON.stringify({ upgrade })}\n`),
    },
    sessions: () => agent.sessions,
    log: log.child({ part: "upgrades" }),
  });
  if (upgrades.disabled) log.warn(upgrades.disabled);
  // Media (issue 4): port pool, streams, viewers on EHOME_VIEWER_PORT, downloads to the bucket;
  // stream events to the media-events queue (or stdout stand-alone).
  const media = createAgentMedia(mediaConfig, {
    send: (deviceId, command, values) => agent.commands.send(deviceId, command, values),
    device: (deviceId) => {
      const s = agentRef?.sessions.get(deviceId);
      return s && { host: s.host, view: s.view };
    },
    s3:
      cloud?.media?.s3 ??
      (() => {
        s3 ??= new S3Client(s3Endpoint ? { endpoint: s3Endpoint, forcePathStyle: true } : {});
        return s3;
      }),
    events: cloud?.mediaEvents ?? {
      emit: (stream) => void process.stdout.write(`${JSON.stringify({ stream })}\n`),
    },
    ...(trace ? { trace } : {}),
    log: log.child({ part: "media" }),
  });
  if (media.disabled) log.warn(media.disabled);
  if (!mediaConfig.bucket) log.warn("downloads off: MEDIA_BUCKET not set");
  const agent = createEdgeAgent(config, {
    transport: createUdpTransport({
      host: config.host,
      port: config.signalPort,
      recvBufferSize: config.signalRecvBufferBytes,
      log: log.child({ part: "signalling" }),
    }),
    alarmTransport: createUdpTransport({ host: config.host, port: config.alarmPort }),
    events: cloud?.events ?? sink,
    reports: {
      // UPGRADESTATUS to the upgrade progress tracker; alarms (and, behind them, every other
      // report) to the alarm reporter.
      report: (r) => {
        if (r.kind === "upgradeStatus") return upgrades.progress.report(r);
        if (r.kind === "alarm") upgrades.progress.report(r); // AlarmType 18 fails an upgrade
        return alarms.reports.report(r);
      },
    },
    upgrades: upgrades.progress,
    media: () => media.manager,
    talk: () => media.talk,
    provisioning,
    dialect,
    trace,
    log,
  });

  agentRef = agent;

  const http = createDeviceHttpServer(
    // Uploads of up to EHOME_MAX_VIDEO_BYTES need more than the default 30 s.
    { host: config.host, port: config.httpPort, requestTimeoutMs: 10 * 60_000 },
    {
      // The outage buffers (issue 7) are reported, not judged: an agent is healthy while SQS is not.
      health: () => ({
        ok: !stopping,
        agentId: config.agentId,
        sessions: agent.sessions.size,
        // What devices and viewers are told, and why (a failed discovery shows its error here).
        publicHost: publicHost.status,
        ...(cloud ? { cloud: cloud.health() } : {}),
      }),
      routes: [...alarms.routes, ...upgrades.routes],
    },
  );
  // The same routes over TLS when a certificate is configured (issue 8 item 7): firmware URLs
  // are then https (EHOME_HTTPS_*).
  let https: ReturnType<typeof createDeviceHttpsServer>;
  try {
    https = createDeviceHttpsServer(config, {
      health: () => ({ ok: !stopping, agentId: config.agentId }),
      routes: [...alarms.routes, ...upgrades.routes],
    });
  } catch (err) {
    // A ConfigError names the variable itself.
    process.stderr.write(`edge agent: invalid configuration: ${(err as Error).message}\n`);
    process.exit(2);
  }

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info("shutting down", { signal, sessions: agent.sessions.size });
    http
      .close()
      .then(() => https?.close())
      // Streams first: BYESTREAM needs the agent's command sender.
      .then(() => media.close())
      .then(() => agent.close())
      .then(() => deviceData.close())
      .then(() => upgrades.close())
      .then(() => cloud?.close())
      .then(() => s3?.destroy())
      .then(
        () => {
          log.info("stopped", {
            metrics: {
              ...agent.metrics(),
              ...alarms.counters(),
              ...deviceData.counters(),
              ...upgrades.metrics(),
              ...media.metrics(),
              ...cloud?.metrics(),
            },
          });
          process.exit(0);
        },
        (err: unknown) => {
          log.error("shutdown failed", { err });
          process.exit(1);
        },
      );
  };
  process.on("SIGINT", () => stop("SIGINT"));
  process.on("SIGTERM", () => stop("SIGTERM"));

  try {
    // Queue and heartbeat first: the API may route commands here from then on. With the cloud
    // unreachable this resolves anyway and retries in the background, so the device ports still
    // open (a restart during an outage leaves no device without an agent).
    await cloud?.start(agent);
  } catch (err) {
    log.error("cannot start the cloud adapters", { err });
    await cloud?.close();
    process.exit(1);
  }
  try {
    await agent.start();
  } catch (err) {
    log.error("cannot bind the signalling or the alarm port", {
      err,
      variables: ["EHOME_SIGNAL_PORT", "EHOME_ALARM_PORT"],
      host: config.host,
      ports: [config.signalPort, config.alarmPort],
    });
    await agent.close();
    await cloud?.close();
    process.exit(1);
  }
  try {
    await http.start();
  } catch (err) {
    log.error("cannot bind the device HTTP port", {
      err,
      variable: "EHOME_HTTP_PORT",
      host: config.host,
      port: config.httpPort,
    });
    await agent.close();
    await cloud?.close();
    process.exit(1);
  }
  try {
    await https?.start();
  } catch (err) {
    log.error("cannot start the device HTTPS port", {
      err,
      variable: "EHOME_HTTPS_PORT",
      host: config.host,
      port: config.httpsListen?.port,
    });
    await http.close();
    await agent.close();
    await cloud?.close();
    process.exit(1);
  }
  agent.httpPortBound(http.address().port);
  let viewerPort: number | undefined;
  try {
    ({ viewerPort } = await media.start());
  } catch (err) {
    log.error("cannot bind the viewer port", {
      err,
      variable: "EHOME_VIEWER_PORT",
      host: config.host,
      port: config.viewerPort,
    });
    await http.close();
    await media.close();
    await agent.close();
    await cloud?.close();
    process.exit(1);
  }
  // Stream URLs point at the viewer port: the heartbeat tells the API (bound as 0, known now).
  if (viewerPort !== undefined) cloud?.viewerPortBound(viewerPort);
  const address = agent.signalAddress();
  log.info("edge agent listening", {
    signalling: `${address.host}:${address.port}`,
    alarm: `${agent.alarmAddress()?.host}:${agent.alarmAddress()?.port}`,
    uploads: alarms.routes.length > 0,
    http: `${http.address().host}:${http.address().port}`,
    https: https ? `${https.address().host}:${https.address().port}` : null,
    downloads: config.httpsUrl ? `https://${config.httpsUrl.host}:${config.httpsUrl.port}` : "http",
    viewers: viewerPort ?? null,
    mediaPorts: `${config.mediaPorts.min}-${config.mediaPorts.max}`,
    publicHost: config.publicHost,
    publicHostSource: publicHost.status.source,
    keepAliveSeconds: config.keepAliveSeconds,
    autoProvision: config.autoProvision,
    trace: config.traceFile ?? null,
    dialectProfiles: dialect.profiles.length,
    cloud: cloud ? { commandQueueUrl: cloud.commandQueueUrl } : null,
  });
}

await main();
