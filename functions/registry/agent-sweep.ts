import { createHash } from "node:crypto";
import {
  DeleteCommand,
  type DynamoDBDocumentClient,
  PutCommand,
  QueryCommand,
  ScanCommand,
  UpdateCommand,
} from "@aws-sdk/lib-dynamodb";
import type { DeviceEvent } from "../../lib/contracts/events.ts";
import { agentKey, DEVICES_BY_AGENT_INDEX, TABLES } from "../../lib/contracts/tables.ts";
import type { Clock } from "../shared/clock.ts";
import { isConditionalCheckFailed, StorageError } from "../shared/errors.ts";
import type { PresenceItem } from "../shared/items.ts";
import type { Logger } from "../shared/logger.ts";
import { buildDeviceUpdate } from "./repository.ts";
import { type DeviceUpdatePlan, planDeviceUpdate, presenceItemFor } from "./service.ts";

/**
 * The agent-lost sweep (issue 7, multi-agent): an agent that dies without a clean shutdown leaves
 * its devices `online` in the registry, pointing at an agent nobody runs. Agents heartbeat into
 * the agents table every 10 s (edge-agent/cloud/agent-heartbeat.ts); a clean shutdown deletes
 * the record after sending `offline/agent-shutdown` for every device. So a record whose
 * `heartbeatAt` is older than `lostAfterSeconds` belongs to an agent that died, and the sweep
 * (EventBridge every minute on AWS, a timer under `npm start`):
 *
 * 1. scans the agents table (a handful of items) for such records;
 * 2. queries the devices table's `byAgent` index for the devices that agent last held;
 * 3. marks each offline with reason `agent-lost`, by the registry's own conditional write with
 *    the lost agent as owner (`planDeviceUpdate`) plus `status = online`: a device that has
 *    meanwhile registered on another agent (its `agentId` changed), or that its agent already
 *    took offline, is untouched; the version is the sweep's clock in µs, newer than anything the
 *    dead agent emitted before it stopped heartbeating;
 * 4. writes the presence-history entry of each device it took offline (after the device write:
 *    a failure between the two loses that one entry, never marks a moved device);
 * 5. deletes the agent's record once all its devices are done, only if it was not renewed
 *    meanwhile (same `heartbeatAt`), so the next sweep does not redo the work.
 *
 * An agent restarted under the same id (the local default `local`, a Fargate task reusing a
 * private IP) heartbeats again before the deadline, so its previous process is never "lost"; the
 * devices that process held stay `online` under the id. Once the new process has run for
 * `lostAfterSeconds` (time enough for its devices to come back: a KEEPALIVE it does not know gets
 * 403 and the device registers again), and for `restartWindowSeconds` after that, the sweep
 * takes the agent's devices whose presence last changed before the new `startedAt` offline the
 * same way (`agent-lost`, by the same conditional write plus `statusChangedAt < startedAt`).
 *
 * After the tables were unreachable (a DynamoDB outage stops heartbeats and sweeps alike), a run
 * that fails remembers it, and the first run that succeeds again gives every agent a full
 * `lostAfterSeconds` from that moment before judging it lost: live agents' heartbeats land within
 * one interval of the outage's end, so their devices are not marked `agent-lost` by an outage
 * longer than the deadline (issue 7, test/e2e/engines-stopped.test.ts). The memory is this sweep
 * object's (a warm Lambda container, the `npm start` timer); a cold start after an outage judges as
 * before.
 *
 * Limits: a record already removed by DynamoDB TTL (lazy; hours to days after `expiresAt`) is not
 * seen, so the sweep must run well within that (it runs every minute). An agent cut off from
 * DynamoDB but still alive is indistinguishable from a dead one: its devices are marked
 * `agent-lost` until its next coalesced last-seen, newer than the sweep, brings them back online
 * (`reviveLost` in service.ts; docs/multi-agent.md).
 */

export const AGENT_LOST_AFTER_VARIABLE = "AGENT_LOST_AFTER_SECONDS";

export interface AgentSweepConfig {
  /** An agent whose last heartbeat is older than this is lost. Default 60 (heartbeat 10 s). */
  readonly lostAfterSeconds: number;
  readonly presenceTtlSeconds: number;
  /** Device writes in flight at once. */
  readonly concurrency: number;
  /**
   * Stop taking devices after this long (the registry function times out at 30 s); an agent not
   * finished keeps its record, so the next run goes on with it.
   */
  readonly budgetMs: number;
  /** How long after `lostAfterSeconds` a restarted agent's earlier devices are looked for. */
  readonly restartWindowSeconds: number;
}

export const DEFAULT_AGENT_SWEEP_CONFIG: AgentSweepConfig = {
  lostAfterSeconds: 60,
  presenceTtlSeconds: TABLES.presence.defaultTtlSeconds,
  // About 10 ms per conditional write from Lambda: 64 in flight take 100k devices in ~16 s.
  concurrency: 64,
  budgetMs: 25_000,
  // Three runs of the every-minute schedule.
  restartWindowSeconds: 180,
};

