import { type AttributeValue, DeleteItemCommand, PutItemCommand } from "@aws-sdk/client-dynamodb";
import { AgentRecord } from "../../lib/contracts/agent-messages.ts";
import { agentKey, expiresAt } from "../../lib/contracts/tables.ts";
import { createRateLimiter, type Logger, silentLogger } from "../log.ts";
import type { DynamoSender } from "./aws.ts";

/**
 * The agent's heartbeat record in the agents table (issue 3 item 5, agent half). The API routes a
 * command to the agent holding the device's session only while this record's `expiresAt` is in the
 * future (functions/api/agents.ts `isAgentLive`), so the TTL is a few heartbeat intervals: an agent
 * that dies stops receiving commands within that time, and they end `device-offline` instead of
 * waiting for their deadline. DynamoDB TTL removes the stale item itself, lazily.
 */

export interface AgentHeartbeatConfig {
  agentsTable: string;
  agentId: string;
  /** Host announced to devices and viewers (`EHOME_PUBLIC_HOST`). */
  publicHost: string;
  /** Port of the viewer HTTP server (`EHOME_VIEWER_PORT`), when the agent serves viewers. */
  viewerPort?: number;
  /** Default 10 s. */
  intervalMs?: number;
  /** `expiresAt` is this far after each heartbeat. Default three intervals. */
  ttlSeconds?: number;
}

export interface AgentHeartbeatDeps {
  dynamodb: () => DynamoSender;
  now?: () => number;
  log?: Logger;
}

export interface AgentHeartbeatCounters {
  puts: number;
  putErrors: number;
}

export interface AgentHeartbeat {
  /**
   * Writes the first record (rejects when the table is unusable; may then be called again), then
   * one per interval.
   */
  start(commandQueueUrl: string): Promise<void>;
  /** The record as last written (tests, diagnostics). */
  readonly record: AgentRecord | undefined;
  /**
   * The viewer port once bound (configured as 0, it is known only then): written at once when
   * the heartbeat runs, else with the first record.
   */
  setViewerPort(port: number): void;
  counters(): AgentHeartbeatCounters;
  /** Stops the timer and deletes this agent's record. Idempotent. */
  close(): Promise<void>;
}

/** The record itself: pure, so its shape is checked without a table. */
export function agentRecord(
  fields: {
    agentId: string;
    commandQueueUrl: string;
    publicHost: string;
    viewerPort?: number;
    startedAt: number;
  },
  nowMs: number,
  ttlSeconds: number,
): AgentRecord {
  return AgentRecord.parse({
    agentId: fields.agentId,
    commandQueueUrl: fields.commandQueueUrl,
    publicHost: fields.publicHost,
    ...(fields.viewerPort ? { viewerPort: fields.viewerPort } : {}),
    startedAt: new Date(fields.startedAt).toISOString(),
    heartbeatAt: new Date(nowMs).toISOString(),
    expiresAt: expiresAt(nowMs, ttlSeconds),
  });
}

/** The record in DynamoDB's attribute-value form (strings and numbers only). */
function toItem(record: AgentRecord): Record<string, AttributeValue> {
  const item: Record<string, AttributeValue> = {};
  for (const [name, value] of Object.entries(record)) {
    item[name] = typeof value === "number" ? { N: String(value) } : { S: String(value) };
  }
  return item;
}

const STARTED_AT = "startedAt" satisfies keyof AgentRecord;

export function createAgentHeartbeat(
  config: AgentHeartbeatConfig,
  deps: AgentHeartbeatDeps,
): AgentHeartbeat {
  const intervalMs = config.intervalMs ?? 10_000;
  const ttlSeconds = config.ttlSeconds ?? Math.ceil((3 * intervalMs) / 1000);
  const now = deps.now ?? Date.now;
  const log = deps.log ?? silentLogger;
  const limiter = createRateLimiter({ intervalMs: 60_000 });
  const c: AgentHeartbeatCounters = { puts: 0, putErrors: 0 };
  const key = { agentId: { S: agentKey(config.agentId).agentId } };
  let queueUrl: string | undefined;
  let viewerPort = config.viewerPort;
  let startedAt = 0;
  let last: AgentRecord | undefined;
  let timer: NodeJS.Timeout | undefined;
  let inflight: Promise<void> | undefined;
  let started = false;
  let closed = false;
  let closing: Promise<void> | undefined;

  const put = async (): Promise<void> => {
    const record = agentRecord(
      {
        agentId: config.agentId,
        commandQueueUrl: queueUrl!,
        publicHost: config.publicHost,
        ...(viewerPort ? { viewerPort } : {}),
        startedAt,
      },
      now(),
      ttlSeconds,
    );
    await deps.dynamodb().send(
      new PutItemCommand({
        TableName: config.agentsTable,
        Item: toItem(record),
      }),
    );
    c.puts++;
    last = record;
  };

  const tick = () => {
    timer = undefined;
    if (closed) return;
    inflight = put()
      .catch((err: unknown) => {
        c.putErrors++;
        const { allowed, suppressed } = limiter.allow("put");
        if (allowed) log.error("agent heartbeat failed", { err, suppressed });
      })
      .finally(() => {
        inflight = undefined;
        if (!closed) timer = setTimeout(tick, intervalMs);
      });
  };

  return {
    async start(commandQueueUrl) {
      if (started) throw new Error("heartbeat already started");
      if (closed) throw new Error("heartbeat is closed");
      started = true;
      queueUrl = commandQueueUrl;
      startedAt = now();
      try {
        await put();
      } catch (err) {
        // DynamoDB unreachable: the caller may try again (cloud/index.ts retries in the background).
        started = false;
        throw err;
      }
      if (!closed) timer = setTimeout(tick, intervalMs);
    },
    get record() {
      return last;
    },
    setViewerPort(port) {
      if (port === viewerPort) return;
      viewerPort = port;
      // Running and idle between puts: write now rather than an interval later.
      if (started && !closed && timer && !inflight) {
        clearTimeout(timer);
        tick();
      }
    },
    counters: () => ({ ...c }),
    close() {
      closing ??= (async () => {
        closed = true;
        if (timer) clearTimeout(timer);
        timer = undefined;
        await inflight;
        if (!started || last === undefined) return;
        try {
          // Only our own record: an agent restarted under the same id has another startedAt.
          await deps.dynamodb().send(
            new DeleteItemCommand({
              TableName: config.agentsTable,
              Key: key,
              ConditionExpression: "#s = :s",
              ExpressionAttributeNames: { "#s": STARTED_AT },
              ExpressionAttributeValues: { ":s": { S: last.startedAt } },
            }),
          );
        } catch (err) {
          if ((err as Error).name !== "ConditionalCheckFailedException") {
            log.warn("agent heartbeat record not deleted", { err });
          }
        }
      })();
      return closing;
    },
  };
}
