import {
  closeSync,
  existsSync,
  fdatasync,
  fdatasyncSync,
  fstatSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  renameSync,
  rmdirSync,
  rmSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";

/**
 * The on-disk tail of an event sink's queue (issue 7 item 1): when the sink's memory bound is hit,
 * events are appended here as JSON Lines, and read back in order once memory frees up. Everything
 * in the file is newer than everything the sink holds in memory, so draining it after memory keeps
 * the order (per device and overall). Lines are buffered and written in batches (one `write` per
 * batch, never a syscall per event on the signalling path) and `fdatasync`'d after each batch.
 *
 * Files in `dir` (one set per sink `name`):
 * - `<name>.jsonl`: the spill, append-only; truncated once every line was read and acknowledged;
 * - `<name>.offset`: how far the acknowledged prefix reaches (a restart resumes from there, so a
 *   crash costs at most duplicates, never losses);
 * - `<name>.head.jsonl`: what the sink still held in memory when it was closed (older than the
 *   spill): re-read first at start, removed once all of it was acknowledged.
 *
 * Offsets handed out (`SpillLine.end`, `commit`) are logical: they stay valid across a compaction,
 * which drops the acknowledged prefix of the file (`base` is what it dropped).
 *
 * I/O is synchronous and bounded per call (a batch of appends, a read of at most `readChunkBytes`),
 * which keeps the order trivially right and costs well under a millisecond from the page cache.
 */

export interface SpillFileConfig {
  dir: string;
  /** File name stem, e.g. `device-events`. */
  name: string;
  /** Size of `<name>.jsonl` beyond which appends are refused. */
  maxBytes: number;
  /** Bytes read per `read()`. Default 1 MiB. */
  readChunkBytes?: number;
  /**
   * A file whose acknowledged prefix reaches this size, with little left after it, is compacted
   * (the rest copied to a new file), so a spill that never fully drains (a journal under steady
   * traffic) does not grow without end. Default 64 MiB.
   */
  compactAfterBytes?: number;
}

export interface SpillLine {
  readonly line: string;
  /** File offset just past this line: acknowledge it with `commit`. */
  readonly end: number;
}

export interface SpillFile {
  /** True while lines were appended and not yet read back. */
  readonly pending: boolean;
  /** Bytes in the spill file (read or not), plus bytes waiting to be written. */
  readonly bytes: number;
  /** Lines appended in this process. */
  readonly appended: number;
  /** Queues a line; false (nothing queued) when the file would exceed `maxBytes`. */
  append(line: string): boolean;
  /** Writes queued lines and schedules their fdatasync. */
  flush(): void;
  /** Reads up to `maxLines` next complete lines after what was already read (flushes first). */
  read(maxLines?: number): SpillLine[];
  /** Lines up to `end` are acknowledged; truncates the file when everything was. */
  commit(end: number): void;
  /** The head file's lines (written by `saveHead` of an earlier run), or empty. */
  readHead(): string[];
  /** Replaces the head file with `lines` (atomically) and marks everything read as consumed. */
  saveHead(lines: readonly string[]): void;
  /** Removes the head file (all of it acknowledged). */
  dropHead(): void;
  /** Writes the acknowledged offset to `<name>.offset` when it moved (called periodically). */
  persist(): void;
  /** Writes what is queued, persists the offset, closes the file. Idempotent. */
  close(): void;
}

export function openSpillFile(config: SpillFileConfig): SpillFile {
  const file = join(config.dir, `${config.name}.jsonl`);
  const offsetFile = join(config.dir, `${config.name}.offset`);
  const headFile = join(config.dir, `${config.name}.head.jsonl`);
  const chunk = config.readChunkBytes ?? 1024 * 1024;
  const compactAfter = config.compactAfterBytes ?? 64 * 1024 * 1024;
  // Nothing is created until something is spilled: an agent that never overflows leaves no files.
  let fd: number | undefined;
  let size = 0;
  const open = (): number => {
    if (fd === undefined) {
      mkdirSync(config.dir, { recursive: true });
      fd = openSync(file, "a+");
    }
    return fd;
  };
  if (existsSync(file)) {
    const f = open();
    size = fstatSync(f).size;
    // A line cut short by a crash (never acknowledged to anyone) is removed.
    if (size > 0) {
      const tail = Buffer.alloc(Math.min(size, 64 * 1024));
      let end = size;
      let cut = -1;
      while (end > 0 && cut < 0) {
        const start = Math.max(0, end - tail.length);
        const n = readSync(f, tail, 0, end - start, start);
        const at = tail.subarray(0, n).lastIndexOf(0x0a);
        if (at >= 0) cut = start + at + 1;
        end = start;
      }
      if (cut < 0) cut = 0;
      if (cut !== size) {
        ftruncateSync(f, cut);
        size = cut;
      }
    }
  }
  let committed = 0;
  try {
    const n = Number(readFileSync(offsetFile, "utf8").trim());
    if (Number.isInteger(n) && n >= 0 && n <= size) committed = n;
  } catch {
    // No offset yet: read from the start.
  }
  let readOffset = committed;
  let persisted = committed;
  /** Logical offset of the file's first byte (what compactions dropped). */
  let base = 0;
  let queued: string[] = [];
  let queuedBytes = 0;
  let appended = 0;
  let syncing = false;
  let syncAgain = false;
  let closed = false;
  let carry = Buffer.alloc(0);

  const persistOffset = () => {
    if (persisted === committed || fd === undefined) return;
    writeFileSync(offsetFile, String(committed - base));
    persisted = committed;
  };

  /** Copies the unacknowledged rest to a fresh file (a crash in between re-reads, never skips). */
  const compact = (f: number) => {
    const keep = size - committed;
    const rest = Buffer.alloc(keep);
    let got = 0;
    while (got < keep) {
      const n = readSync(f, rest, got, keep - got, committed - base + got);
      if (n === 0) break;
      got += n;
    }
    const tmp = `${file}.compact`;
    const out = openSync(tmp, "w");
    try {
      if (got > 0) writeSync(out, rest, 0, got);
      fdatasyncSync(out);
    } finally {
      closeSync(out);
    }
    renameSync(tmp, file);
    closeSync(f);
    fd = openSync(file, "a+");
    base = committed;
    persisted = -1;
    persistOffset();
  };

  const sync = () => {
    if (syncing) {
      syncAgain = true;
      return;
    }
    if (fd === undefined) return;
    syncing = true;
    fdatasync(fd, () => {
      syncing = false;
      if (syncAgain && !closed) {
        syncAgain = false;
        sync();
      }
    });
  };

  const flush = () => {
    if (queued.length === 0 || closed) return;
    const data = Buffer.from(queued.join(""), "utf8");
    queued = [];
    queuedBytes = 0;
    const f = open();
    let off = 0;
    while (off < data.length) off += writeSync(f, data, off, data.length - off, null);
    size += data.length;
    sync();
  };

  return {
    get pending() {
      return queued.length > 0 || readOffset < size;
    },
    get bytes() {
      return size - base + queuedBytes;
    },
    get appended() {
      return appended;
    },
    append(line) {
      if (closed) return false;
      const text = `${line}\n`;
      const n = Buffer.byteLength(text);
      if (size - base + queuedBytes + n > config.maxBytes) return false;
      queued.push(text);
      queuedBytes += n;
      appended++;
      return true;
    },
    flush,
    read(maxLines = Number.POSITIVE_INFINITY) {
      flush();
      const out: SpillLine[] = [];
      if (closed || readOffset >= size || fd === undefined) return out;
      const want = Math.min(chunk, size - readOffset);
      const buf = Buffer.alloc(want);
      const n = readSync(fd, buf, 0, want, readOffset - base);
      const data =
        carry.length > 0 ? Buffer.concat([carry, buf.subarray(0, n)]) : buf.subarray(0, n);
      const from = readOffset - carry.length;
      let start = 0;
      while (out.length < maxLines) {
        const nl = data.indexOf(0x0a, start);
        if (nl < 0) break;
        const line = data.toString("utf8", start, nl);
        start = nl + 1;
        if (line.length > 0) out.push({ line, end: from + start });
      }
      if (out.length >= maxLines) {
        // Stopped early: the rest is read again next time.
        readOffset = from + start;
        carry = Buffer.alloc(0);
      } else {
        readOffset += n;
        carry = Buffer.from(data.subarray(start));
      }
      return out;
    },
    commit(end) {
      if (closed || end <= committed) return;
      committed = end;
      if (committed >= size && queued.length === 0 && carry.length === 0) {
        // Everything acknowledged: offset first (a crash in between re-reads, never skips).
        committed = 0;
        readOffset = 0;
        writeFileSync(offsetFile, "0");
        persisted = 0;
        if (fd !== undefined) ftruncateSync(fd, 0);
        size = 0;
        base = 0;
      } else if (
        fd !== undefined &&
        committed - base >= compactAfter &&
        size - committed <= Math.max(chunk, 4 * 1024 * 1024)
      ) {
        flush();
        compact(fd);
      }
    },
    readHead() {
      if (!existsSync(headFile)) return [];
      return readFileSync(headFile, "utf8")
        .split("\n")
        .filter((l) => l.length > 0);
    },
    saveHead(lines) {
      mkdirSync(config.dir, { recursive: true });
      const tmp = `${headFile}.tmp`;
      const fdh = openSync(tmp, "w");
      try {
        const data = lines.map((l) => `${l}\n`).join("");
        if (data.length > 0) writeSync(fdh, data);
      } finally {
        closeSync(fdh);
      }
      renameSync(tmp, headFile);
      // What was read from the spill is in memory, so in the head file now (all of it read:
      // the file is truncated).
      this.commit(readOffset - carry.length);
    },
    dropHead() {
      try {
        unlinkSync(headFile);
      } catch {
        // Already gone.
      }
    },
    persist() {
      if (!closed) persistOffset();
    },
    close() {
      if (closed) return;
      flush();
      closed = true;
      if (fd === undefined) return;
      try {
        fdatasyncSync(fd);
        persistOffset();
      } finally {
        closeSync(fd);
      }
      if (size === 0) {
        // Nothing left: leave no files behind (the directory too, once the other sinks' are gone).
        for (const f of [file, offsetFile]) rmSync(f, { force: true });
        try {
          rmdirSync(config.dir);
        } catch {
          // Not empty: another sink's files, or a head file.
        }
      }
    },
  };
}