/** What the sweep reads of an agent record (`AgentRecord` without the routing fields). */
export interface AgentBeat {
  readonly agentId: string;
  readonly startedAt: string;
  readonly heartbeatAt: string;
}

export interface AgentSweepRepository {
  listAgents(): Promise<AgentBeat[]>;
  /** One page of the device ids whose `agentId` is `agentId`. */
  devicesOf(
    agentId: string,
    cursor?: Record<string, unknown>,
  ): Promise<{ deviceIds: string[]; cursor?: Record<string, unknown> }>;
  /** The conditional device write; false when its condition failed (moved, offline, newer). */
  markLost(plan: DeviceUpdatePlan): Promise<boolean>;
  putPresence(item: PresenceItem): Promise<void>;
  /** Deletes the record if its `heartbeatAt` is still `heartbeatAt`. */
  forgetAgent(agentId: string, heartbeatAt: string): Promise<void>;
}

export interface AgentSweepResult {
  /** Agents found lost this run. */
  readonly agents: string[];
  /** Agents restarted under the same id whose earlier devices were looked for this run. */
  readonly restarted: string[];
  /** Devices taken offline with reason `agent-lost`. */
  readonly devicesOffline: number;
  /** Devices of lost agents left alone (moved to another agent, already offline). */
  readonly devicesSkipped: number;
}

export interface AgentSweep {
  sweep(): Promise<AgentSweepResult>;
}

/** Stable per (agent incarnation, device): a retried sweep writes the same event id. */
function lostEventId(agent: AgentBeat, deviceId: string): string {
  const digest = createHash("sha256")
    .update(`${agent.agentId}\n${agent.startedAt}\n${deviceId}`)
    .digest("hex");
  return `agent-lost-${digest.slice(0, 40)}`;
}

export function isAgentLost(agent: AgentBeat, nowMs: number, lostAfterSeconds: number): boolean {
  const beat = Date.parse(agent.heartbeatAt);
  return Number.isFinite(beat) && nowMs - beat > lostAfterSeconds * 1000;
}

/** Restarted `lostAfterSeconds` ago, give or take the window: its earlier devices are due. */
export function isRestartDue(
  agent: AgentBeat,
  nowMs: number,
  config: Pick<AgentSweepConfig, "lostAfterSeconds" | "restartWindowSeconds">,
): boolean {
  const started = Date.parse(agent.startedAt);
  if (!Number.isFinite(started)) return false;
  const age = nowMs - started;
  return (
    age > config.lostAfterSeconds * 1000 &&
    age <= (config.lostAfterSeconds + config.restartWindowSeconds) * 1000
  );
}

export function createAgentSweep(
  config: AgentSweepConfig,
  deps: { repository: AgentSweepRepository; clock: Clock; logger: Logger },
): AgentSweep {
  const { repository, clock, logger } = deps;
  /** A run failed since the last successful one (the tables unreachable, most likely). */
  let failedSinceSuccess = false;
  /** Start of the grace after an outage: agents are judged from here, not from their heartbeat. */
  let reachableSince: number | undefined;

  /** `changedBefore`: only devices whose presence last changed before it (a restarted agent). */
  const sweepAgent = async (agent: AgentBeat, until: number, changedBefore?: string) => {
    let offline = 0;
    let skipped = 0;
    let unfinished = false;
    let cursor: Record<string, unknown> | undefined;
    do {
      const page = await repository.devicesOf(agent.agentId, cursor);
      cursor = page.cursor;
      const queue = [...page.deviceIds];
      const worker = async () => {
        for (let deviceId = queue.shift(); deviceId !== undefined; deviceId = queue.shift()) {
          const nowMs = clock.now();
          if (nowMs > until) {
            unfinished = true;
            return;
          }
          const event: DeviceEvent = {
            type: "offline",
            reason: "agent-lost",
            eventId: lostEventId(agent, deviceId),
            deviceId,
            agentId: agent.agentId,
            version: nowMs * 1000,
            at: new Date(nowMs).toISOString(),
          };
          const plan = planDeviceUpdate(event, event.at);
          if (!plan) continue;
          const guarded = {
            ...plan,
            requireStatus: "online" as const,
            ...(changedBefore === undefined ? {} : { changedBefore }),
          };
          if (await repository.markLost(guarded)) {
            offline++;
            const item = presenceItemFor(event, config.presenceTtlSeconds);
            if (item) await repository.putPresence(item);
          } else {
            skipped++;
          }
        }
      };
      await Promise.all(Array.from({ length: Math.max(1, config.concurrency) }, worker));
    } while (cursor && !unfinished);
    if (unfinished) {
      logger.warn("agent sweep out of time; the next run goes on", { agentId: agent.agentId });
    } else if (changedBefore === undefined) {
      await repository.forgetAgent(agent.agentId, agent.heartbeatAt);
    }
    return { offline, skipped };
  };

  return {
    async sweep() {
      try {
        return await run();
      } catch (err) {
        failedSinceSuccess = true;
        throw err;
      }
    },
  };

  async function run() {
    const nowMs = clock.now();
    const until = nowMs + config.budgetMs;
    const all = await repository.listAgents();
    if (failedSinceSuccess) {
      failedSinceSuccess = false;
      reachableSince = nowMs;
      logger.info("agent sweep: tables reachable again; agents get a full deadline from now", {
        lostAfterSeconds: config.lostAfterSeconds,
      });
    }
    const inGrace =
      reachableSince !== undefined && nowMs - reachableSince <= config.lostAfterSeconds * 1000;
    const lost = inGrace ? [] : all.filter((a) => isAgentLost(a, nowMs, config.lostAfterSeconds));
    const result = {
      agents: [] as string[],
      restarted: [] as string[],
      devicesOffline: 0,
      devicesSkipped: 0,
    };
    // Lost agents first: within the time budget they matter most.
    for (const agent of lost) {
      const { offline, skipped } = await sweepAgent(agent, until);
      result.agents.push(agent.agentId);
      result.devicesOffline += offline;
      result.devicesSkipped += skipped;
      logger.warn("agent lost: its devices are offline", {
        agentId: agent.agentId,
        heartbeatAt: agent.heartbeatAt,
        devicesOffline: offline,
        devicesSkipped: skipped,
      });
    }
    for (const agent of all) {
      if (lost.includes(agent) || !isRestartDue(agent, nowMs, config)) continue;
      const { offline, skipped } = await sweepAgent(agent, until, agent.startedAt);
      result.restarted.push(agent.agentId);
      result.devicesOffline += offline;
      result.devicesSkipped += skipped;
      if (offline > 0) {
        logger.warn("restarted agent: devices of its previous process are offline", {
          agentId: agent.agentId,
          startedAt: agent.startedAt,
          devicesOffline: offline,
        });
      }
    }
    return result;
  }
}

