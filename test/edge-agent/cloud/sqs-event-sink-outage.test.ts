import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { SendMessageBatchCommand } from "@aws-sdk/client-sqs";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { SqsSender } from "../../../edge-agent/cloud/aws.ts";
import {
  createSqsEventSink,
  type SqsEventSink,
  type SqsEventSinkConfig,
} from "../../../edge-agent/cloud/sqs-event-sink.ts";
import { createLogger } from "../../../edge-agent/log.ts";

/**
 * Cloud-outage tolerance of the event sinks (issue 7 item 1): last-seen coalescing at the device's
 * tail, the memory bound by count and bytes, spilling to disk in order, reading the spill back when
 * SQS returns, the head file across a restart, and loud, per-kind counting when even the disk is
 * full. Fake timers for linger/backoff; a real temporary directory for the spill.
 */

interface Ev {
  deviceId: string;
  type: string;
  n: number;
}

interface FakeSqs {
  sender: SqsSender;
  accepted: Ev[];
  calls: number;
  up: boolean;
  /** When set, calls wait for it (an SQS call in flight). */
  gate?: Promise<void>;
}

/** SQS that fails every call while `up` is false (a network error, as when unreachable). */
function fakeSqs(): FakeSqs {
  const fake: FakeSqs = {
    accepted: [],
    calls: 0,
    up: true,
    sender: {
      async send(command: SendMessageBatchCommand) {
        fake.calls++;
        if (fake.gate) await fake.gate;
        if (!fake.up) throw Object.assign(new Error("connect ECONNREFUSED"), { name: "Error" });
        for (const e of command.input.Entries ?? []) {
          fake.accepted.push(JSON.parse(e.MessageBody!) as Ev);
        }
        return { Successful: [], Failed: [] };
      },
    } as unknown as SqsSender,
  };
  return fake;
}

let n = 0;
const ev = (deviceId: string, type = "alarm"): Ev => ({ deviceId, type, n: ++n });

/** Per device, the `n`s in arrival order. */
function byDevice(events: readonly Ev[]): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  for (const e of events) {
    out[e.deviceId] ??= [];
    out[e.deviceId]!.push(e.n);
  }
  return out;
}

