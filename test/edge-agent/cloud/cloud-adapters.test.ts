import { randomBytes } from "node:crypto";
import { DeleteItemCommand, GetItemCommand, PutItemCommand } from "@aws-sdk/client-dynamodb";
import { SendMessageCommand } from "@aws-sdk/client-sqs";
import { afterEach, describe, expect, it } from "vitest";
import { createEdgeAgent, type EdgeAgent } from "../../../edge-agent/agent.ts";
import {
  type CloudAdapters,
  type CloudAdaptersConfig,
  cloudConfigFromEnv,
  createCloudAdapters,
} from "../../../edge-agent/cloud/index.ts";
import { loadConfig } from "../../../edge-agent/config.ts";
import { createUdpTransport } from "../../../edge-agent/signalling/server.ts";
import { AgentQueueMessage, AgentRecord } from "../../../lib/contracts/agent-messages.ts";
import { CommandResult } from "../../../lib/contracts/commands.ts";
import { DeviceEvent } from "../../../lib/contracts/events.ts";
import { LOCAL_CREDENTIALS } from "../../../lib/local/clients.ts";
import { eventually, useLocalBackends } from "../../helpers/local-backends.ts";
import { createLoopbackDevice, type LoopbackDevice } from "./loopback-device.ts";
import { queueDepth, queueReader, type SpySqs, spySqs } from "./queue-reader.ts";

/**
 * The cloud adapters against the embedded backends (DynamoDB Local + fauxqs) with a real agent
 * on loopback UDP and hand-made devices: events out, commands in, provisioning, heartbeat.
 */

const backends = useLocalBackends();

interface Stack {
  agentId: string;
  agent: EdgeAgent;
  cloud: CloudAdapters;
  spy: SpySqs;
  device(id: string): Promise<LoopbackDevice>;
  close(): Promise<void>;
}

const stacks: Stack[] = [];
afterEach(async () => {
  for (const s of stacks.splice(0)) await s.close();
});

const uid = () => randomBytes(3).toString("hex");

async function startStack(
  options: {
    env?: Record<string, string>;
    failBatchCalls?: number;
    tune?: Partial<CloudAdaptersConfig>;
  } = {},
): Promise<Stack> {
  const b = backends();
  const agentId = `agent-${uid()}`;
  const config = loadConfig(
    {
      EHOME_AGENT_ID: agentId,
      EHOME_HOST: "127.0.0.1",
      EHOME_SIGNAL_PORT: "0",
      EHOME_LEARN_DEVICES: "false",
      ...options.env,
    },
    { hostname: "test", pid: 1 },
  );
  // The same variables the stacks and the local runner set.
  const fromEnv = cloudConfigFromEnv(b.env, config)!;
  const spy = spySqs(b.clients.sqs, { failBatchCalls: options.failBatchCalls });
  const cloud = createCloudAdapters(
    {
      ...fromEnv,
      events: { lingerMs: 20, retryBaseMs: 50 },
      commands: { waitTimeSeconds: 20 },
      ...options.tune,
    },
    { sqs: spy.sender, dynamodb: b.clients.dynamodb },
  );
  const agent = createEdgeAgent(config, {
    transport: createUdpTransport({ host: "127.0.0.1", port: 0 }),
    events: cloud.events,
    provisioning: cloud.provisioning,
  });
  await cloud.start(agent);
  await agent.start();
  const devices: LoopbackDevice[] = [];
  let closed = false;
  const stack: Stack = {
    agentId,
    agent,
    cloud,
    spy,
    async device(id) {
      const d = await createLoopbackDevice(agent.signalAddress(), id);
      devices.push(d);
      return d;
    },
    async close() {
      if (closed) return;
      closed = true;
      await agent.close();
      await cloud.close();
      await Promise.all(devices.map((d) => d.close()));
    },
  };
  stacks.push(stack);
  return stack;
}

const eventsQueue = () => backends().resources.queues.deviceEvents.url;
const resultsQueue = () => backends().resources.queues.commandResults.url;

/** Device events of one agent, parsed with the contract (throws on an invalid one). */
function eventsOf(messages: unknown[], agentId: string): DeviceEvent[] {
  return messages.map((m) => DeviceEvent.parse(m)).filter((e) => e.agentId === agentId);
}

async function sendToAgent(stack: Stack, message: AgentQueueMessage): Promise<void> {
  await backends().clients.sqs.send(
    new SendMessageCommand({
      QueueUrl: stack.cloud.commandQueueUrl,
      MessageBody: JSON.stringify(AgentQueueMessage.parse(message)),
    }),
  );
}

