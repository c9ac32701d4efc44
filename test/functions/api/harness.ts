import {
  CreateQueueCommand,
  DeleteMessageCommand,
  ReceiveMessageCommand,
} from "@aws-sdk/client-sqs";
import { PutCommand } from "@aws-sdk/lib-dynamodb";
import type { OpenAPIHono } from "@hono/zod-openapi";
import { createAlarmsHandler } from "../../../functions/alarms/handler.ts";
import { createAlarmsRepository } from "../../../functions/alarms/repository.ts";
import {
  type AlarmsConfig,
  createAlarmsService,
  DEFAULT_ALARMS_CONFIG,
} from "../../../functions/alarms/service.ts";
import {
  createAgentQueue,
  createAgentsRepository,
} from "../../../functions/api/agents-repository.ts";
import { createAlarmsReadRepository } from "../../../functions/api/alarms-repository.ts";
import { type ApiDeps, createApp } from "../../../functions/api/app.ts";
import { createCapturesRepository } from "../../../functions/api/captures-repository.ts";
import { createCommandsRepository } from "../../../functions/api/commands-repository.ts";
import {
  createDevicesRepository,
  createPresenceRepository,
} from "../../../functions/api/devices-repository.ts";
import { createS3ClientFromEnv } from "../../../functions/api/media-urls.ts";
import { createCommandResultsHandler } from "../../../functions/command-results/handler.ts";
import { createCommandResultsRepository } from "../../../functions/command-results/repository.ts";
import { createCommandResultsService } from "../../../functions/command-results/service.ts";
import { createRegistryHandler } from "../../../functions/registry/handler.ts";
import { createRegistryRepository } from "../../../functions/registry/repository.ts";
import {
  createRegistryService,
  DEFAULT_REGISTRY_CONFIG,
} from "../../../functions/registry/service.ts";
import { hashDevicePassword } from "../../../functions/shared/device-password.ts";
import { AgentQueueMessage, type AgentRecord } from "../../../lib/contracts/agent-messages.ts";
import type { AlarmQueueMessage } from "../../../lib/contracts/alarms.ts";
import type { CommandResult } from "../../../lib/contracts/commands.ts";
import type { DeviceEvent } from "../../../lib/contracts/events.ts";
import { agentCommandQueueName } from "../../../lib/contracts/queues.ts";
import type { LocalBackends } from "../../../lib/local/backends.ts";
import {
  type FunctionClients,
  functionClients,
  offsetClock,
  silentLogger,
  sqsEvent,
} from "../support.ts";

/**
 * The API app wired to real repositories on the local backends, plus the two SQS functions and
 * helpers that play the agents: heartbeat records in the agents table, their own queues.
 */
export interface ApiHarness {
  app: OpenAPIHono;
  clock: ReturnType<typeof offsetClock>;
  clients: FunctionClients;
  request(method: string, path: string, body?: unknown): Promise<{ status: number; body: Json }>;
  /** Feeds device events through the registry handler (as the device-events queue would). */
  deviceEvents(...events: DeviceEvent[]): Promise<void>;
  /** Feeds alarm and upload events through the alarms function (as the alarm-events queue would). */
  alarmEvents(...messages: AlarmQueueMessage[]): Promise<void>;
  /** Runs the alarms function's deadline sweep. */
  sweep(): Promise<{ moved: number }>;
  /** Feeds a result through the command-results handler. */
  commandResult(result: CommandResult): Promise<void>;
  /**
   * Creates an agent's queue and heartbeat record; `ttlSeconds < 0` makes it stale; `fields`
   * adds to the record (e.g. `viewerPort`).
   */
  startAgent(
    agentId: string,
    ttlSeconds?: number,
    fields?: Partial<AgentRecord>,
  ): Promise<AgentRecord>;
  /** Receives (and deletes) what is on an agent's queue now. */
  drainAgentQueue(agent: AgentRecord): Promise<AgentQueueMessage[]>;
  close(): void;
}

// biome-ignore lint/suspicious/noExplicitAny: tests navigate response JSON freely; assertions check it
export type Json = any;

let eventCounter = 0;
/**
 * Event times close to now: DynamoDB Local really expires TTL'd presence items, so history with
 * old timestamps (TTL counts from the event) would vanish under the test.
 */
export const T0 = Math.floor(Date.now() / 1000) * 1000 - 3_600_000;

/** A device event with the envelope fields filled in. */
export function deviceEvent(
  deviceId: string,
  version: number,
  fields: Record<string, unknown>,
  agentId = "agent-a",
): DeviceEvent {
  return {
    eventId: `e-${++eventCounter}`,
    deviceId,
    agentId,
    version,
    at: new Date(T0 + version * 1000).toISOString(),
    ...fields,
  } as DeviceEvent;
}

