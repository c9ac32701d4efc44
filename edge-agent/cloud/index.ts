import { join } from "node:path";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { S3Client } from "@aws-sdk/client-s3";
import { SQSClient } from "@aws-sdk/client-sqs";
import type { AlarmQueueMessage } from "../../lib/contracts/alarms.ts";
import { ENV } from "../../lib/contracts/env.ts";
import type { StreamEvent } from "../../lib/contracts/media.ts";
import type { DeviceDataMessage } from "../../lib/contracts/passthrough.ts";
import { type AgentConfig, ConfigError } from "../config.ts";
import { type Logger, silentLogger } from "../log.ts";
import {
  type AgentHeartbeat,
  type AgentHeartbeatConfig,
  createAgentHeartbeat,
} from "./agent-heartbeat.ts";
import {
  type AgentCommandTarget,
  type AgentQueue,
  type AgentQueueConfig,
  createAgentQueue,
} from "./agent-queue.ts";
import {
  asGetter,
  backoffMs,
  type ClientSource,
  type DynamoSender,
  lazy,
  type SqsSender,
  sleep,
} from "./aws.ts";
import {
  createDynamoProvisioningSource,
  type DynamoProvisioningConfig,
  type DynamoProvisioningSource,
} from "./dynamo-provisioning.ts";
import {
  createSqsEventSink,
  type SqsEventSink,
  type SqsEventSinkConfig,
} from "./sqs-event-sink.ts";
import { createSqsUpgradeEventSink, type SqsUpgradeEventSink } from "./sqs-upgrade-event-sink.ts";

/**
 * The edge agent's cloud adapters in one place (architecture §3 `cloud/`): device events to SQS,
 * provisioning from DynamoDB, the agent's command queue, and its heartbeat. Composition:
 *
 *   const cloud = createCloudAdapters(cloudConfigFromEnv(process.env, config)!, { log });
 *   const agent = createEdgeAgent(config, { ..., events: cloud.events, provisioning: cloud.provisioning });
 *   await cloud.start(agent);   // queue + heartbeat first: the API can route to us from now on
 *   await agent.start();        // (if the cloud is unreachable, start() resolves anyway and
 *                               //  keeps retrying the queue and heartbeat in the background)
 *   …
 *   await agent.close();        // emits offline (agent-shutdown) into cloud.events
 *   await cloud.close();        // stops polling, removes the heartbeat, flushes the events
 *
 * docs/agent-cloud.md lists the environment variables.
 */

export type { AgentCommandTarget } from "./agent-queue.ts";
export type { DynamoSender, SqsSender } from "./aws.ts";
export type { CloudProvisioningDecision, DynamoProvisioningSource } from "./dynamo-provisioning.ts";
export type { SqsEventSink } from "./sqs-event-sink.ts";
export type { SqsUpgradeEventSink } from "./sqs-upgrade-event-sink.ts";

/** Where clients built here connect. Ignored for clients passed in `deps`. */
export interface CloudAwsConfig {
  region?: string;
  /** Required with a local SQS (fauxqs): its queue URLs name hosts this process cannot reach. */
  sqsEndpoint?: string;
  dynamodbEndpoint?: string;
  /** S3 endpoint (fauxqs locally; path-style is used with it). */
  s3Endpoint?: string;
  /** Static credentials (local engines); on AWS the default provider chain is used. */
  credentials?: { accessKeyId: string; secretAccessKey: string };
}

