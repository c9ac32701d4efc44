import { randomBytes } from "node:crypto";
import { createServer } from "node:net";
import { GetItemCommand } from "@aws-sdk/client-dynamodb";
import { SendMessageCommand, SQSClient } from "@aws-sdk/client-sqs";
import { afterEach, describe, expect, it } from "vitest";
import { createEdgeAgent, type EdgeAgent } from "../../../edge-agent/agent.ts";
import type { SqsSender } from "../../../edge-agent/cloud/aws.ts";
import {
  type CloudAdapters,
  cloudConfigFromEnv,
  createCloudAdapters,
} from "../../../edge-agent/cloud/index.ts";
import { loadConfig } from "../../../edge-agent/config.ts";
import { createLogger } from "../../../edge-agent/log.ts";
import { createUdpTransport } from "../../../edge-agent/signalling/server.ts";
import type { AgentQueueMessage } from "../../../lib/contracts/agent-messages.ts";
import { CommandResult } from "../../../lib/contracts/commands.ts";
import { DeviceEvent } from "../../../lib/contracts/events.ts";
import { LOCAL_CREDENTIALS, LOCAL_REGION } from "../../../lib/local/clients.ts";
import { eventually, useLocalBackends } from "../../helpers/local-backends.ts";
import { createLoopbackDevice, type LoopbackDevice } from "./loopback-device.ts";
import { queueReader } from "./queue-reader.ts";

/**
 * An agent (re)started while SQS is unreachable still serves its devices: `cloud.start()` resolves
 * after a failed first attempt, REGISTER and KEEPALIVE are answered, and the command queue
 * creation + first heartbeat are retried in the background with backoff (each failure logged,
 * `commandQueueReady` false in `health()`). Once SQS answers, the queue is created, the heartbeat
 * written, and a command flows to the device and its result to the results queue.
 */

const backends = useLocalBackends();

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A TCP port nothing listens on (bound, then closed). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const { port } = server.address() as { port: number };
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

