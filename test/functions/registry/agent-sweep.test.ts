import { GetCommand, PutCommand } from "@aws-sdk/lib-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type AgentSweep,
  createAgentSweep,
  createAgentSweepRepository,
  DEFAULT_AGENT_SWEEP_CONFIG,
  isAgentLost,
  isRestartDue,
} from "../../../functions/registry/agent-sweep.ts";
import {
  agentSweepConfigFromEnv,
  createRegistryHandler,
  type RegistryHandler,
} from "../../../functions/registry/handler.ts";
import { createRegistryRepository } from "../../../functions/registry/repository.ts";
import {
  createRegistryService,
  DEFAULT_REGISTRY_CONFIG,
} from "../../../functions/registry/service.ts";
import type { DeviceItem, PresenceItem } from "../../../functions/shared/items.ts";
import type { DeviceEvent } from "../../../lib/contracts/events.ts";
import { useLocalBackends } from "../../helpers/local-backends.ts";
import {
  type FunctionClients,
  functionClients,
  offsetClock,
  silentLogger,
  sqsEvent,
} from "../support.ts";
import { presenceHistory } from "./presence-history.ts";

/**
 * The agent-lost sweep against DynamoDB Local: devices of an agent whose heartbeat stopped go
 * offline with reason `agent-lost`, a device that moved to another agent is untouched, and the
 * dead agent's record is removed once done.
 */

const backends = useLocalBackends();
let clients: FunctionClients;
let handler: RegistryHandler;
let sweep: AgentSweep;
const clock = offsetClock();
const LOST_AFTER_S = 60;

beforeAll(() => {
  clients = functionClients(backends());
  const { tables } = backends().resources;
  const repository = createRegistryRepository(
    { devicesTable: tables.devices, presenceTable: tables.presence },
    { documentClient: clients.documentClient },
  );
  handler = createRegistryHandler({
    service: createRegistryService(DEFAULT_REGISTRY_CONFIG, {
      repository,
      clock,
      logger: silentLogger,
    }),
    logger: silentLogger,
  });
  sweep = createAgentSweep(
    { ...DEFAULT_AGENT_SWEEP_CONFIG, lostAfterSeconds: LOST_AFTER_S, concurrency: 4 },
    {
      repository: createAgentSweepRepository(
        {
          devicesTable: tables.devices,
          presenceTable: tables.presence,
          agentsTable: tables.agents,
          pageSize: 25,
        },
        { documentClient: clients.documentClient },
      ),
      clock,
      logger: silentLogger,
    },
  );
});
afterAll(() => clients?.close());

let counter = 0;
const uid = (label: string) => `${label}-${++counter}-${Date.now().toString(36)}`;

/** An event stamped like the agent stamps them: version = its clock in µs. */
function event(agentId: string, deviceId: string, fields: Record<string, unknown>): DeviceEvent {
  const now = clock.now();
  return {
    eventId: uid("ev"),
    deviceId,
    agentId,
    version: now * 1000 + ++counter,
    at: new Date(now).toISOString(),
    ...fields,
  } as DeviceEvent;
}
const registered = (agentId: string, deviceId: string) =>
  event(agentId, deviceId, { type: "registered", address: "198.51.100.7:5060" });

async function heartbeat(agentId: string, atMs: number, startedAtMs = atMs - 5000): Promise<void> {
  await clients.documentClient.send(
    new PutCommand({
      TableName: backends().resources.tables.agents,
      Item: {
        agentId,
        commandQueueUrl: `http://sqs.local/000000000000/q-${agentId}`,
        publicHost: "127.0.0.1",
        startedAt: new Date(startedAtMs).toISOString(),
        heartbeatAt: new Date(atMs).toISOString(),
        expiresAt: Math.floor(atMs / 1000) + 30,
      },
    }),
  );
}

async function device(deviceId: string): Promise<DeviceItem | undefined> {
  const out = await clients.documentClient.send(
    new GetCommand({
      TableName: backends().resources.tables.devices,
      Key: { deviceId },
      ConsistentRead: true,
    }),
  );
  return out.Item as DeviceItem | undefined;
}