export interface CloudAdaptersConfig {
  agentId: string;
  publicHost: string;
  /** `DEVICE_EVENTS_QUEUE_URL`. */
  deviceEventsQueueUrl: string;
  /** `COMMAND_RESULTS_QUEUE_URL`. */
  commandResultsQueueUrl: string;
  /** `AGENT_QUEUE_PREFIX`. */
  agentQueuePrefix: string;
  /** `DEVICES_TABLE`. */
  devicesTable: string;
  /** `AGENTS_TABLE`. */
  agentsTable: string;
  /**
   * `ALARM_EVENTS_QUEUE_URL`: alarms and uploaded media go there (issue 5). Optional: without it
   * alarms are only logged as reports.
   */
  alarmEventsQueueUrl?: string;
  /** `MEDIA_BUCKET`: where device uploads are stored. Optional: without it, no upload routes. */
  mediaBucket?: string;
  /** `UPGRADE_EVENTS_QUEUE_URL` (optional): upgrade progress goes there when set. */
  upgradeEventsQueueUrl?: string;
  /** `DEVICE_DATA_QUEUE_URL` (optional): GPS positions and device passthrough go there when set. */
  deviceDataQueueUrl?: string;
  /** `MEDIA_EVENTS_QUEUE_URL` (optional): stream states and counters go there when set. */
  mediaEventsQueueUrl?: string;
  /** Port of the viewer HTTP server, written into the heartbeat (stream URLs point at it). */
  viewerPort?: number;
  aws?: CloudAwsConfig;
  /**
   * Outage buffering of every sink (issue 7): memory bound and spill directory
   * (`EHOME_EVENT_BUFFER_MAX`, `EHOME_SPILL_DIR`, `EHOME_SPILL_MAX_BYTES`). Without it, the sinks'
   * defaults and no spill (events beyond the bound are dropped).
   */
  buffer?: { maxQueuedBytes: number; spillDir?: string; spillMaxBytes: number };
  /** Tuning; every field has a default. */
  events?: Omit<SqsEventSinkConfig, "queueUrl">;
  commands?: Omit<AgentQueueConfig, "agentId" | "queuePrefix" | "commandResultsQueueUrl">;
  provisioning?: Omit<DynamoProvisioningConfig, "devicesTable">;
  heartbeat?: Pick<AgentHeartbeatConfig, "intervalMs" | "ttlSeconds">;
  /**
   * Retries of the command queue creation and first heartbeat when the cloud is unreachable at
   * start: exponential backoff with jitter from `baseMs` (default 1000) up to `maxMs` (default
   * 60 000). `start()` waits at most `firstAttemptMs` (default 10 000) for the first attempt.
   */
  startRetry?: { baseMs?: number; maxMs?: number; firstAttemptMs?: number };
}

export interface CloudAdaptersDeps {
  /** An SQS client (or a getter); default: one built lazily from `config.aws`. */
  sqs?: ClientSource<SqsSender>;
  /** A DynamoDB client (or a getter); default: one built lazily from `config.aws`. */
  dynamodb?: ClientSource<DynamoSender>;
  /** An S3 client (or a getter) for uploads; default: one built lazily from `config.aws`. */
  s3?: ClientSource<S3Client>;
  log?: Logger;
  now?: () => number;
  random?: () => number;
}

export interface CloudAdapters {
  /** Pass as `events` to createEdgeAgent. */
  readonly events: SqsEventSink;
  /** Pass as `provisioning` to createEdgeAgent. */
  readonly provisioning: DynamoProvisioningSource;
  /** Alarm and media-uploaded events (when `alarmEventsQueueUrl` is set). */
  readonly alarmEvents: SqsEventSink<AlarmQueueMessage> | undefined;
  /** The media bucket and its client (when `mediaBucket` is set). */
  readonly media: { bucket: string; s3: () => S3Client } | undefined;
  /** Upgrade progress to the upgrade-events queue; undefined without `upgradeEventsQueueUrl`. */
  readonly upgradeEvents: SqsUpgradeEventSink | undefined;
  /** GPS positions and passthrough messages; undefined without `deviceDataQueueUrl`. */
  readonly deviceData: SqsEventSink<DeviceDataMessage> | undefined;
  /** `StreamEvent`s to the media-events queue; undefined without `mediaEventsQueueUrl`. */
  readonly mediaEvents: SqsEventSink<StreamEvent> | undefined;
  /**
   * Creates the agent's command queue, writes the heartbeat, then polls for commands for `agent`.
   * Call once, before `agent.start()`. Resolves after the first attempt (or `firstAttemptMs`):
   * when SQS or DynamoDB is unreachable it does not reject; the attempt is repeated in the
   * background with backoff (each failure logged) until it succeeds or close() is called, and
   * `commandQueueUrl` is undefined until then.
   */
  start(agent: AgentCommandTarget): Promise<{ commandQueueUrl: string | undefined }>;
  /** Known once the command queue exists. */
  readonly commandQueueUrl: string | undefined;
  /** The viewer server's bound port: the heartbeat record carries it from now on. */
  viewerPortBound(port: number): void;
  /** Flat counters (`events_sent`, `commands_received`, `provisioning_hits`, …). */
  metrics(): Record<string, number>;
  /**
   * The outage buffers at a glance, for `/healthz`: whether SQS answered the last call of every
   * sink, and the events held in memory, spilled, dropped and retried, summed over the sinks.
   */
  health(): CloudHealth;
  /**
   * Stops polling, deletes the heartbeat record, sends the queued events (bounded by
   * `events.closeTimeoutMs`), releases clients built here. Idempotent; call after `agent.close()`.
   */
  close(): Promise<void>;
}

