import { ENV, type EnvName } from "./env.ts";

/**
 * The static SQS queues, as plain data: the CDK messaging stack creates each with its DLQ, and
 * the local runner reproduces the same redrive and event-source settings. Per-agent command
 * queues are not static: each agent creates its own at start (see `agentCommandQueueName`).
 */

export interface ConsumerDefinition {
  /** Feature directory under `functions/` whose handler consumes the queue. */
  readonly handler: string;
  readonly batchSize: number;
  readonly maxBatchingWindowSeconds: number;
  /** Consumers return `batchItemFailures`; only the failed records are retried. */
  readonly reportBatchItemFailures: true;
  /** Lambda timeout of the consumer; the queue's visibility timeout is derived from it. */
  readonly timeoutSeconds: number;
}

export interface QueueDefinition {
  /** Construct id in the CDK messaging stack; physical names are generated. */
  readonly logicalId: string;
  /** Name the local runner gives the queue (on AWS the name is generated). */
  readonly localName: string;
  /** Environment variable through which producers receive the queue URL. */
  readonly envVar: EnvName;
  readonly visibilityTimeoutSeconds: number;
  readonly retentionSeconds: number;
  readonly deadLetter: {
    /** Receives before a message moves to the DLQ (poison messages stop retrying there). */
    readonly maxReceiveCount: number;
    readonly retentionSeconds: number;
  };
  readonly consumer: ConsumerDefinition;
}

const DAY = 24 * 60 * 60;

/**
 * AWS guidance for Lambda SQS sources: visibility timeout at least six times the function
 * timeout (plus the batching window), so retries by the poller do not overlap a running batch.
 */
export function visibilityTimeoutFor(consumer: ConsumerDefinition): number {
  return 6 * consumer.timeoutSeconds + consumer.maxBatchingWindowSeconds;
}

const deviceEventsConsumer = {
  handler: "registry",
  batchSize: 25,
  maxBatchingWindowSeconds: 1,
  reportBatchItemFailures: true,
  timeoutSeconds: 30,
} as const satisfies ConsumerDefinition;

const commandResultsConsumer = {
  handler: "command-results",
  batchSize: 10,
  // A user may be waiting on the result: no batching delay.
  maxBatchingWindowSeconds: 0,
  reportBatchItemFailures: true,
  timeoutSeconds: 30,
} as const satisfies ConsumerDefinition;

const alarmEventsConsumer = {
  handler: "alarms",
  // A capture's client may be waiting on its picture (POST ?wait; p50 target 500 ms): no batching
  // delay, which Lambda allows only for batches of at most 10.
  batchSize: 10,
  maxBatchingWindowSeconds: 0,
  reportBatchItemFailures: true,
  timeoutSeconds: 30,
} as const satisfies ConsumerDefinition;

const upgradeEventsConsumer = {
  handler: "upgrades",
  batchSize: 25,
  maxBatchingWindowSeconds: 1,
  reportBatchItemFailures: true,
  timeoutSeconds: 30,
} as const satisfies ConsumerDefinition;

/** Agent → upgrades function: `UpgradeProgressEvent`s (upgrades.ts); `QUEUES.upgradeEvents`. */
export const UPGRADE_EVENTS_QUEUE = {
  logicalId: "UpgradeEvents",
  localName: "upgrade-events",
  envVar: ENV.UPGRADE_EVENTS_QUEUE_URL,
  visibilityTimeoutSeconds: visibilityTimeoutFor(upgradeEventsConsumer),
  retentionSeconds: 4 * DAY,
  deadLetter: { maxReceiveCount: 5, retentionSeconds: 14 * DAY },
  consumer: upgradeEventsConsumer,
} as const satisfies QueueDefinition;

const deviceDataConsumer = {
  handler: "device-data",
  // Positions arrive in bursts of a fleet's reports; nobody waits on them.
  batchSize: 25,
  maxBatchingWindowSeconds: 1,
  reportBatchItemFailures: true,
  timeoutSeconds: 30,
} as const satisfies ConsumerDefinition;

const mediaEventsConsumer = {
  handler: "media",
  batchSize: 10,
  // `GET /streams/{id}` should show a state change within a second.
  maxBatchingWindowSeconds: 0,
  reportBatchItemFailures: true,
  timeoutSeconds: 30,
} as const satisfies ConsumerDefinition;

/**
 * Agent → device-data function: GPS positions batched per device (`PositionsMessage`) and
 * device-initiated TRANSPARENT messages (`PassthroughMessage`); `DeviceDataMessage` in
 * passthrough.ts. A queue of its own: a fleet's GPS volume must not delay alarms or captures
 * (alarm-events has no batching window for them), and the registry's device events stay small.
 */