async function agentRecord(agentId: string) {
  const out = await clients.documentClient.send(
    new GetCommand({ TableName: backends().resources.tables.agents, Key: { agentId } }),
  );
  return out.Item;
}

function history(deviceId: string): Promise<PresenceItem[]> {
  return presenceHistory(clients, backends(), deviceId);
}

async function apply(...events: DeviceEvent[]): Promise<void> {
  const response = await handler(sqsEvent(...events));
  expect(response.batchItemFailures).toEqual([]);
}

describe("agent-lost sweep on DynamoDB Local", () => {
  it("takes a dead agent's online devices offline (agent-lost), leaves moved and offline ones", async () => {
    const dead = uid("agent-dead");
    const live = uid("agent-live");
    const [d1, d2, moved, down] = [uid("d"), uid("d"), uid("d"), uid("d")];
    await apply(
      registered(dead, d1),
      registered(dead, d2),
      registered(dead, moved),
      registered(dead, down),
    );
    await apply(event(dead, down, { type: "offline", reason: "keepalive-timeout" }));
    // `moved` re-registers on the live agent: it is no longer the dead agent's device.
    await apply(registered(live, moved));
    const t0 = clock.now();
    await heartbeat(dead, t0);
    await heartbeat(live, t0);

    // Within the deadline nothing happens.
    clock.advance((LOST_AFTER_S - 5) * 1000);
    expect((await sweep.sweep()).agents).not.toContain(dead);
    expect((await device(d1))?.status).toBe("online");

    // The live agent keeps heartbeating; the dead one stopped at t0.
    clock.advance(10_000);
    await heartbeat(live, clock.now());
    const result = await sweep.sweep();
    expect(result.agents).toEqual([dead]);
    // `moved` is no longer under the dead agent in the byAgent index; `down` is, and is skipped.
    expect(result).toMatchObject({ devicesOffline: 2, devicesSkipped: 1 });
    for (const id of [d1, d2]) {
      expect(await device(id)).toMatchObject({
        status: "offline",
        offlineReason: "agent-lost",
        agentId: dead,
      });
      const [last] = await history(id);
      expect(last).toMatchObject({ type: "offline", reason: "agent-lost", agentId: dead });
    }
    expect(await device(moved)).toMatchObject({ status: "online", agentId: live });
    expect((await history(moved))[0]).toMatchObject({ type: "registered", agentId: live });
    expect(await device(down)).toMatchObject({ offlineReason: "keepalive-timeout" });
    // Done with it: the record is gone, the live agent's stays; a second sweep finds nothing.
    expect(await agentRecord(dead)).toBeUndefined();
    expect(await agentRecord(live)).toBeDefined();
    expect(await sweep.sweep()).toMatchObject({ agents: [], devicesOffline: 0, devicesSkipped: 0 });
  });

  it("a device that comes back on any agent after the sweep is online again", async () => {
    const dead = uid("agent-dead");
    const id = uid("d");
    await apply(registered(dead, id));
    await heartbeat(dead, clock.now());
    clock.advance((LOST_AFTER_S + 1) * 1000);
    await sweep.sweep();
    expect((await device(id))?.offlineReason).toBe("agent-lost");
    clock.advance(1000);
    await apply(registered(uid("agent-new"), id));
    expect((await device(id))?.status).toBe("online");
  });

  it("an agent swept as lost that was alive after all: its next last-seen brings the device back online", async () => {
    const agentId = uid("agent-cut-off");
    const id = uid("d");
    await apply(registered(agentId, id));
    await heartbeat(agentId, clock.now());
    // A last-seen the agent emitted before the sweep, delivered after it: too old to revive.
    const early = event(agentId, id, { type: "last-seen", lastSeen: new Date().toISOString() });
    clock.advance((LOST_AFTER_S + 1) * 1000);
    await sweep.sweep();
    expect((await device(id))?.offlineReason).toBe("agent-lost");
    await apply(early);
    expect((await device(id))?.status).toBe("offline");
    // Its next flush, after the sweep: the agent holds the session, the device is online.
    clock.advance(1000);
    await apply(
      event(agentId, id, { type: "last-seen", lastSeen: new Date(clock.now()).toISOString() }),
    );
    expect(await device(id)).toMatchObject({ status: "online", agentId });
    expect(await device(id)).not.toHaveProperty("offlineReason");
    expect((await history(id)).map((h) => `${h.type}:${h.reason ?? h.address}`)).toEqual([
      "online:198.51.100.7:5060",
      "offline:agent-lost",
      "registered:198.51.100.7:5060",
    ]);
    // Only the owner speaks for the device: another agent's offline changes nothing.
    await apply(event(uid("agent-other"), id, { type: "offline", reason: "keepalive-timeout" }));
    expect((await device(id))?.status).toBe("online");
  });

  it("an agent restarted under the same id: devices of its previous process go agent-lost, those that came back stay", async () => {
    const agentId = uid("agent-restarted");
    const [gone, back] = [uid("d"), uid("d")];
    await apply(registered(agentId, gone), registered(agentId, back));
    // The process dies and a new one starts under the same id; only `back` registers with it.
    clock.advance(5_000);
    const restartedAt = clock.now();
    clock.advance(1_000);
    await apply(registered(agentId, back));
    await heartbeat(agentId, clock.now(), restartedAt);

    // Before the new process has run for the deadline, nothing happens (devices may still come).
    expect((await sweep.sweep()).restarted).not.toContain(agentId);
    expect((await device(gone))?.status).toBe("online");

    clock.advance(LOST_AFTER_S * 1000);
    await heartbeat(agentId, clock.now(), restartedAt);
    const result = await sweep.sweep();
    expect(result.restarted).toContain(agentId);
    expect(result.agents).not.toContain(agentId);
    expect(await device(gone)).toMatchObject({ status: "offline", offlineReason: "agent-lost" });
    expect(await device(back)).toMatchObject({ status: "online", agentId });
    // The live agent's record stays.
    expect(await agentRecord(agentId)).toBeDefined();
  });

  it("out of time, it stops and keeps the agent's record, so the next run goes on", async () => {
    const dead = uid("agent-slow");
    const id = uid("d");
    await apply(registered(dead, id));
    await heartbeat(dead, clock.now());
    clock.advance((LOST_AFTER_S + 1) * 1000);
    const { tables } = backends().resources;
    const hurried = createAgentSweep(
      { ...DEFAULT_AGENT_SWEEP_CONFIG, lostAfterSeconds: LOST_AFTER_S, budgetMs: -1 },
      {
        repository: createAgentSweepRepository(
          {
            devicesTable: tables.devices,
            presenceTable: tables.presence,
            agentsTable: tables.agents,
          },
          { documentClient: clients.documentClient },
        ),
        clock,
        logger: silentLogger,
      },
    );
    expect((await hurried.sweep()).agents).toContain(dead);
    expect((await device(id))?.status).toBe("online");
    expect(await agentRecord(dead)).toBeDefined();
    await sweep.sweep();
    expect((await device(id))?.offlineReason).toBe("agent-lost");
    expect(await agentRecord(dead)).toBeUndefined();
  });

  it("pages through an agent with more devices than one query page returns", async () => {
    const dead = uid("agent-big");
    // Pages of 25 device ids (the repository's pageSize above): five pages, every device reached.
    const ids = Array.from({ length: 120 }, () => uid("d"));
    for (let i = 0; i < ids.length; i += 10) {
      await apply(...ids.slice(i, i + 10).map((id) => registered(dead, id)));
    }
    await heartbeat(dead, clock.now());
    clock.advance((LOST_AFTER_S + 1) * 1000);
    const result = await sweep.sweep();
    expect(result.agents).toContain(dead);
    // Agents left by the tests above are swept too, so at least these 120.
    expect(result.devicesOffline).toBeGreaterThanOrEqual(120);
    const statuses = await Promise.all(ids.map(async (id) => (await device(id))?.status));
    expect(new Set(statuses)).toEqual(new Set(["offline"]));
  });
});