export interface CloudHealth {
  cloudReachable: boolean;
  /** The command queue exists and the first heartbeat was written: commands can reach the agent. */
  commandQueueReady: boolean;
  /** Failed attempts at creating the command queue and writing the first heartbeat. */
  startFailures: number;
  buffered: number;
  bufferedBytes: number;
  spilled: number;
  spillBytes: number;
  dropped: number;
  retries: number;
  /** `events_dropped_total{kind}` over every sink. */
  droppedByKind: Record<string, number>;
}

function prefixed(prefix: string, counters: object): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(counters)) {
    if (typeof v === "number")
      out[`${prefix}_${k.replace(/[A-Z]/g, (m) => `_${m.toLowerCase()}`)}`] = v;
  }
  return out;
}

export function createCloudAdapters(
  config: CloudAdaptersConfig,
  deps: CloudAdaptersDeps = {},
): CloudAdapters {
  const log = deps.log ?? silentLogger;
  const aws = config.aws ?? {};
  // Unset: the SDK's own chain (AWS_REGION on ECS and Lambda).
  const region = aws.region ? { region: aws.region } : {};
  const built: Array<{ destroy(): void }> = [];
  const sqs = deps.sqs
    ? asGetter(deps.sqs)
    : lazy(() => {
        const client = new SQSClient({
          ...region,
          ...(aws.sqsEndpoint ? { endpoint: aws.sqsEndpoint, useQueueUrlAsEndpoint: false } : {}),
          ...(aws.credentials ? { credentials: aws.credentials } : {}),
        });
        built.push(client);
        return client;
      });
  const dynamodb = deps.dynamodb
    ? asGetter(deps.dynamodb)
    : lazy(() => {
        const client = new DynamoDBClient({
          ...region,
          ...(aws.dynamodbEndpoint ? { endpoint: aws.dynamodbEndpoint } : {}),
          ...(aws.credentials ? { credentials: aws.credentials } : {}),
        });
        built.push(client);
        return client;
      });

  // Each sink spills to its own files under <spillDir>/<agentId>/ (issue 7 item 1).
  const buffering = (name: string): Partial<SqsEventSinkConfig> => {
    const b = config.buffer;
    if (!b) return {};
    return {
      maxQueuedBytes: b.maxQueuedBytes,
      ...(b.spillDir && b.spillMaxBytes > 0
        ? { spill: { dir: join(b.spillDir, config.agentId), name, maxBytes: b.spillMaxBytes } }
        : {}),
    };
  };
  const events = createSqsEventSink(
    { ...buffering("device-events"), ...config.events, queueUrl: config.deviceEventsQueueUrl },
    { sqs, log: log.child({ part: "cloud-events" }), random: deps.random },
  );
  const alarmEvents = config.alarmEventsQueueUrl
    ? createSqsEventSink<AlarmQueueMessage>(
        {
          ...buffering("alarm-events"),
          ...config.events,
          // Alarms and media events are never coalesced, and go through the journal: the device
          // was told they are stored, so they must survive a crash of the agent too.
          coalesce: [],
          journal: true,
          queueUrl: config.alarmEventsQueueUrl,
          label: "alarm events",
        },
        { sqs, log: log.child({ part: "cloud-alarm-events" }), random: deps.random },
      )
    : undefined;
  const s3 = deps.s3
    ? asGetter(deps.s3)
    : lazy(() => {
        const client = new S3Client({
          ...region,
          ...(aws.s3Endpoint ? { endpoint: aws.s3Endpoint, forcePathStyle: true } : {}),
          ...(aws.credentials ? { credentials: aws.credentials } : {}),
        });
        built.push(client);
        return client;
      });
  const media = config.mediaBucket ? { bucket: config.mediaBucket, s3 } : undefined;
  const upgradeEvents = config.upgradeEventsQueueUrl
    ? createSqsUpgradeEventSink(
        {
          ...buffering("upgrade-events"),
          ...config.events,
          coalesce: [],
          queueUrl: config.upgradeEventsQueueUrl,
        },
        { sqs, log: log.child({ part: "cloud-upgrade-events" }), random: deps.random },
      )
    : undefined;
  const deviceData = config.deviceDataQueueUrl
    ? createSqsEventSink<DeviceDataMessage>(
        {
          ...buffering("device-data"),
          ...config.events,
          // Positions are de-duplicated by the consumer; keep every one, in order.
          coalesce: [],
          queueUrl: config.deviceDataQueueUrl,
          label: "device data",
        },
        { sqs, log: log.child({ part: "cloud-device-data" }), random: deps.random },
      )
    : undefined;
  // Stream events keep their order per device (the sink's unit), so per stream too.
  const mediaEvents = config.mediaEventsQueueUrl
    ? createSqsEventSink<StreamEvent>(
        {
          ...buffering("media-events"),
          ...config.events,
          coalesce: [],
          queueUrl: config.mediaEventsQueueUrl,
          label: "media events",
        },
        { sqs, log: log.child({ part: "cloud-media-events" }), random: deps.random },
      )
    : undefined;
  const provisioning = createDynamoProvisioningSource(
    { ...config.provisioning, devicesTable: config.devicesTable },
    { dynamodb, now: deps.now },
  );
  const heartbeat: AgentHeartbeat = createAgentHeartbeat(
    {
      ...config.heartbeat,
      agentsTable: config.agentsTable,
      agentId: config.agentId,
      publicHost: config.publicHost,
      ...(config.viewerPort ? { viewerPort: config.viewerPort } : {}),
    },
    { dynamodb, now: deps.now, log: log.child({ part: "cloud-heartbeat" }) },
  );
  let queue: AgentQueue | undefined;
  let closing: Promise<void> | undefined;
  // Bringing the command queue and heartbeat up, retried while the cloud is unreachable.
  const retry = {
    baseMs: config.startRetry?.baseMs ?? 1000,
    maxMs: config.startRetry?.maxMs ?? 60_000,
  };
  const stopRetrying = new AbortController();
  let bringingUp: Promise<void> | undefined;
  let heartbeatStarted = false;
  let commandQueueReady = false;
  let startFailures = 0;

  /** One attempt: the queue (unless it exists already), then the first heartbeat. */
  const bringUpOnce = async (q: AgentQueue): Promise<void> => {
    if (q.url === undefined) await q.start();
    if (!heartbeatStarted) {
      await heartbeat.start(q.url!);
      heartbeatStarted = true;
    }
  };

  /** Repeats `bringUpOnce` with backoff until it succeeds or close(); `attempted` after each try. */
  const bringUp = async (q: AgentQueue, attempted: () => void): Promise<void> => {
    for (let attempt = 1; !closing; attempt++) {
      try {
        await bringUpOnce(q);
      } catch (err) {
        startFailures++;
        attempted();
        if (closing) return;
        const delayMs = backoffMs(attempt, retry, deps.random ?? Math.random);
        log.error("command queue or heartbeat not ready; retrying", {
          err,
          attempt,
          retryInMs: delayMs,
          commandQueueCreated: q.url !== undefined,
        });
        await sleep(delayMs, stopRetrying.signal);
        continue;
      }
      commandQueueReady = true;
      attempted();
      log.info("cloud adapters started", { commandQueueUrl: q.url, attempts: attempt });
      return;
    }
    attempted();
  };

  return {
    events,
    provisioning,
    alarmEvents,
    media,
    upgradeEvents,
    deviceData,
    mediaEvents,
    async start(agent) {
      if (queue) throw new Error("cloud adapters already started");
      if (closing) throw new Error("cloud adapters are closed");
      queue = createAgentQueue(
        {
          ...config.commands,
          agentId: config.agentId,
          queuePrefix: config.agentQueuePrefix,
          commandResultsQueueUrl: config.commandResultsQueueUrl,
        },
        {
          sqs,
          agent,
          provisioning,
          log: log.child({ part: "cloud-commands" }),
          now: deps.now,
          random: deps.random,
        },
      );
      // Device-facing sockets must not wait on the cloud: the first attempt is awaited (bounded),
      // later ones run in the background.
      let attempted!: () => void;
      const firstAttempt = new Promise<void>((resolve) => {
        attempted = resolve;
      });
      bringingUp = bringUp(queue, attempted);
      const waited = new AbortController();
      await Promise.race([
        firstAttempt,
        sleep(config.startRetry?.firstAttemptMs ?? 10_000, waited.signal),
      ]);
      waited.abort();
      return { commandQueueUrl: commandQueueReady ? queue.url : undefined };
    },
    get commandQueueUrl() {
      return queue?.url;
    },
    viewerPortBound: (port) => heartbeat.setViewerPort(port),
    metrics: () => ({
      ...prefixed("events", events.counters()),
      ...droppedTotals("events", events),
      ...(alarmEvents ? prefixed("alarm_events", alarmEvents.counters()) : {}),
      ...(alarmEvents ? droppedTotals("alarm_events", alarmEvents) : {}),
      ...(upgradeEvents ? prefixed("upgrade_events", upgradeEvents.counters()) : {}),
      ...(upgradeEvents ? droppedTotals("upgrade_events", upgradeEvents) : {}),
      ...(deviceData ? prefixed("device_data", deviceData.counters()) : {}),
      ...(deviceData ? droppedTotals("device_data", deviceData) : {}),
      ...(mediaEvents ? prefixed("media_events", mediaEvents.counters()) : {}),
      ...(mediaEvents ? droppedTotals("media_events", mediaEvents) : {}),
      ...(queue ? prefixed("commands", queue.counters()) : {}),
      ...prefixed("provisioning", provisioning.counters()),
      ...prefixed("heartbeat", heartbeat.counters()),
    }),
    health() {
      const sinks = [events, alarmEvents, upgradeEvents, deviceData, mediaEvents].filter(
        (x) => x !== undefined,
      );
      const h: CloudHealth = {
        cloudReachable: true,
        commandQueueReady,
        startFailures,
        buffered: 0,
        bufferedBytes: 0,
        spilled: 0,
        spillBytes: 0,
        dropped: 0,
        retries: 0,
        droppedByKind: {},
      };
      for (const sink of sinks) {
        const c = sink.counters();
        if (!c.cloudReachable) h.cloudReachable = false;
        h.buffered += c.queued;
        h.bufferedBytes += c.queuedBytes;
        h.spilled += c.spilled;
        h.spillBytes += c.spillBytes;
        h.dropped += c.dropped;
        h.retries += c.retries;
        for (const [k, v] of Object.entries(sink.droppedByKind())) {
          h.droppedByKind[k] = (h.droppedByKind[k] ?? 0) + v;
        }
      }
      return h;
    },
    close() {
      closing ??= (async () => {
        stopRetrying.abort();
        // An attempt in progress finishes first (SDK calls are not aborted mid-way), for at most
        // 5 s: a queue created later does not poll (closed); a first heartbeat written later
        // expires with its TTL.
        const waited = new AbortController();
        await Promise.race([bringingUp, sleep(5_000, waited.signal)]);
        waited.abort();
        await queue?.close();
        await heartbeat.close();
        await events.close();
        await alarmEvents?.close();
        await upgradeEvents?.close();
        await deviceData?.close();
        await mediaEvents?.close();
        provisioning.close();
        for (const client of built) client.destroy();
      })();
      return closing;
    },
  };
}

