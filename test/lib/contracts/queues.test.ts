import { describe, expect, it } from "vitest";
import { ENV } from "../../../lib/contracts/env.ts";
import {
  AGENT_COMMAND_QUEUE_ATTRIBUTES,
  agentCommandQueueName,
  agentCommandQueuePrefix,
  QUEUE_KEYS,
  QUEUES,
  visibilityTimeoutFor,
} from "../../../lib/contracts/queues.ts";

describe("static queues", () => {
  it("are device-events (→ registry) and command-results (→ command-results)", () => {
    expect(QUEUE_KEYS).toEqual([
      "deviceEvents",
      "commandResults",
      "alarmEvents",
      "upgradeEvents",
      "deviceData",
      "mediaEvents",
    ]);
    expect(QUEUES.deviceData.consumer.handler).toBe("device-data");
    expect(QUEUES.mediaEvents.consumer.handler).toBe("media");
    expect(QUEUES.deviceEvents.consumer.handler).toBe("registry");
    expect(QUEUES.commandResults.consumer.handler).toBe("command-results");
    expect(QUEUES.deviceEvents.envVar).toBe(ENV.DEVICE_EVENTS_QUEUE_URL);
    expect(QUEUES.commandResults.envVar).toBe(ENV.COMMAND_RESULTS_QUEUE_URL);
  });

  it("each have a DLQ, partial batch failures, and a visibility timeout ≥ 6× the consumer timeout", () => {
    for (const key of QUEUE_KEYS) {
      const q = QUEUES[key];
      expect(q.deadLetter.maxReceiveCount).toBeGreaterThan(1);
      expect(q.deadLetter.retentionSeconds).toBeGreaterThan(q.retentionSeconds);
      expect(q.consumer.reportBatchItemFailures).toBe(true);
      expect(q.visibilityTimeoutSeconds).toBe(visibilityTimeoutFor(q.consumer));
      expect(q.visibilityTimeoutSeconds).toBeGreaterThanOrEqual(6 * q.consumer.timeoutSeconds);
      // Lambda: batches above 10 need a batching window; the window is at most 300 s.
      if (q.consumer.batchSize > 10) expect(q.consumer.maxBatchingWindowSeconds).toBeGreaterThan(0);
      expect(q.consumer.maxBatchingWindowSeconds).toBeLessThanOrEqual(300);
    }
  });
});

describe("per-agent command queues", () => {
  it("share one prefix per deployment", () => {
    expect(agentCommandQueuePrefix("ehome")).toBe("ehome-agent-cmd-");
    expect(() => agentCommandQueuePrefix("bad prefix")).toThrow(/stack prefix/);
    expect(() => agentCommandQueuePrefix("")).toThrow(/stack prefix/);
  });

  it("are named prefix + agent id, made SQS-safe and at most 80 characters", () => {
    const prefix = agentCommandQueuePrefix("ehome");
    expect(agentCommandQueueName(prefix, "ip-10-0-1-5.ec2.internal:42")).toBe(
      "ehome-agent-cmd-ip-10-0-1-5-ec2-internal-42",
    );
    const long = agentCommandQueueName(prefix, "a".repeat(200));
    expect(long).toHaveLength(80);
    expect(long.startsWith(prefix)).toBe(true);
    expect(long).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(() => agentCommandQueueName(prefix, "")).toThrow(/empty/);
  });

  it("are created encrypted, with long polling", () => {
    expect(AGENT_COMMAND_QUEUE_ATTRIBUTES.SqsManagedSseEnabled).toBe("true");
    expect(Number(AGENT_COMMAND_QUEUE_ATTRIBUTES.ReceiveMessageWaitTimeSeconds)).toBe(20);
  });
});
