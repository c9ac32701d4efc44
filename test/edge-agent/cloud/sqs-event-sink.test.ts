import type {
  SendMessageBatchCommand,
  SendMessageBatchCommandOutput,
  SendMessageBatchRequestEntry,
} from "@aws-sdk/client-sqs";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { SqsSender } from "../../../edge-agent/cloud/aws.ts";
import {
  createSqsEventSink,
  SQS_MAX_BATCH_BYTES,
  type SqsEventSink,
  type SqsEventSinkConfig,
} from "../../../edge-agent/cloud/sqs-event-sink.ts";
import { createLogger } from "../../../edge-agent/log.ts";
import { DeviceEvent } from "../../../lib/contracts/events.ts";

/**
 * Unit tests of the batching, ordering, retry and overflow rules against an in-memory SQS stand-in
 * (fake timers: linger and backoff are exact). The same sink against fauxqs is exercised in
 * cloud-adapters.test.ts.
 */

type Reply = Partial<SendMessageBatchCommandOutput> | Error | Promise<never>;

interface FakeSqs {
  sender: SqsSender;
  calls: SendMessageBatchRequestEntry[][];
  /** Bodies SQS accepted, in acceptance order. */
  accepted: DeviceEvent[];
}

/** `reply(call, entries)` decides each call's outcome; default: everything accepted. */
function fakeSqs(
  reply: (call: number, entries: SendMessageBatchRequestEntry[]) => Reply = () => ({}),
): FakeSqs {
  const calls: SendMessageBatchRequestEntry[][] = [];
  const accepted: DeviceEvent[] = [];
  const sender = {
    async send(command: SendMessageBatchCommand) {
      const entries = command.input.Entries ?? [];
      calls.push(entries);
      const r = reply(calls.length, entries);
      if (r instanceof Promise) return r;
      if (r instanceof Error) throw r;
      const failed = new Set((r.Failed ?? []).map((f) => f.Id));
      for (const e of entries) {
        if (!failed.has(e.Id)) accepted.push(DeviceEvent.parse(JSON.parse(e.MessageBody!)));
      }
      return { Successful: [], Failed: [], ...r };
    },
  } as unknown as SqsSender;
  return { sender, calls, accepted };
}

let version = 0;
function lastSeen(deviceId: string): DeviceEvent {
  version++;
  return DeviceEvent.parse({
    type: "last-seen",
    eventId: `e-${version}`,
    deviceId,
    agentId: "agent-1",
    version,
    at: new Date(1_700_000_000_000 + version).toISOString(),
    lastSeen: new Date(1_700_000_000_000).toISOString(),
  });
}

function deviceInfo(deviceId: string, channels: number): DeviceEvent {
  version++;
  return DeviceEvent.parse({
    type: "device-info",
    eventId: `e-${version}`,
    deviceId,
    agentId: "agent-1",
    version,
    at: new Date(1_700_000_000_000 + version).toISOString(),
    channels: Array.from({ length: channels }, (_, i) => ({
      channel: i + 1,
      recording: true,
      signalLost: false,
      online: true,
    })),
  });
}

function bytesOf(entries: SendMessageBatchRequestEntry[]): number {
  return entries.reduce((n, e) => n + Buffer.byteLength(e.MessageBody!), 0);
}

function deviceIdsOf(entries: SendMessageBatchRequestEntry[]): string[] {
  return entries.map((e) => (JSON.parse(e.MessageBody!) as DeviceEvent).deviceId);
}