describe("device events to SQS", () => {
  it("REGISTERs reach the device-events queue as valid DeviceEvents, in per-device order", async () => {
    const s = await startStack();
    const reader = queueReader(backends().clients.sqs, eventsQueue());
    const ids = ["cam-a", "cam-b", "cam-c"].map((d) => `${d}-${uid()}`);
    const devices = await Promise.all(ids.map((id) => s.device(id)));
    for (const r of await Promise.all(devices.map((d) => d.register()))) expect(r.status).toBe(200);
    // A second REGISTER from the same address: one more `registered`, no second `online`.
    expect((await devices[0]!.register()).status).toBe(200);

    const events = await reader.until((m) => {
      const e = eventsOf(m, s.agentId);
      return e.length >= 7 ? e : undefined;
    });
    for (const id of ids) {
      const mine = events.filter((e) => e.deviceId === id);
      const versions = mine.map((e) => e.version);
      expect(versions).toEqual([...versions].sort((a, b) => a - b));
      expect(mine.map((e) => e.type)).toEqual(
        id === ids[0] ? ["registered", "online", "registered"] : ["registered", "online"],
      );
    }
    expect(events.find((e) => e.type === "online")).toMatchObject({
      agentId: s.agentId,
      address: expect.stringMatching(/^127\.0\.0\.1:\d+$/),
    });
  });

  it("sends N events in ⌈N/10⌉ SendMessageBatch calls", async () => {
    const s = await startStack({ tune: { events: { lingerMs: 50 } } });
    const reader = queueReader(backends().clients.sqs, eventsQueue());
    const before = s.spy.batchCalls.length;
    const at = new Date().toISOString();
    for (let i = 0; i < 25; i++) {
      s.cloud.events.emit({
        type: "last-seen",
        eventId: `batch-${i}`,
        deviceId: `dev-${i}`,
        agentId: s.agentId,
        version: i + 1,
        at,
        lastSeen: at,
      });
    }
    const events = await reader.until((m) => {
      const e = eventsOf(m, s.agentId);
      return e.length >= 25 ? e : undefined;
    });
    expect(new Set(events.map((e) => e.eventId)).size).toBe(25);
    expect(s.spy.batchCalls.slice(before)).toEqual([10, 10, 5]);
  });

  it("retries after SQS failures and loses nothing", async () => {
    const s = await startStack({ failBatchCalls: 2 });
    const reader = queueReader(backends().clients.sqs, eventsQueue());
    const devices = await Promise.all(
      Array.from({ length: 5 }, (_, i) => s.device(`cam-${i}-${uid()}`)),
    );
    await Promise.all(devices.map((d) => d.register()));
    const events = await reader.until((m) => {
      const e = eventsOf(m, s.agentId);
      return e.length >= 10 ? e : undefined;
    });
    for (const d of devices) {
      expect(events.filter((e) => e.deviceId === d.deviceId).map((e) => e.type)).toEqual([
        "registered",
        "online",
      ]);
    }
    expect(s.cloud.events.counters()).toMatchObject({
      sent: 10,
      failedCalls: 2,
      dropped: 0,
      queued: 0,
    });
    // Every entry of the two failed calls was sent again exactly once.
    const failedEntries = s.spy.batchCalls[0]! + s.spy.batchCalls[1]!;
    expect(s.cloud.events.counters().retries).toBe(failedEntries);
  });

  it("KEEPALIVEs never reach SQS", async () => {
    const s = await startStack();
    const reader = queueReader(backends().clients.sqs, eventsQueue());
    const devices = await Promise.all([s.device(`cam-${uid()}`), s.device(`cam-${uid()}`)]);
    await Promise.all(devices.map((d) => d.register()));
    await reader.until((m) => (eventsOf(m, s.agentId).length >= 4 ? true : undefined));
    const entriesAfterRegister = s.spy.entries();

    for (let i = 0; i < 20; i++) {
      for (const r of await Promise.all(devices.map((d) => d.keepalive()))) {
        expect(r.status).toBe(200);
      }
    }
    // Longer than the linger: anything queued would have been sent.
    await new Promise((r) => setTimeout(r, 200));
    await reader.drain();
    expect(s.spy.entries()).toBe(entriesAfterRegister);
    expect(eventsOf(reader.messages, s.agentId)).toHaveLength(4);
    expect(s.agent.metrics()).toMatchObject({ events_emitted: 4 });
  });
});