describe("agent start while the cloud is unreachable", () => {
  it("serves devices at once, retries the command queue and heartbeat, then commands flow", async () => {
    const b = backends();
    const agentId = `agent-${randomBytes(3).toString("hex")}`;
    const config = loadConfig(
      {
        EHOME_AGENT_ID: agentId,
        EHOME_HOST: "127.0.0.1",
        EHOME_SIGNAL_PORT: "0",
        EHOME_LEARN_DEVICES: "false",
      },
      { hostname: "test", pid: 1 },
    );
    // SQS at a closed local port until `down` is cleared, then the embedded one.
    const unreachable = new SQSClient({
      region: LOCAL_REGION,
      endpoint: `http://127.0.0.1:${await closedPort()}`,
      credentials: LOCAL_CREDENTIALS,
      maxAttempts: 1,
    });
    cleanups.push(() => unreachable.destroy());
    let down = true;
    const sqs: SqsSender = {
      send: ((command: never, options: never) =>
        (down ? unreachable : b.clients.sqs).send(command, options)) as SqsSender["send"],
    };
    const logged: Array<Record<string, unknown>> = [];
    const log = createLogger({
      level: "error",
      write: (line) => void logged.push(JSON.parse(line) as Record<string, unknown>),
    });
    const cloud: CloudAdapters = createCloudAdapters(
      {
        ...cloudConfigFromEnv(b.env, config)!,
        events: { lingerMs: 20, retryBaseMs: 50, retryMaxMs: 200 },
        commands: { waitTimeSeconds: 1 },
        startRetry: { baseMs: 50, maxMs: 200 },
      },
      { sqs, dynamodb: b.clients.dynamodb, log },
    );
    const agent: EdgeAgent = createEdgeAgent(config, {
      transport: createUdpTransport({ host: "127.0.0.1", port: 0 }),
      events: cloud.events,
      provisioning: cloud.provisioning,
    });
    cleanups.push(async () => {
      await agent.close();
      await cloud.close();
    });

    // Resolves (does not reject) although neither the queue nor the heartbeat could be made.
    expect(await cloud.start(agent)).toEqual({ commandQueueUrl: undefined });
    expect(cloud.commandQueueUrl).toBeUndefined();
    expect(cloud.health()).toMatchObject({ commandQueueReady: false });
    await agent.start();

    const device: LoopbackDevice = await createLoopbackDevice(
      agent.signalAddress(),
      `cam-${randomBytes(3).toString("hex")}`,
    );
    cleanups.push(() => device.close());
    expect((await device.register()).status).toBe(200);
    expect((await device.keepalive()).status).toBe(200);

    // Retried in the background, each failure logged; no heartbeat record meanwhile.
    await eventually(async () => (cloud.health().startFailures >= 3 ? true : undefined));
    const failures = logged.filter(
      (l) => l.msg === "command queue or heartbeat not ready; retrying",
    );
    expect(failures.length).toBeGreaterThanOrEqual(3);
    expect(failures[0]).toMatchObject({ attempt: 1, err: { code: "ECONNREFUSED" } });
    const agentRecord = () =>
      b.clients.dynamodb.send(
        new GetItemCommand({
          TableName: b.resources.tables.agents,
          Key: { agentId: { S: agentId } },
          ConsistentRead: true,
        }),
      );
    expect((await agentRecord()).Item).toBeUndefined();
    expect(cloud.health().commandQueueReady).toBe(false);

    // SQS is back: the queue is created and the heartbeat written.
    down = false;
    await eventually(async () => (cloud.health().commandQueueReady ? true : undefined));
    const queueUrl = cloud.commandQueueUrl;
    expect(queueUrl).toMatch(new RegExp(`${agentId}$`));
    expect((await agentRecord()).Item?.commandQueueUrl?.S).toBe(queueUrl);

    // A command reaches the device and its result the results queue.
    const results = queueReader(b.clients.sqs, b.resources.queues.commandResults.url);
    const commandId = `cmd-${randomBytes(3).toString("hex")}`;
    await b.clients.sqs.send(
      new SendMessageCommand({
        QueueUrl: queueUrl,
        MessageBody: JSON.stringify({
          kind: "command",
          commandId,
          deviceId: device.deviceId,
          type: "reboot",
          params: {},
          deadline: Date.now() + 30_000,
        } satisfies AgentQueueMessage),
      }),
    );
    const result = await results.until((m) =>
      m.map((x) => CommandResult.parse(x)).find((r) => r.commandId === commandId),
    );
    expect(result).toMatchObject({ deviceId: device.deviceId, agentId, state: "succeeded" });
    expect(device.requests.map((r) => r.commandId)).toEqual(["reboot"]);

    // The device's events, held during the outage, arrive too.
    const events = queueReader(b.clients.sqs, b.resources.queues.deviceEvents.url);
    const mine = await events.until((m) => {
      const e = m.map((x) => DeviceEvent.parse(x)).filter((x) => x.deviceId === device.deviceId);
      return e.length >= 2 ? e : undefined;
    });
    expect(mine.map((e) => e.type)).toEqual(["registered", "online"]);
  });

  it("close() during the retries stops them and leaves no heartbeat record", async () => {
    const b = backends();
    const agentId = `agent-${randomBytes(3).toString("hex")}`;
    const unreachable = new SQSClient({
      region: LOCAL_REGION,
      endpoint: `http://127.0.0.1:${await closedPort()}`,
      credentials: LOCAL_CREDENTIALS,
      maxAttempts: 1,
    });
    cleanups.push(() => unreachable.destroy());
    const cloud = createCloudAdapters(
      {
        ...cloudConfigFromEnv(b.env, { agentId, publicHost: "127.0.0.1" })!,
        startRetry: { baseMs: 50, maxMs: 100 },
      },
      { sqs: unreachable, dynamodb: b.clients.dynamodb },
    );
    const stub = {
      commands: { execute: () => Promise.reject(new Error("not used")) },
      provisioningChanged: async () => false,
    };
    await cloud.start(stub);
    await eventually(async () => (cloud.health().startFailures >= 2 ? true : undefined));
    await cloud.close();
    const after = cloud.health().startFailures;
    await new Promise((r) => setTimeout(r, 300));
    expect(cloud.health().startFailures).toBe(after);
    expect(cloud.health().commandQueueReady).toBe(false);
    const record = await b.clients.dynamodb.send(
      new GetItemCommand({
        TableName: b.resources.tables.agents,
        Key: { agentId: { S: agentId } },
        ConsistentRead: true,
      }),
    );
    expect(record.Item).toBeUndefined();
  });
});
