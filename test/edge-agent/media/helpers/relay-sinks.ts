/** Viewer sinks and a manual clock for the relay tests. */
import { Writable } from "node:stream";

/** A Writable that takes everything at once and keeps it. */
export class CollectingSink extends Writable {
  readonly chunks: Buffer[] = [];
  constructor() {
    super({
      write: (chunk: Buffer, _enc, cb) => {
        this.chunks.push(chunk);
        cb();
      },
    });
  }
  bytes(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

/**
 * A Writable that accepts writes but never flushes them (a viewer whose TCP window is closed):
 * `writableLength` grows and 'drain' never comes, until `release()` flushes what it holds.
 */
export class StalledSink extends Writable {
  readonly chunks: Buffer[] = [];
  private held: (() => void)[] = [];
  private flowing = false;
  constructor(highWaterMark = 16 * 1024) {
    super({
      highWaterMark,
      write: (chunk: Buffer, _enc, cb) => {
        this.chunks.push(chunk);
        if (this.flowing) cb();
        else this.held.push(cb);
      },
    });
  }
  /** Flushes what it holds and lets later writes through at once (until `stall()`). */
  release(): void {
    this.flowing = true;
    const held = this.held;
    this.held = [];
    for (const cb of held) cb();
  }
  stall(): void {
    this.flowing = false;
  }
  bytes(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

export interface ManualClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  advance(ms: number): void;
  pending(): number;
}

export function manualClock(): ManualClock {
  let t = 0;
  let id = 0;
  const timers = new Map<number, { at: number; fn: () => void }>();
  return {
    now: () => t,
    setTimeout(fn, ms) {
      timers.set(++id, { at: t + ms, fn });
      return id;
    },
    clearTimeout(handle) {
      timers.delete(handle as number);
    },
    advance(ms) {
      t += ms;
      for (const [k, v] of [...timers].sort((a, b) => a[1].at - b[1].at)) {
        if (v.at > t) continue;
        timers.delete(k);
        v.fn();
      }
    },
    pending: () => timers.size,
  };
}

/** Lets queued stream callbacks and events run. */
export function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