describe("agent-lost deadline", () => {
  it("an agent is lost once its last heartbeat is older than the deadline", () => {
    const beat = { agentId: "a", startedAt: "2025-01-01T00:00:00.000Z" };
    const at = Date.parse("2025-01-01T00:01:00.000Z");
    expect(isAgentLost({ ...beat, heartbeatAt: "2025-01-01T00:00:00.000Z" }, at, 60)).toBe(false);
    expect(isAgentLost({ ...beat, heartbeatAt: "2025-01-01T00:00:00.000Z" }, at + 1, 60)).toBe(
      true,
    );
    expect(isAgentLost({ ...beat, heartbeatAt: "not a time" }, at, 60)).toBe(false);
  });

  it("a restarted agent's earlier devices are due from the deadline to the end of the window", () => {
    const beat = { agentId: "a", startedAt: "2025-01-01T00:00:00.000Z", heartbeatAt: "x" };
    const t = Date.parse(beat.startedAt);
    const config = { lostAfterSeconds: 60, restartWindowSeconds: 180 };
    expect(isRestartDue(beat, t + 60_000, config)).toBe(false);
    expect(isRestartDue(beat, t + 60_001, config)).toBe(true);
    expect(isRestartDue(beat, t + 240_000, config)).toBe(true);
    expect(isRestartDue(beat, t + 240_001, config)).toBe(false);
  });

  it("is 60 s by default; AGENT_LOST_AFTER_SECONDS changes it, nonsense is refused", () => {
    expect(agentSweepConfigFromEnv({}).lostAfterSeconds).toBe(60);
    expect(agentSweepConfigFromEnv({ AGENT_LOST_AFTER_SECONDS: "5" }).lostAfterSeconds).toBe(5);
    expect(() => agentSweepConfigFromEnv({ AGENT_LOST_AFTER_SECONDS: "0" })).toThrow(
      /AGENT_LOST_AFTER_SECONDS/,
    );
  });
});

