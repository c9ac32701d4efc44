import {
  type BatchResultErrorEntry,
  SendMessageBatchCommand,
  type SendMessageBatchRequestEntry,
} from "@aws-sdk/client-sqs";
import type { DeviceEvent } from "../../lib/contracts/events.ts";
import { createRateLimiter, type Logger, silentLogger } from "../log.ts";
import type { EventSink } from "../ports.ts";
import { backoffMs, isAbortError, type SqsSender } from "./aws.ts";
import { openSpillFile, type SpillFile } from "./spill-file.ts";

/**
 * Device events to the device-events queue (issue 3 item 2; architecture §2). Events are batched
 * into `SendMessageBatch` calls and retried with backoff; the queue is bounded in memory.
 *
 * Per-device order: a device's next event is sent only after SQS acknowledged its previous one
 * (at most one event per device in flight, across all batches). A retried event therefore never
 * overtakes, or is overtaken by, a later event of the same device. Batches fill up across
 * devices, which is where the volume is (a REGISTER storm, a last-seen flush).
 *
 * All holding, admission and ordering lives in this file (`admit`, the per-device queues).
 *
 * Cloud outages (issue 7 item 1). Emitting never waits for SQS: `emit` only queues. Failed calls
 * are retried per entry with exponential backoff and jitter, without limit until close. Memory is
 * bounded by `maxQueued` events and `maxQueuedBytes`. A `last-seen` event replaces the device's
 * queued, not yet sent `last-seen` when that is the device's newest event (tail coalescing: the
 * replacement keeps its place, so every later event of the device still follows it and the
 * per-device `version` order the registry relies on holds). Beyond the memory bound, with `spill`
 * configured, events go to a JSON Lines file (spill-file.ts) instead of being dropped; the file is
 * the tail of the queue: while it holds unread lines every new event is appended to it too, and it
 * is read back as memory frees up, so the order is kept across memory and disk. When the file is
 * full (`spill.maxBytes`) events are dropped, counted per kind (`droppedByKind`) and logged as
 * errors. At close, what is still held in memory goes to the spill's head file, read first at the
 * next start; the spill itself survives restarts.
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
  /** Bytes held in memory (sum of bodies). Default 16 MiB. */
  maxQueuedBytes?: number;
  /** Event types that replace a queued, unsent event of the same type at the device's tail. */
  coalesce?: readonly string[];
  /** Overflow to disk (`EHOME_SPILL_DIR`); without it, events beyond the bound are dropped. */
  spill?: { dir: string; name: string; maxBytes: number; compactAfterBytes?: number };
  /**
   * With `spill`: every event goes through the file first (a journal), not only beyond the memory
   * bound, so an event survives a crash (SIGKILL) between its emit and SQS's acknowledgement: the
   * next start re-sends what was not acknowledged (duplicates possible, never losses). For the
   * events a device was already told are stored: alarms and uploaded media.
   */
  journal?: boolean;
  /** Spill writes are batched this long. Default 20 ms. */
  spillFlushMs?: number;
}

/** Events coalesced by default: the periodic last-seen (the only event whose older copy is moot). */
export const COALESCED_TYPES: readonly string[] = ["last-seen"];

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
  /** Bytes held in memory now. */
  queuedBytes: number;
  /** Events that replaced a queued, unsent one of their device (last-seen). */
  coalesced: number;
  /** Events written to the spill file. */
  spilled: number;
  /** Events read back from the spill (or head) file. */
  restored: number;
  /** Events that went through the journal (memory had room; not an overflow). */
  journaled: number;
  /** Events written to disk in this run and not yet read back into memory. */
  onDisk: number;
  /** Bytes in the spill file now (read or not). */
  spillBytes: number;
  /** Spill lines that could not be parsed (skipped). */
  spillCorrupt: number;
  /** 1 while the last SendMessageBatch call got an answer, 0 after a call failed. */
  cloudReachable: number;
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
  /** Dropped events by `type` (`events_dropped_total{kind}`). */
  droppedByKind(): Record<string, number>;
  /**
   * Stops accepting events, sends what is held (until `closeTimeoutMs`), then resolves; with a
   * spill, what is left goes to its head file. Idempotent.
   */
  close(): Promise<void>;
}