describe("the agent's command queue", () => {
  it("executes a command against the device and sends a valid CommandResult", async () => {
    const s = await startStack();
    const results = queueReader(backends().clients.sqs, resultsQueue());
    const device = await s.device(`cam-${uid()}`);
    await device.register();
    const commandId = `cmd-${uid()}`;
    await sendToAgent(s, {
      kind: "command",
      commandId,
      deviceId: device.deviceId,
      type: "reboot",
      params: {},
      deadline: Date.now() + 30_000,
    });
    const result = await results.until((m) =>
      m.map((x) => CommandResult.parse(x)).find((r) => r.commandId === commandId),
    );
    expect(result).toMatchObject({
      commandId,
      deviceId: device.deviceId,
      agentId: s.agentId,
      state: "succeeded",
    });
    expect(device.requests.map((r) => r.commandId)).toEqual(["reboot"]);
    // Deleted once the result was sent.
    await eventually(async () =>
      (await queueDepth(backends().clients.sqs, s.cloud.commandQueueUrl!)) === 0 ? true : undefined,
    );
    expect(s.cloud.metrics()).toMatchObject({ commands_results_sent: 1, commands_expired: 0 });
  });

  it("reports a command past its deadline timed-out without sending it to the device", async () => {
    const s = await startStack();
    const results = queueReader(backends().clients.sqs, resultsQueue());
    const device = await s.device(`cam-${uid()}`);
    await device.register();
    const commandId = `cmd-${uid()}`;
    await sendToAgent(s, {
      kind: "command",
      commandId,
      deviceId: device.deviceId,
      type: "reboot",
      params: {},
      deadline: Date.now() - 1,
    });
    const result = await results.until((m) =>
      m.map((x) => CommandResult.parse(x)).find((r) => r.commandId === commandId),
    );
    expect(result).toMatchObject({ state: "timed-out", error: { code: "DEADLINE_PASSED" } });
    expect(device.requests).toHaveLength(0);
    expect(s.agent.metrics()).toMatchObject({ commands_pending: 0 });
    expect(s.cloud.metrics()).toMatchObject({ commands_expired: 1 });
  });

  it("after a restart under the same id, reuses the queue and answers commands left in it", async () => {
    const b = backends();
    const agentId = `agent-${uid()}`;
    const config = cloudConfigFromEnv(b.env, { agentId, publicHost: "127.0.0.1" })!;
    const results = queueReader(b.clients.sqs, resultsQueue());
    const stub = {
      commands: { execute: () => Promise.reject(new Error("not started")) },
      provisioningChanged: async () => false,
    };
    const first = createCloudAdapters(
      { ...config, commands: { waitTimeSeconds: 1 } },
      { sqs: b.clients.sqs, dynamodb: b.clients.dynamodb },
    );
    const { commandQueueUrl } = await first.start(stub);
    await first.close();
    // close() aborts its long poll, but the server still holds it until its wait ends; a message
    // arriving meanwhile would go to the abandoned poll (and reappear after the visibility
    // timeout), as on SQS.
    await new Promise((r) => setTimeout(r, 1_100));
    // A command that arrived while no agent was polling, now past its deadline.
    const commandId = `cmd-${uid()}`;
    await b.clients.sqs.send(
      new SendMessageCommand({
        QueueUrl: commandQueueUrl,
        MessageBody: JSON.stringify({
          kind: "command",
          commandId,
          deviceId: "cam-1",
          type: "reboot",
          params: {},
          deadline: Date.now() - 1,
        } satisfies AgentQueueMessage),
      }),
    );
    // The new process asks for other queue attributes: it converges instead of failing.
    const second = createCloudAdapters(
      { ...config, commands: { maxReceiveCount: 3 } },
      { sqs: b.clients.sqs, dynamodb: b.clients.dynamodb },
    );
    try {
      expect((await second.start(stub)).commandQueueUrl).toBe(commandQueueUrl);
      const result = await results.until((m) =>
        m.map((x) => CommandResult.parse(x)).find((r) => r.commandId === commandId),
      );
      expect(result).toMatchObject({ state: "timed-out", agentId });
    } finally {
      await second.close();
    }
  });

  it("deletes an invalid message and keeps serving", async () => {
    const s = await startStack();
    await backends().clients.sqs.send(
      new SendMessageCommand({ QueueUrl: s.cloud.commandQueueUrl, MessageBody: '{"kind":"nope"}' }),
    );
    await eventually(async () => (s.cloud.metrics().commands_invalid === 1 ? true : undefined));
    await eventually(async () =>
      (await queueDepth(backends().clients.sqs, s.cloud.commandQueueUrl!)) === 0 ? true : undefined,
    );
  });
});