export function createAgentSweepRepository(
  config: {
    readonly devicesTable: string;
    readonly presenceTable: string;
    readonly agentsTable: string;
    /** Device ids per query page (DynamoDB's own limit, 1 MB, when unset). */
    readonly pageSize?: number;
  },
  deps: { documentClient: DynamoDBDocumentClient },
): AgentSweepRepository {
  const db = deps.documentClient;
  return {
    async listAgents() {
      const agents: AgentBeat[] = [];
      let startKey: Record<string, unknown> | undefined;
      try {
        do {
          const out = await db.send(
            new ScanCommand({
              TableName: config.agentsTable,
              ProjectionExpression: "agentId, startedAt, heartbeatAt",
              ...(startKey ? { ExclusiveStartKey: startKey } : {}),
            }),
          );
          for (const item of out.Items ?? []) {
            const { agentId, startedAt, heartbeatAt } = item;
            if (
              typeof agentId === "string" &&
              typeof startedAt === "string" &&
              typeof heartbeatAt === "string"
            ) {
              agents.push({ agentId, startedAt, heartbeatAt });
            }
          }
          startKey = out.LastEvaluatedKey;
        } while (startKey);
      } catch (error) {
        throw new StorageError("agents.Scan", error);
      }
      return agents;
    },

    async devicesOf(agentId, cursor) {
      try {
        const out = await db.send(
          new QueryCommand({
            TableName: config.devicesTable,
            IndexName: DEVICES_BY_AGENT_INDEX,
            KeyConditionExpression: "#a = :a",
            ExpressionAttributeNames: { "#a": "agentId" },
            ExpressionAttributeValues: { ":a": agentId },
            ...(config.pageSize ? { Limit: config.pageSize } : {}),
            ...(cursor ? { ExclusiveStartKey: cursor } : {}),
          }),
        );
        const deviceIds = (out.Items ?? [])
          .map((item) => item.deviceId)
          .filter((id): id is string => typeof id === "string");
        return out.LastEvaluatedKey ? { deviceIds, cursor: out.LastEvaluatedKey } : { deviceIds };
      } catch (error) {
        throw new StorageError("devices.Query(byAgent)", error);
      }
    },

    async markLost(plan) {
      try {
        await db.send(
          new UpdateCommand({ TableName: config.devicesTable, ...buildDeviceUpdate(plan) }),
        );
        return true;
      } catch (error) {
        if (isConditionalCheckFailed(error)) return false;
        throw new StorageError("devices.UpdateItem", error);
      }
    },

    async putPresence(item) {
      try {
        await db.send(new PutCommand({ TableName: config.presenceTable, Item: item }));
      } catch (error) {
        throw new StorageError("presence.PutItem", error);
      }
    },

    async forgetAgent(agentId, heartbeatAt) {
      try {
        await db.send(
          new DeleteCommand({
            TableName: config.agentsTable,
            Key: agentKey(agentId),
            ConditionExpression: "#h = :h",
            ExpressionAttributeNames: { "#h": "heartbeatAt" },
            ExpressionAttributeValues: { ":h": heartbeatAt },
          }),
        );
      } catch (error) {
        if (isConditionalCheckFailed(error)) return; // it heartbeats again: not lost after all
        throw new StorageError("agents.DeleteItem", error);
      }
    },
  };
}