export const DEVICE_DATA_QUEUE = {
  logicalId: "DeviceData",
  localName: "device-data",
  envVar: ENV.DEVICE_DATA_QUEUE_URL,
  visibilityTimeoutSeconds: visibilityTimeoutFor(deviceDataConsumer),
  retentionSeconds: 4 * DAY,
  deadLetter: { maxReceiveCount: 5, retentionSeconds: 14 * DAY },
  consumer: deviceDataConsumer,
} as const satisfies QueueDefinition;

export const QUEUES = {
  /** Agent → registry function: registered / online / offline / address / firmware / last-seen. */
  deviceEvents: {
    logicalId: "DeviceEvents",
    localName: "device-events",
    envVar: ENV.DEVICE_EVENTS_QUEUE_URL,
    visibilityTimeoutSeconds: visibilityTimeoutFor(deviceEventsConsumer),
    retentionSeconds: 4 * DAY,
    deadLetter: { maxReceiveCount: 5, retentionSeconds: 14 * DAY },
    consumer: deviceEventsConsumer,
  },
  /** Agent → command-results function: the final state of each command. */
  commandResults: {
    logicalId: "CommandResults",
    localName: "command-results",
    envVar: ENV.COMMAND_RESULTS_QUEUE_URL,
    visibilityTimeoutSeconds: visibilityTimeoutFor(commandResultsConsumer),
    retentionSeconds: 4 * DAY,
    deadLetter: { maxReceiveCount: 5, retentionSeconds: 14 * DAY },
    consumer: commandResultsConsumer,
  },
  /**
   * Agent → alarms function: one `alarm` event per alarm and one `media-uploaded` event per
   * picture/video durable in S3 (`AlarmQueueMessage` in alarms.ts, discriminated by `type`).
   */
  alarmEvents: {
    logicalId: "AlarmEvents",
    localName: "alarm-events",
    envVar: ENV.ALARM_EVENTS_QUEUE_URL,
    visibilityTimeoutSeconds: visibilityTimeoutFor(alarmEventsConsumer),
    retentionSeconds: 4 * DAY,
    deadLetter: { maxReceiveCount: 5, retentionSeconds: 14 * DAY },
    consumer: alarmEventsConsumer,
  },
  /** Agent → upgrades function: bytes served per download, the devices' `UPGRADESTATUS`. */
  upgradeEvents: UPGRADE_EVENTS_QUEUE,
  /** Agent → device-data function: GPS positions and device-initiated passthrough messages. */
  deviceData: DEVICE_DATA_QUEUE,
  /** Agent → media function: `StreamEvent`s (media.ts), state and counters per stream. */
  mediaEvents: {
    logicalId: "MediaEvents",
    localName: "media-events",
    envVar: ENV.MEDIA_EVENTS_QUEUE_URL,
    visibilityTimeoutSeconds: visibilityTimeoutFor(mediaEventsConsumer),
    retentionSeconds: 4 * DAY,
    deadLetter: { maxReceiveCount: 5, retentionSeconds: 14 * DAY },
    consumer: mediaEventsConsumer,
  },
} as const satisfies Record<string, QueueDefinition>;

export type QueueKey = keyof typeof QUEUES;
export const QUEUE_KEYS = Object.keys(QUEUES) as QueueKey[];

// Per-agent command queues --------------------------------------------------------------------

/** SQS queue names: 1–80 characters, alphanumerics, hyphens and underscores. */
const QUEUE_NAME_MAX = 80;
const AGENT_QUEUE_INFIX = "-agent-cmd-";

/**
 * Prefix of every per-agent command queue of one deployment, e.g. `ehome-agent-cmd-`. The agent
 * role may create/receive/delete only under it; the api function may send only under it.
 */
export function agentCommandQueuePrefix(stackPrefix: string): string {
  if (!/^[A-Za-z0-9_-]{1,40}$/.test(stackPrefix)) {
    throw new Error(
      `stack prefix must be 1-40 of [A-Za-z0-9_-], got ${JSON.stringify(stackPrefix)}`,
    );
  }
  return `${stackPrefix}${AGENT_QUEUE_INFIX}`;
}

/** Queue name for one agent: the prefix plus the agent id, made SQS-safe and capped at 80. */
export function agentCommandQueueName(prefix: string, agentId: string): string {
  const safe = agentId.replace(/[^A-Za-z0-9_-]/g, "-");
  const name = `${prefix}${safe}`.slice(0, QUEUE_NAME_MAX);
  if (name.length <= prefix.length) throw new Error("agent id must not be empty");
  return name;
}

/**
 * Attributes an agent creates its command queue with (SQS `CreateQueue`). Commands carry their
 * own deadline, so an hour of retention is plenty; encrypted at rest like the static queues.
 */
export const AGENT_COMMAND_QUEUE_ATTRIBUTES = {
  SqsManagedSseEnabled: "true",
  MessageRetentionPeriod: String(60 * 60),
  VisibilityTimeout: "30",
  ReceiveMessageWaitTimeSeconds: "20",
} as const satisfies Record<string, string>;