describe("event sink under a cloud outage", () => {
  const sinks: SqsEventSink<Ev>[] = [];
  let dir: string;
  const make = (fake: FakeSqs, config: Partial<SqsEventSinkConfig> = {}, lines?: string[]) => {
    const sink = createSqsEventSink<Ev>(
      { queueUrl: "http://sqs.local/000/q", lingerMs: 10, retryBaseMs: 100, ...config },
      {
        sqs: () => fake.sender,
        random: () => 0.5,
        ...(lines ? { log: createLogger({ level: "debug", write: (l) => lines.push(l) }) } : {}),
      },
    );
    sinks.push(sink);
    return sink;
  };
  const spill = (maxBytes = 1024 * 1024) => ({ spill: { dir, name: "alarm-events", maxBytes } });

  beforeEach(() => {
    vi.useFakeTimers();
    dir = mkdtempSync(join(tmpdir(), "ehome-spill-"));
  });
  afterEach(async () => {
    const closing = Promise.all(sinks.splice(0).map((s) => s.close()));
    await vi.runAllTimersAsync();
    await closing;
    vi.useRealTimers();
    rmSync(dir, { recursive: true, force: true });
  });

  it("coalesces a device's queued last-seen events into the newest, never past another event", async () => {
    const fake = fakeSqs();
    fake.up = false;
    const sink = make(fake);
    const first = ev("cam-1", "last-seen");
    sink.emit(first);
    await vi.advanceTimersByTimeAsync(10); // sent, failed: backing off, not in flight
    const seen = [ev("cam-1", "last-seen"), ev("cam-1", "last-seen"), ev("cam-1", "last-seen")];
    for (const e of seen) sink.emit(e);
    const offline = ev("cam-1", "offline");
    sink.emit(offline);
    const after = [ev("cam-1", "last-seen"), ev("cam-1", "last-seen")];
    for (const e of after) sink.emit(e);
    // newest of the first run (replacing the one backing off) + offline + newest of the second run
    expect(sink.counters()).toMatchObject({ queued: 3, coalesced: 4 });
    fake.up = true;
    await vi.advanceTimersByTimeAsync(5_000);
    expect(fake.accepted.map((e) => e.n)).toEqual([seen[2]!.n, offline.n, after[1]!.n]);
  });

  it("never replaces an event in flight", async () => {
    const fake = fakeSqs();
    let open = () => {};
    fake.gate = new Promise<void>((resolve) => {
      open = resolve;
    });
    const sink = make(fake);
    const first = ev("cam-1", "last-seen");
    sink.emit(first);
    await vi.advanceTimersByTimeAsync(10); // in flight
    const next = [ev("cam-1", "last-seen"), ev("cam-1", "last-seen")];
    for (const e of next) sink.emit(e);
    expect(sink.counters()).toMatchObject({ queued: 2, coalesced: 1 });
    fake.gate = undefined;
    open();
    await vi.advanceTimersByTimeAsync(1_000);
    expect(fake.accepted.map((e) => e.n)).toEqual([first.n, next[1]!.n]);
  });

  it("reports cloudReachable 0 while calls fail and 1 once one succeeds", async () => {
    const fake = fakeSqs();
    fake.up = false;
    const sink = make(fake);
    sink.emit(ev("cam-1"));
    await vi.advanceTimersByTimeAsync(10);
    expect(sink.counters()).toMatchObject({ cloudReachable: 0, failedCalls: 1 });
    fake.up = true;
    await vi.advanceTimersByTimeAsync(1_000);
    expect(sink.counters()).toMatchObject({ cloudReachable: 1, sent: 1, queued: 0 });
  });

  it("spills beyond the memory bound and delivers everything in per-device order when SQS returns", async () => {
    const fake = fakeSqs();
    fake.up = false;
    const sink = make(fake, { maxQueued: 10, ...spill() });
    const emitted: Ev[] = [];
    for (let i = 0; i < 60; i++) {
      const e = ev(`cam-${i % 3}`);
      emitted.push(e);
      sink.emit(e);
    }
    expect(sink.counters()).toMatchObject({ queued: 10, spilled: 50, dropped: 0 });
    // Backoff grows to its ceiling while the outage lasts; the memory never grows.
    await vi.advanceTimersByTimeAsync(60_000);
    expect(sink.counters().queued).toBe(10);
    expect(fake.accepted).toHaveLength(0);
    expect(statSync(join(dir, "alarm-events.jsonl")).size).toBeGreaterThan(0);
    fake.up = true;
    await vi.advanceTimersByTimeAsync(120_000);
    expect(fake.accepted).toHaveLength(60);
    expect(byDevice(fake.accepted)).toEqual(byDevice(emitted));
    expect(sink.counters()).toMatchObject({ queued: 0, restored: 50, dropped: 0 });
    // Everything acknowledged: the spill file is emptied.
    expect(statSync(join(dir, "alarm-events.jsonl")).size).toBe(0);
  });

  it("bounds memory by bytes as well as by count", async () => {
    const fake = fakeSqs();
    fake.up = false;
    const sink = make(fake, { maxQueuedBytes: 200, ...spill() });
    for (let i = 0; i < 20; i++) sink.emit(ev(`cam-${i}`));
    const c = sink.counters();
    expect(c.queuedBytes).toBeLessThanOrEqual(200);
    expect(c.queued + c.spilled).toBe(20);
    expect(c.spilled).toBeGreaterThan(0);
  });

  it("while events are on disk, new events queue behind them (no overtaking)", async () => {
    const fake = fakeSqs();
    fake.up = false;
    const sink = make(fake, { maxQueued: 4, ...spill() });
    const emitted: Ev[] = [];
    for (let i = 0; i < 12; i++) {
      const e = ev("cam-1");
      emitted.push(e);
      sink.emit(e);
    }
    fake.up = true;
    // Memory drains and frees room, but the disk still holds older events: later emits follow them.
    for (let i = 0; i < 3; i++) {
      await vi.advanceTimersByTimeAsync(50);
      const e = ev("cam-1");
      emitted.push(e);
      sink.emit(e);
    }
    await vi.advanceTimersByTimeAsync(60_000);
    expect(fake.accepted.map((e) => e.n)).toEqual(emitted.map((e) => e.n));
  });

  it("when the spill is full too, drops are counted per kind and logged as errors", async () => {
    const fake = fakeSqs();
    fake.up = false;
    const lines: string[] = [];
    const sink = make(fake, { maxQueued: 2, ...spill(200) }, lines);
    for (let i = 0; i < 20; i++) sink.emit(ev(`cam-${i}`));
    const c = sink.counters();
    expect(c.spilled).toBeGreaterThan(0);
    expect(c.dropped).toBe(20 - 2 - c.spilled);
    expect(sink.droppedByKind()).toEqual({ alarm: c.dropped });
    const logged = lines.map((l) => JSON.parse(l)).filter((r) => r.reason === "spill-full");
    expect(logged).toHaveLength(1);
    expect(logged[0]).toMatchObject({ level: "error", kind: "alarm" });
    expect(logged[0].msg).toContain('events_dropped_total{kind="alarm"}');
  });

  it("the spill and the events still in memory survive a restart and are sent first", async () => {
    const fake = fakeSqs();
    fake.up = false;
    const first = make(fake, { maxQueued: 5, closeTimeoutMs: 200, ...spill() });
    const emitted: Ev[] = [];
    for (let i = 0; i < 25; i++) {
      const e = ev(`cam-${i % 2}`);
      emitted.push(e);
      first.emit(e);
    }
    const closing = first.close();
    await vi.advanceTimersByTimeAsync(1_000);
    await closing;
    expect(first.counters()).toMatchObject({ spilled: 20, dropped: 0 });
    expect(existsSync(join(dir, "alarm-events.head.jsonl"))).toBe(true);
    expect(
      readFileSync(join(dir, "alarm-events.head.jsonl"), "utf8").trim().split("\n"),
    ).toHaveLength(5);

    // The agent restarts with SQS back.
    const again = fakeSqs();
    const second = make(again, { maxQueued: 5, ...spill() });
    const later = ev("cam-0");
    emitted.push(later);
    second.emit(later);
    await vi.advanceTimersByTimeAsync(30_000);
    expect(again.accepted).toHaveLength(26);
    expect(byDevice(again.accepted)).toEqual(byDevice(emitted));
    // 25 from disk, plus the new event, which queued behind them on disk.
    expect(second.counters()).toMatchObject({ restored: 26, queued: 0 });
    expect(existsSync(join(dir, "alarm-events.head.jsonl"))).toBe(false);
    expect(statSync(join(dir, "alarm-events.jsonl")).size).toBe(0);
  });

  it("a line torn by a crash is cut off at start; the whole lines before it are sent", async () => {
    const good = [ev("cam-1"), ev("cam-1")];
    writeFileSync(
      join(dir, "alarm-events.jsonl"),
      `${good.map((e) => JSON.stringify(e)).join("\n")}\n{"deviceId":"cam-1","ty`,
    );
    const fake = fakeSqs();
    make(fake, spill());
    await vi.advanceTimersByTimeAsync(5_000);
    expect(fake.accepted.map((e) => e.n)).toEqual(good.map((e) => e.n));
  });

  it("with the disk full, an event is held in memory when there is room rather than dropped", async () => {
    // SQS accepts cam-a and throttles cam-b.
    const accepted: Ev[] = [];
    const sender = {
      async send(command: SendMessageBatchCommand) {
        const entries = command.input.Entries ?? [];
        const failed = [];
        for (const e of entries) {
          const body = JSON.parse(e.MessageBody!) as Ev;
          if (body.deviceId === "cam-a") accepted.push(body);
          else failed.push({ Id: e.Id!, SenderFault: false, Code: "ThrottlingException" });
        }
        return { Successful: [], Failed: failed };
      },
    } as unknown as SqsSender;
    const fake: FakeSqs = { sender, accepted, calls: 0, up: true };
    const line = JSON.stringify(ev("cam-b")).length + 1;
    const sink = make(fake, { maxQueued: 4, ...spill(2 * line + 4) });
    sink.emit(ev("cam-a"));
    for (let i = 0; i < 3; i++) sink.emit(ev("cam-b"));
    sink.emit(ev("cam-b")); // memory full: to disk
    sink.emit(ev("cam-b")); // disk full now too
    await vi.advanceTimersByTimeAsync(20); // cam-a acknowledged: memory 3 of 4, above half: no refill
    expect(accepted).toHaveLength(1);
    expect(sink.counters()).toMatchObject({ queued: 3, spilled: 2, dropped: 0 });
    sink.emit(ev("cam-c"));
    expect(sink.counters()).toMatchObject({ queued: 4, spilled: 2, dropped: 0 });
    sink.emit(ev("cam-c")); // memory and disk full: dropped, loudly
    expect(sink.counters()).toMatchObject({ queued: 4, dropped: 1 });
  });

  it("journal mode: events survive a crash between emit and SQS's acknowledgement", async () => {
    const hung = fakeSqs();
    hung.gate = new Promise<void>(() => {}); // SQS never answers the crashed agent
    const first = make(hung, { journal: true, ...spill() });
    const emitted = [ev("cam-1"), ev("cam-2"), ev("cam-1")];
    for (const e of emitted) first.emit(e);
    await vi.advanceTimersByTimeAsync(30); // written and in flight, never acknowledged
    expect(first.counters()).toMatchObject({ journaled: 3, spilled: 0, restored: 3 });
    // The agent is SIGKILLed here (first never closes); a new one starts over the same directory.
    const again = fakeSqs();
    const second = make(again, { journal: true, ...spill() });
    await vi.advanceTimersByTimeAsync(1_000);
    expect(byDevice(again.accepted)).toEqual(byDevice(emitted));
    // Acknowledged: the journal is emptied.
    expect(statSync(join(dir, "alarm-events.jsonl")).size).toBe(0);
    expect(second.counters()).toMatchObject({ queued: 0, sent: 3 });
  });
});