/** `<prefix>_dropped_total{kind="…"}`: the drops of one sink by event type. */
function droppedTotals(
  prefix: string,
  sink: { droppedByKind(): Record<string, number> },
): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [kind, n] of Object.entries(sink.droppedByKind())) {
    out[`${prefix}_dropped_total{kind="${kind}"}`] = n;
  }
  return out;
}

/** Standard AWS SDK variables (not ours, so not in lib/contracts/env.ts). */
const SDK_ENV = {
  region: "AWS_REGION",
  defaultRegion: "AWS_DEFAULT_REGION",
  endpoint: "AWS_ENDPOINT_URL",
  sqsEndpoint: "AWS_ENDPOINT_URL_SQS",
  dynamodbEndpoint: "AWS_ENDPOINT_URL_DYNAMODB",
  s3Endpoint: "AWS_ENDPOINT_URL_S3",
} as const;

/** The resource variables the cloud adapters need, all or none. */
export const CLOUD_ENV = [
  ENV.DEVICE_EVENTS_QUEUE_URL,
  ENV.COMMAND_RESULTS_QUEUE_URL,
  ENV.AGENT_QUEUE_PREFIX,
  ENV.DEVICES_TABLE,
  ENV.AGENTS_TABLE,
] as const;

/**
 * The adapters' configuration from the environment the stacks (or the local runner) set.
 * `undefined` when none of `CLOUD_ENV` is set (the agent runs stand-alone); throws the agent's
 * `ConfigError` (`CONFIG_INVALID`) naming the missing ones when only some are.
 */