export function createApiHarness(
  backends: LocalBackends,
  extra: Partial<ApiDeps> = {},
  alarmsConfig: Partial<AlarmsConfig> = {},
): ApiHarness {
  const clients = functionClients(backends);
  const s3 = createS3ClientFromEnv(backends.env);
  const { tables, agentQueuePrefix } = backends.resources;
  const documentClient = clients.documentClient;
  const clock = offsetClock();
  const app = createApp({
    devices: createDevicesRepository({ devicesTable: tables.devices }, { documentClient }),
    presence: createPresenceRepository({ presenceTable: tables.presence }, { documentClient }),
    commands: createCommandsRepository({ commandsTable: tables.commands }, { documentClient }),
    agents: createAgentsRepository(
      { agentsTable: tables.agents },
      { documentClient, logger: silentLogger },
    ),
    agentQueue: createAgentQueue({ sqs: clients.sqs }),
    alarms: createAlarmsReadRepository({ alarmsTable: tables.alarms }, { documentClient }),
    captures: createCapturesRepository({ capturesTable: tables.captures }, { documentClient }),
    mediaUrls: { s3 },
    clock,
    logger: silentLogger,
    config: { agentQueuePrefix, waitPollIntervalMs: 50 },
    // Cheap scrypt parameters keep the suite fast; the format is the production one.
    hashPassword: (password) => hashDevicePassword(password, { logN: 10, r: 8, p: 1 }),
    ...extra,
  });
  const registry = createRegistryHandler({
    service: createRegistryService(DEFAULT_REGISTRY_CONFIG, {
      repository: createRegistryRepository(
        { devicesTable: tables.devices, presenceTable: tables.presence },
        { documentClient },
      ),
      clock,
      logger: silentLogger,
    }),
    logger: silentLogger,
  });
  const results = createCommandResultsHandler({
    service: createCommandResultsService({
      repository: createCommandResultsRepository(
        { commandsTable: tables.commands },
        { documentClient },
      ),
      clock,
      logger: silentLogger,
    }),
    logger: silentLogger,
  });

  const alarmsFunction = createAlarmsHandler({
    service: createAlarmsService(
      { ...DEFAULT_ALARMS_CONFIG, ...alarmsConfig },
      {
        repository: createAlarmsRepository(
          {
            alarmsTable: tables.alarms,
            alarmMediaTable: tables.alarmMedia,
            capturesTable: tables.captures,
          },
          { documentClient },
        ),
        clock,
        logger: silentLogger,
      },
    ),
    logger: silentLogger,
  });

  return {
    app,
    clock,
    clients,
    async alarmEvents(...messages) {
      const response = await alarmsFunction.batch(sqsEvent(...messages));
      if (response.batchItemFailures.length > 0) throw new Error("alarms rejected an event");
    },
    sweep: () => alarmsFunction.sweep(),
    async request(method, path, body) {
      const response = await app.request(path, {
        method,
        ...(body === undefined
          ? {}
          : { body: JSON.stringify(body), headers: { "content-type": "application/json" } }),
      });
      const text = await response.text();
      return { status: response.status, body: text ? JSON.parse(text) : undefined };
    },
    async deviceEvents(...events) {
      const response = await registry(sqsEvent(...events));
      if (response.batchItemFailures.length > 0) throw new Error("registry rejected an event");
    },
    async commandResult(result) {
      const response = await results(sqsEvent(result));
      if (response.batchItemFailures.length > 0) throw new Error("command-results rejected it");
    },
    async startAgent(agentId, ttlSeconds = 300, fields = {}) {
      const out = await clients.sqs.send(
        new CreateQueueCommand({ QueueName: agentCommandQueueName(agentQueuePrefix, agentId) }),
      );
      const now = clock.now();
      const record: AgentRecord = {
        agentId,
        commandQueueUrl: out.QueueUrl!,
        publicHost: "127.0.0.1",
        startedAt: new Date(now - 60_000).toISOString(),
        heartbeatAt: new Date(now).toISOString(),
        expiresAt: Math.floor(now / 1000) + ttlSeconds,
        ...fields,
      };
      await documentClient.send(new PutCommand({ TableName: tables.agents, Item: record }));
      return record;
    },
    async drainAgentQueue(agent) {
      const out = await clients.sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: agent.commandQueueUrl,
          MaxNumberOfMessages: 10,
          WaitTimeSeconds: 0,
        }),
      );
      const messages: AgentQueueMessage[] = [];
      for (const message of out.Messages ?? []) {
        messages.push(AgentQueueMessage.parse(JSON.parse(message.Body ?? "")));
        await clients.sqs.send(
          new DeleteMessageCommand({
            QueueUrl: agent.commandQueueUrl,
            ReceiptHandle: message.ReceiptHandle!,
          }),
        );
      }
      return messages;
    },
    close: () => {
      clients.close();
      s3.destroy();
    },
  };
}
