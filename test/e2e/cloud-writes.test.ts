import { describe, expect, it } from "vitest";
import { QUEUES } from "../../lib/contracts/queues.ts";
import { useLocalBackends } from "../helpers/local-backends.ts";
import { type FleetDay, simulateFleetDay } from "./helpers/fleet-day.ts";
import {
  feedRegistry,
  itemBytes,
  type RegistryWrites,
  rawDeviceItem,
} from "./helpers/registry-feed.ts";

/**
 * Cloud writes per device per day (issue 3 "Show"; architecture §2 "heartbeats stay at the edge"):
 * 50 devices keep alive for a simulated day in fake time against the real agent core and SQS event
 * sink (helpers/fleet-day.ts); every event the agent sent is then applied by the registry
 * function's handler to DynamoDB Local in its event-source batches (helpers/registry-feed.ts),
 * counting every write. Run at the defaults (keepalive 15 s, last-seen flush 600 s) and with the
 * keepalive at 5 s: the counts must not move.
 *
 * Prints one `CLOUD_WRITES {json}` line per run; docs/BENCHMARKS.md ("Cloud writes per device")
 * quotes them and the cost computed from them.
 */

const DEVICES = 50;
const DAY_S = 86_400;
const MONTH_DAYS = 30;
const LIMIT = 150;

/**
 * Prices assumed (us-east-1, on-demand, list prices as last known offline; free tiers ignored).
 * SQS standard $0.40 per million requests; DynamoDB on-demand $0.625 per million write request
 * units; Lambda arm64 $0.20 per million requests and $0.0000133334 per GB-second.
 */
const PRICES_USD = {
  sqsPerRequest: 0.4e-6,
  dynamoPerWru: 0.625e-6,
  lambdaPerInvocation: 0.2e-6,
  lambdaPerGbSecond: 0.0000133334,
};
/** The registry function's memory (lib/constructs/function-defaults.ts default). */
const LAMBDA_GB = 512 / 1024;
/** Billed duration assumed per invocation of up to 25 records (~25 concurrent UpdateItems). */
const LAMBDA_MS_PER_INVOCATION = 100;
/** SQS returns at most 10 messages per ReceiveMessage and deletes at most 10 per batch call. */
const SQS_MAX_PER_CALL = 10;

const backends = useLocalBackends();

function summarise(day: FleetDay, writes: RegistryWrites, deviceItemBytes: number) {
  const per = (n: number) => Math.round((n / DEVICES) * 100) / 100;
  const byType: Record<string, number> = {};
  for (const e of day.events) byType[e.type] = (byType[e.type] ?? 0) + 1;
  const messages = day.events.length;
  const wruPerWrite = Math.max(1, Math.ceil(deviceItemBytes / 1024));
  const dynamoWrites = writes.updateItem + writes.putItem;
  const wru = writes.updateItem * wruPerWrite + writes.putItem + writes.indexWrites * wruPerWrite;
  // At fleet scale the poller's batches are full (a last-seen flush sends every device at once).
  const batch = QUEUES.deviceEvents.consumer.batchSize;
  const sqsRequests = day.batches.length + 2 * Math.ceil(messages / SQS_MAX_PER_CALL); // send + receive + delete
  const invocations = Math.ceil(messages / batch);
  const month = (n: number) => (n / DEVICES) * MONTH_DAYS;
  const cost = {
    sqs: month(sqsRequests) * PRICES_USD.sqsPerRequest,
    dynamodb: month(wru) * PRICES_USD.dynamoPerWru,
    lambda:
      month(invocations) *
      (PRICES_USD.lambdaPerInvocation +
        (LAMBDA_MS_PER_INVOCATION / 1000) * LAMBDA_GB * PRICES_USD.lambdaPerGbSecond),
  };
  const round = (usd: number) => Number(usd.toPrecision(3));
  return {
    bench: "cloud-writes-per-device-day",
    devices: DEVICES,
    keepAliveSeconds: day.keepAliveSeconds,
    lastSeenFlushSeconds: day.lastSeenFlushSeconds,
    simulatedSeconds: DAY_S,
    keepalivesPerDevice: day.keepalivesPerDevice,
    eventsPerDevice: Object.fromEntries(Object.entries(byType).map(([t, n]) => [t, per(n)])),
    sqsMessagesPerDevice: per(messages),
    sendMessageBatchCallsPerDevice: per(day.batches.length),
    dynamoWritesPerDevice: per(dynamoWrites),
    updateItemPerDevice: per(writes.updateItem),
    putItemPerDevice: per(writes.putItem),
    conditionFailedPerDevice: per(writes.conditionFailed),
    indexWritesPerDevice: per(writes.indexWrites),
    deviceItemBytes,
    wruPerDevice: per(wru),
    sqsRequestsPerDevice: per(sqsRequests),
    lambdaInvocationsPerDevice: per(invocations),
    sqsMessagesPlusDynamoWritesPerDevice: per(messages + dynamoWrites),
    usdPerDeviceMonth: {
      sqs: round(cost.sqs),
      dynamodb: round(cost.dynamodb),
      lambda: round(cost.lambda),
      total: round(cost.sqs + cost.dynamodb + cost.lambda),
    },
    localMeanInvocationMs: Math.round(writes.meanInvocationMs * 10) / 10,
  };
}

