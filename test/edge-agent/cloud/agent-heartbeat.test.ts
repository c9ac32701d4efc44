import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { agentRecord, createAgentHeartbeat } from "../../../edge-agent/cloud/agent-heartbeat.ts";
import type { DynamoSender } from "../../../edge-agent/cloud/aws.ts";
import { AgentRecord } from "../../../lib/contracts/agent-messages.ts";

/** Heartbeat timing with fake timers (the record against DynamoDB Local: cloud-adapters.test.ts). */

interface FakeInput {
  Item?: Record<string, unknown>;
  ConditionExpression?: string;
}

function fakeDynamo() {
  const calls: { name: string; input: FakeInput }[] = [];
  const state = { failPuts: 0 };
  const sender = {
    async send(command: { constructor: { name: string }; input: FakeInput }) {
      calls.push({ name: command.constructor.name, input: command.input });
      if (command.constructor.name === "PutItemCommand" && state.failPuts > 0) {
        state.failPuts--;
        throw Object.assign(new Error("throttled"), { name: "ThrottlingException" });
      }
      return {};
    },
  } as unknown as DynamoSender;
  return { sender, calls, state, puts: () => calls.filter((c) => c.name === "PutItemCommand") };
}

describe("agent heartbeat", () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(new Date("2030-01-01T00:00:00Z"));
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("builds a record the contract accepts, expiring a few intervals after the heartbeat", () => {
    const record = agentRecord(
      {
        agentId: "agent-1",
        commandQueueUrl: "https://sqs.eu-west-1.amazonaws.com/1/ehome-agent-cmd-agent-1",
        publicHost: "203.0.113.7",
        startedAt: Date.parse("2030-01-01T00:00:00Z"),
      },
      Date.parse("2030-01-01T00:01:00Z"),
      30,
    );
    expect(AgentRecord.parse(record)).toEqual(record);
    expect(record).toMatchObject({
      heartbeatAt: "2030-01-01T00:01:00.000Z",
      expiresAt: Date.parse("2030-01-01T00:01:30Z") / 1000,
    });
  });

  it("puts every interval, survives a failed put, and stops with no timer left on close", async () => {
    const db = fakeDynamo();
    const hb = createAgentHeartbeat(
      { agentsTable: "agents", agentId: "agent-1", publicHost: "127.0.0.1", intervalMs: 10_000 },
      { dynamodb: () => db.sender },
    );
    await hb.start("http://sqs.local/000/ehome-agent-cmd-agent-1");
    expect(db.puts()).toHaveLength(1);
    // Default TTL: three intervals.
    expect(db.puts()[0]!.input.Item?.expiresAt).toEqual({
      N: String(Date.parse("2030-01-01T00:00:30Z") / 1000),
    });
    db.state.failPuts = 1;
    await vi.advanceTimersByTimeAsync(10_000);
    expect(db.puts()).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(db.puts()).toHaveLength(3);
    expect(hb.counters()).toEqual({ puts: 2, putErrors: 1 });
    expect(hb.record?.heartbeatAt).toBe("2030-01-01T00:00:20.000Z");

    await hb.close();
    expect(vi.getTimerCount()).toBe(0);
    expect(db.calls.at(-1)).toMatchObject({
      name: "DeleteItemCommand",
      input: { ConditionExpression: "#s = :s" },
    });
    await vi.advanceTimersByTimeAsync(60_000);
    expect(db.puts()).toHaveLength(3);
  });
});
