import {
  type BatchResultErrorEntry,
  SendMessageBatchCommand,
  type SendMessageBatchRequestEntry,
} from "@aws-sdk/client-sqs";
import type { DeviceEvent } from "../../lib/contracts/events.ts";
import { createRateLimiter, type Logger, silentLogger } from "../log.ts";
import type { EventSink } from "../ports.ts";
import { backoffMs, isAbortError, type SqsSender } from "./aws.ts";

/**
 * Device events to the device-events queue (issue 3 item 2; architecture §2). Events are batched
 * into `SendMessageBatch` calls and retried with backoff; the queue is bounded in memory.
 *
 * Per-device order: a device's next event is sent only after SQS acknowledged its previous one
 * (at most one event per device in flight, across all batches). A retried event therefore never
 * overtakes, or is overtaken by, a later event of the same device. Batches fill up across
 * devices, which is where the volume is (a REGISTER storm, a last-seen flush).
 *
 * All holding, admission and ordering lives in this file (`admit`, the per-device queues), so the
 * later spill-to-disk and presence coalescing change one place.
 */

/** SQS limits: 10 entries and 256 KiB (sum of bodies) per `SendMessageBatch`. */
export const SQS_MAX_BATCH_ENTRIES = 10;
export const SQS_MAX_BATCH_BYTES = 256 * 1024;

export interface SqsEventSinkConfig {
  queueUrl: string;
  /** What the queue carries, for logs. Default "device events". */
  label?: string;
  /** Entries per batch, 1–10. Default 10. */
  maxBatchEntries?: number;
  /** Bytes per batch (sum of bodies). Default 256 KiB. */
  maxBatchBytes?: number;
  /** A partial batch is sent this long after its first event became sendable. Default 100 ms. */
  lingerMs?: number;
  /** Events held in memory (queued + in flight). Beyond it, new events are dropped. Default 20 000. */
  maxQueued?: number;
  /** Concurrent `SendMessageBatch` calls. Default 4. */
  maxInFlightBatches?: number;
  /** Backoff of a failed entry: base and ceiling. Defaults 200 ms and 30 s. */
  retryBaseMs?: number;
  retryMaxMs?: number;
  /** How long close() keeps sending what is queued. Default 5 s. */
  closeTimeoutMs?: number;
}

export interface SqsEventSinkDeps {
  sqs: () => SqsSender;
  log?: Logger;
  random?: () => number;
  /** Interval of the rate-limited logs. Default 60 s. */
  logIntervalMs?: number;
}

export interface SqsEventSinkCounters {
  /** Events SQS acknowledged. */
  sent: number;
  /** `SendMessageBatch` calls made (successful or not). */
  batches: number;
  /** Entries sent again after a failure. */
  retries: number;
  /** Events given up: overflow, too large, refused by SQS as malformed, or left at close. */
  dropped: number;
  /** Of `dropped`: refused because the queue was full. */
  overflow: number;
  /** Calls that failed as a whole (network, throttling, credentials). */
  failedCalls: number;
  /** Events held now (waiting, backing off, or in flight). */
  queued: number;
  inFlightBatches: number;
}

/** What the sink can carry: events keyed by device (order is kept per device) with a `type`. */
export interface SqsQueueEvent {
  readonly deviceId: string;
  readonly type: string;
}

/**
 * Device events by default; the alarm-events queue reuses the same machinery with
 * `AlarmQueueMessage` (edge-agent/alarms).
 */
export interface SqsEventSink<E extends SqsQueueEvent = DeviceEvent> extends EventSink<E> {
  emit(event: E): void;
  counters(): SqsEventSinkCounters;
  /** Stops accepting events, sends what is held (until `closeTimeoutMs`), then resolves. Idempotent. */
  close(): Promise<void>;
}

interface Entry {
  readonly body: string;
  readonly bytes: number;
  readonly type: string;
  attempts: number;
}

/** `ready`: its head entry may go in the next batch. `busy`: in flight. `waiting`: backing off. */
type DeviceState = "ready" | "busy" | "waiting";

interface DeviceQueue {
  readonly deviceId: string;
  readonly entries: Entry[];
  state: DeviceState;
}

/** FIFO of device queues whose head entry is sendable; O(1) at both ends. */
class ReadyList {
  private items: DeviceQueue[] = [];
  private head = 0;
  get length(): number {
    return this.items.length - this.head;
  }
  push(q: DeviceQueue): void {
    this.items.push(q);
  }
  peek(): DeviceQueue | undefined {
    return this.items[this.head];
  }
  shift(): DeviceQueue | undefined {
    const q = this.items[this.head];
    if (q === undefined) return undefined;
    this.items[this.head++] = undefined as unknown as DeviceQueue;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return q;
  }
}