function edgeDay(keepAliveSeconds: number, idPrefix: string): Promise<FleetDay> {
  return simulateFleetDay({
    devices: DEVICES,
    env: { EHOME_KEEPALIVE_SECONDS: String(keepAliveSeconds) },
    startMs: Date.now(),
    idPrefix,
  });
}

async function cloudSide(day: FleetDay) {
  const writes = await feedRegistry(backends(), day.events);
  const items = await Promise.all(day.deviceIds.map((id) => rawDeviceItem(backends(), id)));
  const summary = summarise(day, writes, Math.max(...items.map((i) => (i ? itemBytes(i) : 0))));
  console.log(`CLOUD_WRITES ${JSON.stringify(summary)}`);
  return { day, writes, items, summary };
}

describe("cloud writes per device over a simulated day", () => {
  it(`stay ≤ ${LIMIT} per device at the defaults and do not change when the keepalive drops from 15 s to 5 s`, async () => {
    // The edge days one after the other (fake timers are global); the two registry feeds touch
    // different devices, so they run side by side.
    const days = [await edgeDay(15, "day15-"), await edgeDay(5, "day05-")];
    const [base, fast] = await Promise.all(days.map(cloudSide));
    if (!base || !fast) throw new Error("unreachable");

    for (const run of [base, fast]) {
      const { day, writes, items, summary } = run;
      // Every KEEPALIVE was answered and nothing else went to the devices all day.
      expect(day.keepaliveReplies).toBe(day.keepalivesPerDevice * DEVICES);
      expect(day.lastSeenFlushSeconds).toBe(600);
      // The registry ends with every device online, its last-seen from the 24 h flush.
      for (const item of items) {
        expect(item?.status?.S).toBe("online");
        expect(item?.serialNumber?.S).toMatch(/CCWR/);
      }
      expect(new Set(items.map((i) => i?.lastSeen?.S)).size).toBe(1);
      // What left the client is what the repository was asked to write.
      expect(writes.operations).toEqual({
        UpdateItemCommand: writes.updateItem,
        PutItemCommand: writes.putItem,
      });
      expect(summary.sqsMessagesPerDevice).toBeLessThanOrEqual(LIMIT);
      expect(summary.dynamoWritesPerDevice).toBeLessThanOrEqual(LIMIT);
    }
    // Three times the keepalives…
    expect(fast.day.keepalivesPerDevice).toBeGreaterThanOrEqual(
      3 * base.day.keepalivesPerDevice - 3,
    );
    // …and not one cloud write more.
    const comparable = ({ summary: s }: typeof base) => ({
      eventsPerDevice: s.eventsPerDevice,
      sqsMessagesPerDevice: s.sqsMessagesPerDevice,
      sendMessageBatchCallsPerDevice: s.sendMessageBatchCallsPerDevice,
      updateItemPerDevice: s.updateItemPerDevice,
      putItemPerDevice: s.putItemPerDevice,
      indexWritesPerDevice: s.indexWritesPerDevice,
      usdPerDeviceMonth: s.usdPerDeviceMonth,
    });
    expect(comparable(fast)).toEqual(comparable(base));
    // A day at the defaults: REGISTER (registered + online), the learned device-info, and one
    // coalesced last-seen per 600 s flush.
    expect(base.summary.eventsPerDevice).toEqual({
      registered: 1,
      online: 1,
      "device-info": 1,
      "last-seen": DAY_S / 600,
    });
  }, 300_000);
});