interface Entry {
  body: string;
  bytes: number;
  readonly type: string;
  attempts: number;
  /** Read back from the spill: acknowledged up to this record's offset once done. */
  track?: SpillTrack;
  /** Read back from the head file. */
  fromHead?: boolean;
}

interface SpillTrack {
  readonly end: number;
  done: boolean;
}

type Admission = "hold" | "coalesce" | "spill" | "journal" | "drop";

/** `ready`: its head entry may go in the next batch. `busy`: in flight. `waiting`: backing off. */
type DeviceState = "ready" | "busy" | "waiting";

interface DeviceQueue {
  readonly deviceId: string;
  readonly entries: Entry[];
  state: DeviceState;
}

/** FIFO, O(1) at both ends (device queues whose head entry is sendable; spill offsets). */
class Fifo<T> {
  private items: T[] = [];
  private head = 0;
  get length(): number {
    return this.items.length - this.head;
  }
  push(q: T): void {
    this.items.push(q);
  }
  peek(): T | undefined {
    return this.items[this.head];
  }
  shift(): T | undefined {
    const q = this.items[this.head];
    if (q === undefined) return undefined;
    this.items[this.head++] = undefined as unknown as T;
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
  const maxQueuedBytes = config.maxQueuedBytes ?? 16 * 1024 * 1024;
  const coalescing = new Set(config.coalesce ?? COALESCED_TYPES);
  const spillFlushMs = config.spillFlushMs ?? 20;
  const log = deps.log ?? silentLogger;
  const random = deps.random ?? Math.random;
  const limiter = createRateLimiter({ intervalMs: deps.logIntervalMs ?? 60_000 });
  const warn = (key: string, msg: string, fields: Record<string, unknown>) => {
    const { allowed, suppressed } = limiter.allow(key);
    if (allowed) log.warn(msg, suppressed ? { ...fields, suppressed } : fields);
  };

  const devices = new Map<string, DeviceQueue>();
  const ready = new Fifo<DeviceQueue>();
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
    queuedBytes: 0,
    coalesced: 0,
    spilled: 0,
    restored: 0,
    journaled: 0,
    onDisk: 0,
    spillBytes: 0,
    spillCorrupt: 0,
    cloudReachable: 1,
  };
  const droppedKinds: Record<string, number> = {};
  const spill: SpillFile | undefined = config.spill && openSpillFile(config.spill);
  const journal = spill !== undefined && config.journal === true;
  /** Spill lines read back and not yet acknowledged, in file order. */
  const tracks = new Fifo<SpillTrack>();
  let headOutstanding = 0;
  let spillFlushTimer: NodeJS.Timeout | undefined;
  let persistTimer: NodeJS.Timeout | undefined;
  let lingerTimer: NodeJS.Timeout | undefined;
  let accepting = true;
  let draining = false;
  let closing: Promise<void> | undefined;
  let onIdle: (() => void) | undefined;

  const drop = (count: number, reason: string, type = "unknown") => {
    c.dropped += count;
    droppedKinds[type] = (droppedKinds[type] ?? 0) + count;
    if (reason === "spill-full" || reason === "overflow") {
      // Loud: an event is lost (issue 7: never silently).
      const { allowed, suppressed } = limiter.allow(`drop:${reason}:${type}`);
      if (allowed) {
        log.error(`${label} dropped: events_dropped_total{kind="${type}"}`, {
          reason,
          kind: type,
          total: droppedKinds[type],
          queued: c.queued,
          spillBytes: spill?.bytes ?? 0,
          ...(suppressed ? { suppressed } : {}),
        });
      }
      return;
    }
    warn(`drop:${reason}`, `${label} dropped`, { reason, count, type, queued: c.queued });
  };

  const full = (entry: Entry) =>
    c.queued >= maxQueued || c.queuedBytes + entry.bytes > maxQueuedBytes;

  /** The device's newest entry when it may be replaced (queued, not in flight). */
  const replaceableTail = (deviceId: string, type: string): Entry | undefined => {
    const q = devices.get(deviceId);
    if (!q) return undefined;
    const tail = q.entries[q.entries.length - 1]!;
    if (tail.type !== type) return undefined;
    if (q.state === "busy" && q.entries.length === 1) return undefined; // in flight
    return tail;
  };