export function createSqsEventSink<E extends SqsQueueEvent = DeviceEvent>(
  config: SqsEventSinkConfig,
  deps: SqsEventSinkDeps,
): SqsEventSink<E> {
  const label = config.label ?? "device events";
  const maxEntries = Math.min(
    SQS_MAX_BATCH_ENTRIES,
    Math.max(1, config.maxBatchEntries ?? SQS_MAX_BATCH_ENTRIES),
  );
  const maxBytes = Math.min(SQS_MAX_BATCH_BYTES, config.maxBatchBytes ?? SQS_MAX_BATCH_BYTES);
  const lingerMs = config.lingerMs ?? 100;
  const maxQueued = config.maxQueued ?? 20_000;
  const maxInFlight = Math.max(1, config.maxInFlightBatches ?? 4);
  const retry = { baseMs: config.retryBaseMs ?? 200, maxMs: config.retryMaxMs ?? 30_000 };
  const closeTimeoutMs = config.closeTimeoutMs ?? 5_000;
  const log = deps.log ?? silentLogger;
  const random = deps.random ?? Math.random;
  const limiter = createRateLimiter({ intervalMs: deps.logIntervalMs ?? 60_000 });
  const warn = (key: string, msg: string, fields: Record<string, unknown>) => {
    const { allowed, suppressed } = limiter.allow(key);
    if (allowed) log.warn(msg, suppressed ? { ...fields, suppressed } : fields);
  };

  const devices = new Map<string, DeviceQueue>();
  const ready = new ReadyList();
  const backoffTimers = new Set<NodeJS.Timeout>();
  const abort = new AbortController();
  const c: SqsEventSinkCounters = {
    sent: 0,
    batches: 0,
    retries: 0,
    dropped: 0,
    overflow: 0,
    failedCalls: 0,
    queued: 0,
    inFlightBatches: 0,
  };
  let lingerTimer: NodeJS.Timeout | undefined;
  let accepting = true;
  let draining = false;
  let closing: Promise<void> | undefined;
  let onIdle: (() => void) | undefined;

  const drop = (count: number, reason: string, type?: string) => {
    c.dropped += count;
    warn(`drop:${reason}`, `${label} dropped`, { reason, count, type, queued: c.queued });
  };

  /**
   * Admission: the one place that decides whether an event may be held. Today: drop the newest
   * when full (counted, logged). Spill-to-disk and presence coalescing replace this.
   */
  const admit = (event: E, entry: Entry): boolean => {
    if (!accepting) {
      drop(1, "closed", event.type);
      return false;
    }
    if (entry.bytes > maxBytes) {
      drop(1, "too-large", event.type);
      return false;
    }
    if (c.queued >= maxQueued) {
      c.overflow++;
      drop(1, "overflow", event.type);
      return false;
    }
    return true;
  };

  const settleIfIdle = () => {
    if (c.queued === 0 && c.inFlightBatches === 0 && onIdle) onIdle();
  };

  /** Removes the head entry of a device (acknowledged or given up) and moves the device on. */
  const advance = (q: DeviceQueue) => {
    q.entries.shift();
    c.queued--;
    if (q.entries.length === 0) {
      devices.delete(q.deviceId);
    } else {
      q.state = "ready";
      ready.push(q);
    }
  };

  const scheduleLinger = () => {
    if (lingerTimer || ready.length === 0) return;
    lingerTimer = setTimeout(() => {
      lingerTimer = undefined;
      pump(true);
    }, lingerMs);
  };

  /** Takes the next batch from the ready list: ≤ maxEntries entries, ≤ maxBytes bytes. */
  const takeBatch = (): DeviceQueue[] => {
    const batch: DeviceQueue[] = [];
    let bytes = 0;
    while (batch.length < maxEntries) {
      const q = ready.peek();
      if (!q) break;
      const head = q.entries[0]!;
      if (bytes + head.bytes > maxBytes) break;
      ready.shift();
      q.state = "busy";
      bytes += head.bytes;
      batch.push(q);
    }
    return batch;
  };

  /** Sends full batches now; partial ones only when forced (linger expired, or draining). */
  const pump = (force: boolean) => {
    while (c.inFlightBatches < maxInFlight && ready.length > 0) {
      if (!force && !draining && ready.length < maxEntries) break;
      const batch = takeBatch();
      if (batch.length === 0) break;
      void send(batch);
    }
    if (ready.length > 0 && c.inFlightBatches < maxInFlight) scheduleLinger();
  };

  const retryLater = (waiting: DeviceQueue[]) => {
    if (waiting.length === 0) return;
    const attempts = Math.max(...waiting.map((q) => q.entries[0]!.attempts));
    const timer = setTimeout(
      () => {
        backoffTimers.delete(timer);
        for (const q of waiting) {
          q.state = "ready";
          ready.push(q);
        }
        pump(true);
      },
      backoffMs(attempts, retry, random),
    );
    backoffTimers.add(timer);
  };

  const send = async (batch: DeviceQueue[]): Promise<void> => {
    c.inFlightBatches++;
    c.batches++;
    const entries: SendMessageBatchRequestEntry[] = batch.map((q, i) => {
      const head = q.entries[0]!;
      if (head.attempts > 0) c.retries++;
      head.attempts++;
      return { Id: String(i), MessageBody: head.body };
    });
    let failed: BatchResultErrorEntry[] | undefined;
    let callError: unknown;
    try {
      const out = await deps
        .sqs()
        .send(new SendMessageBatchCommand({ QueueUrl: config.queueUrl, Entries: entries }), {
          abortSignal: abort.signal,
        });
      failed = out.Failed ?? [];
    } catch (err) {
      callError = err;
    }
    c.inFlightBatches--;
    if (abort.signal.aborted) return; // close() gave up; it counted what was left

    const waiting: DeviceQueue[] = [];
    if (callError !== undefined) {
      c.failedCalls++;
      if (!isAbortError(callError)) {
        warn("call-failed", "SendMessageBatch failed; will retry", {
          err: callError,
          entries: batch.length,
        });
      }
      for (const q of batch) {
        q.state = "waiting";
        waiting.push(q);
      }
    } else {
      const failedById = new Map((failed ?? []).map((f) => [f.Id, f]));
      batch.forEach((q, i) => {
        const f = failedById.get(String(i));
        if (f === undefined) {
          c.sent++;
          advance(q);
        } else if (f.SenderFault) {
          // Malformed on our side: sending it again cannot succeed.
          log.error(`${label}: an event refused by SQS`, { code: f.Code, message: f.Message });
          drop(1, "refused", q.entries[0]!.type);
          advance(q);
        } else {
          q.state = "waiting";
          waiting.push(q);
        }
      });
      if (waiting.length > 0) {
        warn("entries-failed", `some ${label} failed; will retry`, {
          failed: waiting.length,
          code: failed?.[0]?.Code,
        });
      }
    }
    retryLater(waiting);
    pump(false);
    settleIfIdle();
  };

  return {
    emit(event) {
      let body: string;
      try {
        body = JSON.stringify(event);
      } catch {
        drop(1, "unserialisable", event.type);
        return;
      }
      const entry: Entry = { body, bytes: Buffer.byteLength(body), type: event.type, attempts: 0 };
      if (!admit(event, entry)) return;
      c.queued++;
      let q = devices.get(event.deviceId);
      if (q) {
        q.entries.push(entry);
      } else {
        q = { deviceId: event.deviceId, entries: [entry], state: "ready" };
        devices.set(event.deviceId, q);
        ready.push(q);
      }
      if (ready.length >= maxEntries) pump(false);
      else scheduleLinger();
    },

    counters: () => ({ ...c }),

    close() {
      closing ??= (async () => {
        accepting = false;
        draining = true;
        if (lingerTimer) clearTimeout(lingerTimer);
        lingerTimer = undefined;
        if (c.queued > 0 || c.inFlightBatches > 0) {
          pump(true);
          let deadline: NodeJS.Timeout | undefined;
          await new Promise<void>((resolve) => {
            onIdle = resolve;
            deadline = setTimeout(resolve, closeTimeoutMs);
            settleIfIdle();
          });
          clearTimeout(deadline);
          onIdle = undefined;
        }
        abort.abort();
        if (lingerTimer) clearTimeout(lingerTimer);
        lingerTimer = undefined;
        for (const t of backoffTimers) clearTimeout(t);
        backoffTimers.clear();
        if (c.queued > 0) {
          log.error(`${label} not sent before close`, { count: c.queued });
          c.dropped += c.queued;
          c.queued = 0;
          devices.clear();
        }
      })();
      return closing;
    },
  };
}