describe("agent sweep after the tables were unreachable (issue 7, engines stopped)", () => {
  it("does not judge a live agent lost right after an outage longer than the deadline; a dead one is lost a deadline later", async () => {
    let nowMs = Date.parse("2026-01-01T00:00:00Z");
    let reachable = true;
    const beats = new Map<string, string>([
      ["live", new Date(nowMs).toISOString()],
      ["dead", new Date(nowMs).toISOString()],
    ]);
    const marked: string[] = [];
    const unreachable = () => {
      if (!reachable) throw new Error("connect ECONNREFUSED (table unreachable)");
    };
    const s = createAgentSweep(
      { ...DEFAULT_AGENT_SWEEP_CONFIG, lostAfterSeconds: LOST_AFTER_S },
      {
        repository: {
          async listAgents() {
            unreachable();
            return [...beats].map(([agentId, heartbeatAt]) => ({
              agentId,
              heartbeatAt,
              startedAt: "2025-12-31T00:00:00Z",
            }));
          },
          async devicesOf(agentId) {
            return { deviceIds: [`${agentId}-cam`] };
          },
          async markLost(plan) {
            marked.push(plan.deviceId);
            return true;
          },
          async putPresence() {},
          async forgetAgent(agentId) {
            beats.delete(agentId);
          },
        },
        clock: { now: () => nowMs, sleep: async () => {} },
        logger: silentLogger,
      },
    );
    // 90 s outage: heartbeats and sweeps fail alike.
    reachable = false;
    for (let i = 0; i < 6; i++) {
      nowMs += 15_000;
      await expect(s.sweep()).rejects.toThrow(/unreachable/);
    }
    reachable = true;
    // Back: both heartbeats are 90 s old, but agents get a full deadline from now.
    nowMs += 1_000;
    expect((await s.sweep()).agents).toEqual([]);
    // The live agent heartbeats again within an interval; the dead one never does.
    nowMs += 10_000;
    beats.set("live", new Date(nowMs).toISOString());
    nowMs += 40_000;
    expect((await s.sweep()).agents).toEqual([]);
    nowMs += 15_000; // 65 s after the tables came back
    const after = await s.sweep();
    expect(after.agents).toEqual(["dead"]);
    expect(marked).toEqual(["dead-cam"]);
  });
});