  /**
   * Admission: the one place that decides where an event goes. `hold`: memory. `coalesce`: it
   * replaces the device's queued tail of the same type. `spill`: the disk tail of the queue (the
   * memory bound is hit, or earlier events are still on disk: order). `journal`: through the file
   * whatever the memory (journal mode). `drop`: counted and logged.
   */
  const admit = (deviceId: string, entry: Entry): Admission => {
    if (!accepting) {
      drop(1, "closed", entry.type);
      return "drop";
    }
    if (entry.bytes > maxBytes) {
      drop(1, "too-large", entry.type);
      return "drop";
    }
    if (journal && spill.append(entry.body)) return "journal";
    const onDisk = spill?.pending ?? false;
    if (!onDisk && coalescing.has(entry.type) && replaceableTail(deviceId, entry.type)) {
      return "coalesce";
    }
    if (!onDisk && !full(entry)) return "hold";
    if (spill) {
      if (spill.append(entry.body)) return "spill";
      // The disk is full but memory has room: held out of order (the registry's per-device
      // versions discard whatever arrives stale) rather than lost.
      if (!full(entry)) return "hold";
      drop(1, "spill-full", entry.type);
      return "drop";
    }
    c.overflow++;
    drop(1, "overflow", entry.type);
    return "drop";
  };

  /** An entry is finished (acknowledged or given up): its spill offset may be committed. */
  const finish = (entry: Entry) => {
    if (entry.fromHead) {
      entry.fromHead = false;
      if (--headOutstanding === 0) spill?.dropHead();
    }
    const t = entry.track;
    if (!t || !spill) return;
    entry.track = undefined;
    t.done = true;
    let end = -1;
    for (let head = tracks.peek(); head?.done; head = tracks.peek()) {
      end = head.end;
      tracks.shift();
    }
    if (end >= 0) spill.commit(end);
  };

  const hold = (deviceId: string, entry: Entry) => {
    c.queued++;
    c.queuedBytes += entry.bytes;
    let q = devices.get(deviceId);
    if (q) {
      q.entries.push(entry);
    } else {
      q = { deviceId, entries: [entry], state: "ready" };
      devices.set(deviceId, q);
      ready.push(q);
    }
  };

  const coalesce = (deviceId: string, entry: Entry) => {
    const tail = replaceableTail(deviceId, entry.type)!;
    c.coalesced++;
    c.queuedBytes += entry.bytes - tail.bytes;
    tail.body = entry.body;
    tail.bytes = entry.bytes;
    // The replaced copy is done with; the tail now stands for the newer one.
    finish(tail);
    tail.track = entry.track;
  };

  const scheduleSpillFlush = () => {
    if (spillFlushTimer || !spill) return;
    spillFlushTimer = setTimeout(() => {
      spillFlushTimer = undefined;
      spill.flush();
      c.spillBytes = spill.bytes;
      // A journal is read back at once: its events are sent from memory as usual.
      if (journal) refill();
    }, spillFlushMs);
  };

  /** Moves spilled events back into memory while it is below half its bounds, in file order. */
  const refill = () => {
    if (!spill || !accepting) return;
    while (spill.pending && c.queued < maxQueued / 2 && c.queuedBytes < maxQueuedBytes / 2) {
      const room = Math.max(1, Math.ceil(maxQueued / 2) - c.queued);
      for (const { line, end } of spill.read(room)) {
        const track: SpillTrack = { end, done: false };
        tracks.push(track);
        if (c.onDisk > 0) c.onDisk--;
        const entry = parseLine(line, track);
        if (!entry) continue;
        c.restored++;
        if (coalescing.has(entry.type) && replaceableTail(entry.deviceId, entry.type)) {
          coalesce(entry.deviceId, entry);
        } else {
          hold(entry.deviceId, entry);
        }
      }
    }
    c.spillBytes = spill.bytes;
    if (ready.length > 0) pump(false);
  };

