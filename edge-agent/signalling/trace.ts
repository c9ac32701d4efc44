import { type FileHandle, open, rename, stat } from "node:fs/promises";
import type { Logger } from "../log.ts";
import type { TraceDirection, TraceRecorder } from "../ports.ts";
import { decodeText } from "./codec/text.ts";

/**
 * Trace mode (ehome-2.0 §8 rule 4, issue 2 item 7): every signalling datagram both ways as JSON
 * Lines `{time, peer, direction, hex, text}` (text = the decoded string, or null when the bytes
 * are neither UTF-8 nor GB18030), rotating by size: `file` → `file.1` → ... → `file.<keep>`.
 *
 * `record` never blocks and never throws: it appends a reference to a bounded in-memory queue and
 * a single async writer drains it in batches. When the queue is full the record is dropped and
 * counted; formatting (hex, decoding) happens in the writer, off the receive path.
 */

export interface TraceOptions {
  file: string;
  /** Rotate before the file would grow past this. */
  maxBytes: number;
  /** Rotated files kept (`file.1` .. `file.<keep>`). Default 3. */
  keep?: number;
  /** Records held in memory while the writer catches up. Default 10,000. */
  maxQueue?: number;
  now?: () => number;
  log?: Logger;
}

export interface TraceWriter extends TraceRecorder {
  readonly written: number;
  readonly rotations: number;
  /** Resolves when everything queued so far is written (tests). */
  flush(): Promise<void>;
}

interface Item {
  time: number;
  direction: TraceDirection;
  host: string;
  port: number;
  bytes: Uint8Array;
}

const BATCH = 256;

export function formatTraceLine(item: Item): string {
  const decoded = decodeText(item.bytes);
  const peer = item.host.includes(":")
    ? `[${item.host}]:${item.port}`
    : `${item.host}:${item.port}`;
  return `${JSON.stringify({
    time: new Date(item.time).toISOString(),
    peer,
    direction: item.direction,
    hex: Buffer.from(item.bytes.buffer, item.bytes.byteOffset, item.bytes.byteLength).toString(
      "hex",
    ),
    text: decoded.ok ? decoded.text : null,
  })}\n`;
}

export function createTraceWriter(options: TraceOptions): TraceWriter {
  const keep = options.keep ?? 3;
  const maxQueue = options.maxQueue ?? 10_000;
  const now = options.now ?? Date.now;
  let queue: Item[] = [];
  let handle: FileHandle | undefined;
  let size = 0;
  let draining: Promise<void> | undefined;
  let closed = false;
  let closing: Promise<void> | undefined;
  let dropped = 0;
  let written = 0;
  let rotations = 0;
  let errorLogged = false;

  const openFile = async (flags: "a" | "w"): Promise<void> => {
    handle = await open(options.file, flags);
    size = flags === "a" ? (await stat(options.file)).size : 0;
  };

  const rotate = async (): Promise<void> => {
    await handle?.close();
    handle = undefined;
    for (let i = keep - 1; i >= 1; i--) {
      await rename(`${options.file}.${i}`, `${options.file}.${i + 1}`).catch(() => {});
    }
    if (keep >= 1) await rename(options.file, `${options.file}.1`).catch(() => {});
    rotations++;
    await openFile("w");
  };

  const writeBatch = async (items: Item[]): Promise<void> => {
    let chunk = "";
    for (const it of items) chunk += formatTraceLine(it);
    const bytes = Buffer.from(chunk, "utf8");
    if (!handle) await openFile("a");
    if (size > 0 && size + bytes.length > options.maxBytes) await rotate();
    await handle!.write(bytes);
    size += bytes.length;
    written += items.length;
  };

  const drain = async (): Promise<void> => {
    while (queue.length > 0) {
      const items = queue.length <= BATCH ? queue : queue.slice(0, BATCH);
      queue = queue.length <= BATCH ? [] : queue.slice(BATCH);
      try {
        await writeBatch(items);
      } catch (err) {
        dropped += items.length;
        if (!errorLogged) {
          errorLogged = true;
          options.log?.error("trace file write failed; records dropped", {
            file: options.file,
            err,
          });
        }
      }
    }
  };

  const kick = (): void => {
    if (draining) return;
    draining = drain().finally(() => {
      draining = undefined;
      if (queue.length > 0 && !closing) kick();
    });
  };

  return {
    record(direction, host, port, bytes) {
      if (closed) return;
      if (queue.length >= maxQueue) {
        dropped++;
        return;
      }
      queue.push({ time: now(), direction, host, port, bytes });
      kick();
    },
    get dropped() {
      return dropped;
    },
    get written() {
      return written;
    },
    get rotations() {
      return rotations;
    },
    async flush() {
      while (draining || queue.length > 0) {
        if (!draining) kick();
        await draining;
      }
    },
    close() {
      closed = true;
      closing ??= (async () => {
        while (draining || queue.length > 0) {
          if (!draining) await drain();
          else await draining;
        }
        await handle?.close();
        handle = undefined;
      })();
      return closing;
    },
  };
}