describe("SQS event sink", () => {
  const sinks: SqsEventSink[] = [];
  const make = (fake: FakeSqs, config: Partial<SqsEventSinkConfig> = {}, lines?: string[]) => {
    const sink = createSqsEventSink(
      { queueUrl: "http://sqs.local/000/device-events", ...config },
      {
        sqs: () => fake.sender,
        random: () => 0.5,
        ...(lines ? { log: createLogger({ level: "debug", write: (l) => lines.push(l) }) } : {}),
      },
    );
    sinks.push(sink);
    return sink;
  };

  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(async () => {
    const closing = Promise.all(sinks.splice(0).map((s) => s.close()));
    await vi.runAllTimersAsync();
    await closing;
    vi.useRealTimers();
  });

  it("sends N events of distinct devices in ⌈N/10⌉ SendMessageBatch calls", async () => {
    const fake = fakeSqs();
    const sink = make(fake);
    for (let i = 0; i < 25; i++) sink.emit(lastSeen(`cam-${i}`));
    // Two full batches leave at once; the remaining five wait for the linger.
    expect(fake.calls.map((c) => c.length)).toEqual([10, 10]);
    await vi.advanceTimersByTimeAsync(100);
    expect(fake.calls.map((c) => c.length)).toEqual([10, 10, 5]);
    expect(fake.accepted).toHaveLength(25);
    expect(sink.counters()).toMatchObject({ sent: 25, batches: 3, queued: 0, dropped: 0 });
  });

  it("holds a partial batch for the linger, then sends it", async () => {
    const fake = fakeSqs();
    const sink = make(fake, { lingerMs: 100 });
    sink.emit(lastSeen("cam-1"));
    sink.emit(lastSeen("cam-2"));
    await vi.advanceTimersByTimeAsync(99);
    expect(fake.calls).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(fake.calls).toHaveLength(1);
    expect(sink.counters()).toMatchObject({ sent: 2, batches: 1 });
  });

  it("keeps every batch within the byte limit and drops an event that cannot fit in one", async () => {
    const fake = fakeSqs();
    const sink = make(fake, { maxBatchBytes: 8 * 1024 });
    const events = Array.from({ length: 12 }, (_, i) => deviceInfo(`nvr-${i}`, 40));
    const size = Buffer.byteLength(JSON.stringify(events[0]));
    expect(size).toBeGreaterThan(2 * 1024); // so the byte limit, not the count, splits batches
    for (const e of events) sink.emit(e);
    sink.emit(deviceInfo("huge", 300)); // alone larger than a batch
    await vi.advanceTimersByTimeAsync(1_000);
    expect(fake.accepted.map((e) => e.deviceId).sort()).toEqual(
      events.map((e) => e.deviceId).sort(),
    );
    for (const call of fake.calls) expect(bytesOf(call)).toBeLessThanOrEqual(8 * 1024);
    expect(fake.calls.length).toBeGreaterThan(1);
    expect(sink.counters()).toMatchObject({ sent: 12, dropped: 1 });
  });

  it("uses the SQS limit of 256 KiB by default", async () => {
    const fake = fakeSqs();
    const sink = make(fake);
    // ~33 KB each: ten of them would exceed 256 KiB.
    for (let i = 0; i < 10; i++) sink.emit(deviceInfo(`nvr-${i}`, 512));
    await vi.advanceTimersByTimeAsync(1_000);
    expect(fake.accepted).toHaveLength(10);
    expect(fake.calls.length).toBeGreaterThan(1);
    for (const call of fake.calls) expect(bytesOf(call)).toBeLessThanOrEqual(SQS_MAX_BATCH_BYTES);
  });

  it("keeps each device's events in order when some entries fail and are retried", async () => {
    // The first time an event of cam-a is in a call, its entry fails (throttled).
    let failedOnce = false;
    const fake = fakeSqs((_, entries) => {
      const a = entries.find((e) => deviceIdsOf([e])[0] === "cam-a");
      if (a && !failedOnce) {
        failedOnce = true;
        return {
          Failed: [
            { Id: a.Id!, SenderFault: false, Code: "ThrottlingException", Message: "slow down" },
          ],
        };
      }
      return {};
    });
    // No coalescing here: every one of the device's events must arrive, in order.
    const sink = make(fake, { coalesce: [] });
    const emitted: DeviceEvent[] = [];
    for (let i = 0; i < 5; i++) {
      for (const id of ["cam-a", "cam-b", "cam-c"]) {
        const e = lastSeen(id);
        emitted.push(e);
        sink.emit(e);
      }
    }
    await vi.advanceTimersByTimeAsync(10_000);
    expect(fake.accepted).toHaveLength(15);
    for (const id of ["cam-a", "cam-b", "cam-c"]) {
      const sent = fake.accepted.filter((e) => e.deviceId === id).map((e) => e.version);
      const want = emitted.filter((e) => e.deviceId === id).map((e) => e.version);
      expect(sent).toEqual(want);
    }
    // One event per device per call: a later event can never overtake a retried one.
    for (const call of fake.calls) {
      const ids = deviceIdsOf(call);
      expect(new Set(ids).size).toBe(ids.length);
    }
    expect(sink.counters()).toMatchObject({ sent: 15, retries: 1, dropped: 0, queued: 0 });
  });

  it("retries a failed call with growing backoff and loses nothing", async () => {
    const fake = fakeSqs((call) => (call <= 2 ? new Error("socket hang up") : {}));
    const sink = make(fake, { retryBaseMs: 200, lingerMs: 100 });
    for (let i = 0; i < 7; i++) sink.emit(lastSeen(`cam-${i}`));
    await vi.advanceTimersByTimeAsync(100); // linger → call 1 fails
    expect(fake.calls).toHaveLength(1);
    // Backoff after attempt 1: 100–200 ms (random 0.5 → 150 ms).
    await vi.advanceTimersByTimeAsync(149);
    expect(fake.calls).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(fake.calls).toHaveLength(2); // fails again; now 200–400 ms (300 ms)
    await vi.advanceTimersByTimeAsync(299);
    expect(fake.calls).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(1);
    expect(fake.calls).toHaveLength(3);
    expect(fake.accepted.map((e) => e.deviceId).sort()).toEqual(
      Array.from({ length: 7 }, (_, i) => `cam-${i}`).sort(),
    );
    expect(sink.counters()).toMatchObject({ sent: 7, failedCalls: 2, retries: 14, dropped: 0 });
  });

  it("drops, without retrying, entries SQS refuses as the sender's fault", async () => {
    const fake = fakeSqs((call, entries) =>
      call === 1
        ? { Failed: [{ Id: entries[0]!.Id!, SenderFault: true, Code: "InvalidMessageContents" }] }
        : {},
    );
    const sink = make(fake);
    sink.emit(lastSeen("cam-1"));
    sink.emit(lastSeen("cam-2"));
    await vi.advanceTimersByTimeAsync(5_000);
    expect(fake.calls).toHaveLength(1);
    expect(sink.counters()).toMatchObject({ sent: 1, dropped: 1, retries: 0, queued: 0 });
  });

  it("bounds memory: beyond maxQueued new events are dropped, counted and logged", async () => {
    const fake = fakeSqs(() => new Promise<never>(() => {})); // SQS never answers
    const lines: string[] = [];
    const sink = make(fake, { maxQueued: 50, maxInFlightBatches: 2, closeTimeoutMs: 100 }, lines);
    for (let i = 0; i < 80; i++) sink.emit(lastSeen(`cam-${i}`));
    expect(sink.counters()).toMatchObject({ queued: 50, overflow: 30, dropped: 30 });
    const logged = lines.map((l) => JSON.parse(l)).filter((r) => r.reason === "overflow");
    expect(logged).toHaveLength(1); // rate-limited: once per interval, not once per event
    // Loud: a lost event is an error, named by kind.
    expect(logged[0]).toMatchObject({ level: "error", kind: "last-seen", total: 1 });
    expect(sink.droppedByKind()).toEqual({ "last-seen": 30 });
  });

  it("close() sends what is queued before it resolves", async () => {
    const fake = fakeSqs();
    const sink = make(fake, { lingerMs: 10_000 });
    for (let i = 0; i < 3; i++) sink.emit(lastSeen(`cam-${i}`));
    expect(fake.calls).toHaveLength(0);
    let closed = false;
    void sink.close().then(() => {
      closed = true;
    });
    await vi.advanceTimersByTimeAsync(0);
    expect(closed).toBe(true);
    expect(fake.accepted).toHaveLength(3);
    // Events after close are refused and counted.
    sink.emit(lastSeen("late"));
    expect(sink.counters()).toMatchObject({ sent: 3, dropped: 1, queued: 0 });
  });

  it("close() retries until its deadline, then counts the rest as dropped and leaves no timers", async () => {
    const fake = fakeSqs(() => new Error("unreachable"));
    const sink = make(fake, { closeTimeoutMs: 1_000, retryBaseMs: 100 });
    for (let i = 0; i < 4; i++) sink.emit(lastSeen(`cam-${i}`));
    let closed = false;
    void sink.close().then(() => {
      closed = true;
    });
    await vi.advanceTimersByTimeAsync(999);
    expect(closed).toBe(false);
    expect(fake.calls.length).toBeGreaterThan(2); // kept retrying while it could
    await vi.advanceTimersByTimeAsync(1);
    expect(closed).toBe(true);
    expect(sink.counters()).toMatchObject({ sent: 0, dropped: 4, queued: 0 });
    expect(vi.getTimerCount()).toBe(0);
  });
});
