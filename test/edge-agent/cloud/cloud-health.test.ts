import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { DynamoSender, SqsSender } from "../../../edge-agent/cloud/aws.ts";
import { type CloudAdapters, createCloudAdapters } from "../../../edge-agent/cloud/index.ts";
import type { AlarmQueueMessage } from "../../../lib/contracts/alarms.ts";
import type { DeviceEvent } from "../../../lib/contracts/events.ts";

/**
 * The adapters' outage view (issue 7): `health()` sums the sinks for /healthz, `metrics()` carries
 * `*_dropped_total{kind="…"}`, and each sink spills under `<spillDir>/<agentId>/<sink>.jsonl`.
 */

const down = {
  async send() {
    throw Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" });
  },
} as unknown as SqsSender & DynamoSender;

let dir: string;
let cloud: CloudAdapters | undefined;
afterEach(async () => {
  await cloud?.close();
  cloud = undefined;
  rmSync(dir, { recursive: true, force: true });
});

describe("cloud adapters under an SQS outage", () => {
  it("report reachability, buffered, spilled and per-kind drops; spill files are per agent and sink", async () => {
    dir = mkdtempSync(join(tmpdir(), "ehome-health-"));
    cloud = createCloudAdapters(
      {
        agentId: "agent-h",
        publicHost: "127.0.0.1",
        deviceEventsQueueUrl: "http://sqs.local/1/device-events",
        commandResultsQueueUrl: "http://sqs.local/1/results",
        alarmEventsQueueUrl: "http://sqs.local/1/alarm-events",
        agentQueuePrefix: "cmd-",
        devicesTable: "Devices",
        agentsTable: "Agents",
        // 1200 bytes of spill: a few alarms fit, the rest are dropped (loudly).
        buffer: { maxQueuedBytes: 64 * 1024, spillDir: dir, spillMaxBytes: 1200 },
        events: { maxQueued: 2, lingerMs: 1, closeTimeoutMs: 50 },
      },
      { sqs: down, dynamodb: down },
    );
    expect(cloud.health()).toMatchObject({ cloudReachable: true, buffered: 0 });
    for (let i = 0; i < 20; i++) {
      cloud.alarmEvents!.emit({
        type: "alarm",
        eventId: `e-${i}`,
        agentId: "agent-h",
        deviceId: "cam-1",
        sequence: i,
      } as unknown as AlarmQueueMessage);
    }
    cloud.events.emit({ type: "online", deviceId: "cam-1" } as unknown as DeviceEvent);
    await new Promise((r) => setTimeout(r, 50));
    const h = cloud.health();
    expect(h.cloudReachable).toBe(false);
    const alarms = cloud.alarmEvents!.counters();
    // Alarms go through the journal; what fits neither the journal (1200 bytes) nor memory (2)
    // is dropped. Every alarm is accounted for.
    expect(
      alarms.journaled + alarms.spilled + alarms.dropped + (alarms.queued - alarms.restored),
    ).toBe(20);
    expect(alarms.queued).toBe(2);
    expect(h.buffered).toBe(3); // 2 alarms + 1 device event in memory
    expect(h.spilled).toBeGreaterThan(0);
    expect(h.dropped).toBeGreaterThan(0);
    expect(h.droppedByKind).toEqual({ alarm: h.dropped });
    const m = cloud.metrics();
    expect(m['alarm_events_dropped_total{kind="alarm"}']).toBe(h.dropped);
    expect(m.alarm_events_cloud_reachable).toBe(0);
    expect(m.alarm_events_spilled).toBe(h.spilled);
    expect(existsSync(join(dir, "agent-h", "alarm-events.jsonl"))).toBe(true);
    // The device-events sink never overflowed: it made no files.
    expect(existsSync(join(dir, "agent-h", "device-events.jsonl"))).toBe(false);
    await cloud.close();
    // What memory held at close is kept for the next start.
    expect(existsSync(join(dir, "agent-h", "alarm-events.head.jsonl"))).toBe(true);
    expect(existsSync(join(dir, "agent-h", "device-events.head.jsonl"))).toBe(true);
  });
});