export function cloudConfigFromEnv(
  env: Readonly<Record<string, string | undefined>>,
  agent: { agentId: string; publicHost: string } & Partial<
    Pick<AgentConfig, "eventBufferMaxBytes" | "spillDir" | "spillMaxBytes">
  >,
): CloudAdaptersConfig | undefined {
  const get = (name: string) => {
    const v = env[name]?.trim();
    return v ? v : undefined;
  };
  const missing = CLOUD_ENV.filter((name) => get(name) === undefined);
  if (missing.length === CLOUD_ENV.length) return undefined;
  if (missing.length > 0) {
    throw new ConfigError(
      missing.join(", "),
      `not set, but ${CLOUD_ENV.filter((n) => !missing.includes(n)).join(", ")} are: the cloud ` +
        "adapters need all of them (or none, to run stand-alone)",
    );
  }
  const shared = get(SDK_ENV.endpoint);
  const sqsEndpoint = get(SDK_ENV.sqsEndpoint) ?? shared;
  const dynamodbEndpoint = get(SDK_ENV.dynamodbEndpoint) ?? shared;
  const s3Endpoint = get(SDK_ENV.s3Endpoint) ?? shared;
  const alarmEventsQueueUrl = get(ENV.ALARM_EVENTS_QUEUE_URL);
  const mediaBucket = get(ENV.MEDIA_BUCKET);
  const region = get(SDK_ENV.region) ?? get(SDK_ENV.defaultRegion);
  const upgradeEventsQueueUrl = get(ENV.UPGRADE_EVENTS_QUEUE_URL);
  const deviceDataQueueUrl = get(ENV.DEVICE_DATA_QUEUE_URL);
  const mediaEventsQueueUrl = get(ENV.MEDIA_EVENTS_QUEUE_URL);
  return {
    agentId: agent.agentId,
    publicHost: agent.publicHost,
    deviceEventsQueueUrl: get(ENV.DEVICE_EVENTS_QUEUE_URL)!,
    commandResultsQueueUrl: get(ENV.COMMAND_RESULTS_QUEUE_URL)!,
    agentQueuePrefix: get(ENV.AGENT_QUEUE_PREFIX)!,
    devicesTable: get(ENV.DEVICES_TABLE)!,
    agentsTable: get(ENV.AGENTS_TABLE)!,
    ...(alarmEventsQueueUrl ? { alarmEventsQueueUrl } : {}),
    ...(mediaBucket ? { mediaBucket } : {}),
    ...(upgradeEventsQueueUrl ? { upgradeEventsQueueUrl } : {}),
    // The agent's full configuration (npm run agent, npm start) carries the outage buffering.
    ...(agent.eventBufferMaxBytes !== undefined
      ? {
          buffer: {
            maxQueuedBytes: agent.eventBufferMaxBytes,
            ...(agent.spillDir ? { spillDir: agent.spillDir } : {}),
            spillMaxBytes: agent.spillMaxBytes ?? 0,
          },
        }
      : {}),
    ...(deviceDataQueueUrl ? { deviceDataQueueUrl } : {}),
    ...(mediaEventsQueueUrl ? { mediaEventsQueueUrl } : {}),
    aws: {
      ...(region ? { region } : {}),
      ...(sqsEndpoint ? { sqsEndpoint } : {}),
      ...(dynamodbEndpoint ? { dynamodbEndpoint } : {}),
      ...(s3Endpoint ? { s3Endpoint } : {}),
    },
  };
}