describe("provisioning from the devices table", () => {
  const putDevice = (item: Record<string, { S: string } | { BOOL: boolean }>) =>
    backends().clients.dynamodb.send(
      new PutItemCommand({ TableName: backends().resources.tables.devices, Item: item }),
    );

  it("provisioning-changed drops a deprovisioned online device, and its next REGISTER is refused", async () => {
    const s = await startStack({ env: { EHOME_AUTO_PROVISION: "false" } });
    const events = queueReader(backends().clients.sqs, eventsQueue());
    const device = await s.device(`cam-${uid()}`);
    const id = device.deviceId;
    await putDevice({ deviceId: { S: id }, provisioned: { BOOL: true } });
    expect((await device.register()).status).toBe(200);

    // The API's PUT with allowed=false, then its notification to every live agent.
    await putDevice({ deviceId: { S: id }, provisioned: { BOOL: false } });
    await sendToAgent(s, { kind: "provisioning-changed", deviceId: id });

    await eventually(async () => (s.agent.sessions.get(id) === undefined ? true : undefined));
    const offline = await events.until((m) =>
      eventsOf(m, s.agentId).find((e) => e.deviceId === id && e.type === "offline"),
    );
    expect(offline).toMatchObject({ reason: "deprovisioned" });
    expect((await device.register()).status).toBe(403);
    expect(s.cloud.metrics()).toMatchObject({ commands_devices_dropped: 1 });
  });

  it("a device deleted through the API (tombstone) is dropped and refused even with auto-provisioning", async () => {
    const s = await startStack({ env: { EHOME_AUTO_PROVISION: "true" } });
    const device = await s.device(`cam-${uid()}`);
    const id = device.deviceId;
    expect((await device.register()).status).toBe(200); // not listed: auto-provisioned

    await putDevice({ deviceId: { S: id }, deletedAt: { S: new Date().toISOString() } });
    await sendToAgent(s, { kind: "provisioning-changed", deviceId: id });
    await eventually(async () => (s.agent.sessions.get(id) === undefined ? true : undefined));
    expect((await device.register()).status).toBe(403);
  });

  it("a REGISTER flood from unknown devices costs no DynamoDB writes, and one read per device", async () => {
    const b = backends();
    const sent: string[] = [];
    const dynamodb = {
      send: (command: { constructor: { name: string } }, opts?: unknown) => {
        sent.push(command.constructor.name);
        return (b.clients.dynamodb.send as (c: unknown, o?: unknown) => Promise<unknown>)(
          command,
          opts,
        );
      },
    };
    const agentId = `agent-${uid()}`;
    const config = loadConfig(
      {
        EHOME_AGENT_ID: agentId,
        EHOME_HOST: "127.0.0.1",
        EHOME_SIGNAL_PORT: "0",
        EHOME_AUTO_PROVISION: "false",
      },
      { hostname: "test", pid: 1 },
    );
    const cloud = createCloudAdapters(cloudConfigFromEnv(b.env, config)!, {
      sqs: b.clients.sqs,
      dynamodb: dynamodb as never,
    });
    const agent = createEdgeAgent(config, {
      transport: createUdpTransport({ host: "127.0.0.1", port: 0 }),
      events: cloud.events,
      provisioning: cloud.provisioning,
    });
    const devices: LoopbackDevice[] = [];
    try {
      await cloud.start(agent);
      await agent.start();
      const read = (n: string) => n === "GetItemCommand" || n === "BatchGetItemCommand";
      const writesAtStart = sent.filter((n) => !read(n)).length; // the heartbeat
      for (let i = 0; i < 5; i++) {
        devices.push(await createLoopbackDevice(agent.signalAddress(), `intruder-${uid()}`));
      }
      for (let round = 0; round < 10; round++) {
        const answers = await Promise.all(devices.map((d) => d.register()));
        for (const a of answers) expect(a.status).toBe(403);
      }
      // One read per device (GetItem, or several devices in a BatchGetItem), never a write.
      expect(sent.filter(read).length).toBeLessThanOrEqual(5);
      expect(sent.filter((n) => !read(n))).toHaveLength(writesAtStart);
      expect(cloud.provisioning.counters()).toMatchObject({ reads: 5, hits: 45 });
    } finally {
      await agent.close();
      await cloud.close();
      await Promise.all(devices.map((d) => d.close()));
    }
  });
});