  /** A spill or head line back to an entry; undefined (and finished) when it is not one. */
  const parseLine = (
    line: string,
    track: SpillTrack | undefined,
  ): (Entry & { deviceId: string }) | undefined => {
    let parsed: { deviceId?: unknown; type?: unknown } | undefined;
    try {
      parsed = JSON.parse(line) as typeof parsed;
    } catch {
      parsed = undefined;
    }
    if (typeof parsed?.deviceId !== "string" || typeof parsed.type !== "string") {
      c.spillCorrupt++;
      warn("spill-corrupt", `${label}: unreadable spill line skipped`, {
        line: line.slice(0, 200),
      });
      if (track) {
        finish({ body: "", bytes: 0, type: "", attempts: 0, track });
      }
      return undefined;
    }
    return {
      deviceId: parsed.deviceId,
      body: line,
      bytes: Buffer.byteLength(line),
      type: parsed.type,
      attempts: 0,
      ...(track ? { track } : {}),
    };
  };

  const settleIfIdle = () => {
    if (c.queued === 0 && c.inFlightBatches === 0 && onIdle) onIdle();
  };

  /** Removes the head entry of a device (acknowledged or given up) and moves the device on. */
  const advance = (q: DeviceQueue) => {
    const done = q.entries.shift()!;
    c.queued--;
    c.queuedBytes -= done.bytes;
    finish(done);
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
    c.cloudReachable = callError === undefined ? 1 : 0;
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
    refill();
    pump(false);
    settleIfIdle();
  };

  if (spill) {
    // The previous run's leftovers: its memory (head file) first, then its spill.
    for (const line of spill.readHead()) {
      const entry = parseLine(line, undefined);
      if (!entry) continue;
      entry.fromHead = true;
      headOutstanding++;
      c.restored++;
      hold(entry.deviceId, entry);
    }
    if (headOutstanding === 0) spill.dropHead();
    c.spillBytes = spill.bytes;
    if (c.restored > 0 || spill.pending) {
      log.info(`${label}: resuming events kept on disk`, {
        head: headOutstanding,
        spillBytes: spill.bytes,
      });
    }
    refill();
    scheduleLinger();
    persistTimer = setInterval(() => {
      spill.flush();
      spill.persist();
      c.spillBytes = spill.bytes;
      refill();
    }, 1000);
    persistTimer.unref();
  }

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
      switch (admit(event.deviceId, entry)) {
        case "hold":
          hold(event.deviceId, entry);
          break;
        case "coalesce":
          coalesce(event.deviceId, entry);
          return;
        case "spill":
          c.spilled++;
          c.onDisk++;
          scheduleSpillFlush();
          return;
        case "journal":
          // An overflow when it would not have fitted in memory behind what is already waiting.
          if (c.queued + c.onDisk >= maxQueued || c.queuedBytes + entry.bytes > maxQueuedBytes) {
            c.spilled++;
          } else {
            c.journaled++;
          }
          c.onDisk++;
          // Written before emit returns: the caller answers the device next ("stored"), so the
          // event must already be in the file when a SIGKILL follows (the kernel keeps it).
          spill?.flush();
          scheduleSpillFlush();
          return;
        case "drop":
          return;
      }
      if (ready.length >= maxEntries) pump(false);
      else scheduleLinger();
    },

    counters: () => ({ ...c, spillBytes: spill?.bytes ?? 0 }),
    droppedByKind: () => ({ ...droppedKinds }),

    close() {
      closing ??= (async () => {
        if (journal) {
          // The journal's latest lines go into memory now, to be sent within the close deadline.
          if (spillFlushTimer) clearTimeout(spillFlushTimer);
          spillFlushTimer = undefined;
          refill();
        }
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
        if (spillFlushTimer) clearTimeout(spillFlushTimer);
        spillFlushTimer = undefined;
        if (persistTimer) clearInterval(persistTimer);
        persistTimer = undefined;
        if (spill) {
          try {
            const left: string[] = [];
            for (const q of devices.values()) for (const e of q.entries) left.push(e.body);
            if (left.length > 0) spill.saveHead(left);
            else if (headOutstanding > 0) spill.dropHead();
            if (left.length > 0) {
              log.warn(`${label} kept on disk for the next start`, { count: left.length });
            }
            c.queued = 0;
            c.queuedBytes = 0;
            devices.clear();
          } catch (err) {
            log.error(`${label}: cannot save the held events to disk`, { err });
          } finally {
            spill.close();
          }
        }
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