describe("heartbeat and shutdown", () => {
  it("writes the agent record, refreshes it, and removes it on close (clients built lazily)", async () => {
    const b = backends();
    const agentId = `agent-${uid()}`;
    const fromEnv = cloudConfigFromEnv(b.env, { agentId, publicHost: "203.0.113.7" })!;
    expect(fromEnv.aws).toMatchObject({
      sqsEndpoint: b.endpoints.fauxqs,
      dynamodbEndpoint: b.endpoints.dynamodb,
    });
    const cloud = createCloudAdapters({
      ...fromEnv,
      aws: { ...fromEnv.aws, credentials: LOCAL_CREDENTIALS },
      heartbeat: { intervalMs: 100, ttlSeconds: 5 },
    });
    const agentStub = {
      commands: { execute: () => Promise.reject(new Error("no commands in this test")) },
      provisioningChanged: async () => false,
    };
    const readRecord = async () => {
      const out = await b.clients.dynamodb.send(
        new GetItemCommand({
          TableName: b.resources.tables.agents,
          Key: { agentId: { S: agentId } },
          ConsistentRead: true,
        }),
      );
      if (!out.Item) return undefined;
      return AgentRecord.parse({
        agentId: out.Item.agentId?.S,
        commandQueueUrl: out.Item.commandQueueUrl?.S,
        publicHost: out.Item.publicHost?.S,
        startedAt: out.Item.startedAt?.S,
        heartbeatAt: out.Item.heartbeatAt?.S,
        expiresAt: Number(out.Item.expiresAt?.N),
      });
    };
    try {
      const { commandQueueUrl } = await cloud.start(agentStub);
      const first = await readRecord();
      expect(first).toMatchObject({ agentId, commandQueueUrl, publicHost: "203.0.113.7" });
      expect(first!.expiresAt * 1000).toBeGreaterThan(Date.now());
      expect(commandQueueUrl).toContain(b.resources.agentQueuePrefix);
      const later = await eventually(async () => {
        const r = await readRecord();
        return r && r.heartbeatAt > first!.heartbeatAt ? r : undefined;
      });
      expect(later.startedAt).toBe(first!.startedAt);
    } finally {
      await cloud.close();
    }
    expect(await readRecord()).toBeUndefined();
  });

  it("close() aborts the long poll at once, stops polling and flushes the shutdown events", async () => {
    const s = await startStack({ tune: { heartbeat: { intervalMs: 50 } } });
    const device = await s.device(`cam-${uid()}`);
    await device.register();
    // Let heartbeats and a long poll be under way.
    await eventually(async () => (s.spy.count("ReceiveMessageCommand") > 0 ? true : undefined));
    await new Promise((r) => setTimeout(r, 100));
    const started = performance.now();
    await s.close();
    expect(performance.now() - started).toBeLessThan(2_000); // the long poll waits 20 s
    const polls = s.spy.count("ReceiveMessageCommand");
    const heartbeats = s.cloud.metrics().heartbeat_puts;
    await new Promise((r) => setTimeout(r, 200));
    expect(s.spy.count("ReceiveMessageCommand")).toBe(polls);
    expect(s.cloud.metrics()).toMatchObject({
      heartbeat_puts: heartbeats,
      commands_active: 0,
      events_queued: 0,
    });
    // The agent's shutdown events were sent by close().
    const events = queueReader(backends().clients.sqs, eventsQueue());
    const offline = await events.until((m) =>
      eventsOf(m, s.agentId).find((e) => e.type === "offline"),
    );
    expect(offline).toMatchObject({ deviceId: device.deviceId, reason: "agent-shutdown" });
  });

  it("removes only its own heartbeat record", async () => {
    const b = backends();
    const s = await startStack();
    const table = b.resources.tables.agents;
    // Another process took over the id (restart with the same EHOME_AGENT_ID).
    await b.clients.dynamodb.send(
      new PutItemCommand({
        TableName: table,
        Item: { agentId: { S: s.agentId }, startedAt: { S: "2099-01-01T00:00:00.000Z" } },
      }),
    );
    await s.close();
    const out = await b.clients.dynamodb.send(
      new GetItemCommand({ TableName: table, Key: { agentId: { S: s.agentId } } }),
    );
    expect(out.Item?.startedAt?.S).toBe("2099-01-01T00:00:00.000Z");
    await b.clients.dynamodb.send(
      new DeleteItemCommand({ TableName: table, Key: { agentId: { S: s.agentId } } }),
    );
  });
});
