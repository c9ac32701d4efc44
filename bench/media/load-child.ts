/**
 * The load side of the live-streams benchmark (bench/media/live.ts), forked with bench/lib/child.ts
 * in one of two modes (argv[2]):
 *
 * - `pusher`: the devices. `{op: "push", streams: [{port, session}], bitrateBps, gopFrames}`
 *   connects one socket per stream to its leased pool port and pushes a live-source.ts stream at
 *   the bitrate, paced frame by frame (25 fps, stream phases spread over a frame interval), each
 *   frame stamped with its send time. `{op: "stop"}` stops pushing; `{op: "report", ...}`.
 * - `viewer`: the viewers. `{op: "view", viewers: [{url, format, stalled}]}` opens them (healthy
 *   ones read everything and read the stamps; a stalled one sends its GET and never reads);
 *   `{op: "report", fromMicros, toMicros}` summarises each viewer over that window.
 *
 * Both answer `{op: "cpu"}` with their own CPU use (bench/media/live.ts reports it per process).
 */
import { connect, type Socket } from "node:net";
import { serveParent } from "../lib/child.ts";
import { quantile, round } from "../lib/stats.ts";
import {
  createLiveSources,
  createStampReader,
  type LiveSource,
  wallMicros,
} from "./live-source.ts";

const HOST = "127.0.0.1";
const mode = process.argv[2];
/** A device skips a frame due this late, or while this much is queued on its socket. */
const MAX_LATE_MS = 1000;
const MAX_BACKLOG_BYTES = 1024 * 1024;
const BIN_MICROS = 100_000;

/** This process's CPU (user + system µs) and the wall clock, for the load processes' own cost. */
export interface LoadCpu {
  atMicros: number;
  cpuMicros: number;
}

function cpuNow(): LoadCpu {
  const c = process.cpuUsage();
  return { atMicros: wallMicros(), cpuMicros: c.user + c.system };
}

/** Bytes per 100 ms bin of wall time from `t0`: one number per bin, no per-chunk allocation. */
class Bins {
  private counts = new Float64Array(1024);
  constructor(readonly t0: number) {}
  add(atMicros: number, bytes: number): void {
    const i = Math.max(0, Math.floor((atMicros - this.t0) / BIN_MICROS));
    if (i >= this.counts.length) {
      const grown = new Float64Array(Math.max(2 * this.counts.length, i + 1));
      grown.set(this.counts);
      this.counts = grown;
    }
    this.counts[i]! += bytes;
  }
  /** Bytes in the bins that start in [from, to). */
  sum(from: number, to: number): number {
    let n = 0;
    for (let i = 0; i < this.counts.length; i++) {
      const at = this.t0 + i * BIN_MICROS;
      if (at >= from && at < to) n += this.counts[i]!;
    }
    return n;
  }
}

// Pusher ------------------------------------------------------------------------------------------

interface Pushed {
  socket: Socket;
  source: LiveSource;
  due: number;
  /** PS bytes sent per 100 ms of wall time since the push started. */
  bins: Bins;
  framesSent: number;
  maxBacklogBytes: number;
  lateFrames: number;
  skippedFrames: number;
  closed: boolean;
}

export interface PusherReport {
  streams: number;
  framesSent: number;
  /** PS bytes per second per stream in the window, median over streams. */
  psBitrateBpsMedian: number;
  /** Frames sent more than 2 frame intervals after their due time (the pusher fell behind). */
  lateFrames: number;
  /** Frames not sent: over 1 s late, or over 1 MiB queued on the device's socket. */
  skippedFrames: number;
  /** Largest device-socket backlog seen (bytes queued because the agent did not read). */
  maxBacklogBytes: number;
  closedByAgent: number;
}

function runPusher(): void {
  const pushed: Pushed[] = [];
  let timer: NodeJS.Timeout | undefined;
  serveParent(
    { pid: process.pid },
    {
      async handle(body) {
        const req = body as {
          op: string;
          streams?: Array<{ port: number; session: number; index?: number }>;
          bitrateBps?: number;
          gopFrames?: number;
          fromMicros?: number;
          toMicros?: number;
        };
        if (req.op === "push") {
          const list = req.streams ?? [];
          const frameMs = 40;
          const t0 = performance.now() + 50;
          const gopFrames = req.gopFrames ?? 25;
          const sources = createLiveSources({
            bitrateBps: req.bitrateBps ?? 4_000_000,
            gopFrames,
          });
          const t0Micros = wallMicros();
          await Promise.all(
            list.map(
              (s, i) =>
                new Promise<void>((resolve, reject) => {
                  // GOP phases spread over the GOP, as unsynchronised cameras' are.
                  const source = sources(s.session, (s.index ?? i) % gopFrames);
                  const socket = connect({ port: s.port, host: HOST }, () => {
                    socket.write(source.header());
                    resolve();
                  });
                  const p: Pushed = {
                    socket,
                    source,
                    due: t0 + (frameMs * i) / list.length,
                    bins: new Bins(t0Micros),
                    framesSent: 0,
                    maxBacklogBytes: 0,
                    lateFrames: 0,
                    skippedFrames: 0,
                    closed: false,
                  };
                  socket.once("error", reject);
                  socket.on("error", () => {});
                  socket.once("close", () => {
                    p.closed = true;
                  });
                  pushed.push(p);
                }),
            ),
          );
          timer = setInterval(() => {
            const now = performance.now();
            for (const p of pushed) {
              if (p.closed) continue;
              while (p.due <= now) {
                const late = now - p.due;
                if (late > 2 * frameMs) p.lateFrames++;
                // A camera drops frames it cannot send: no burst of a second's backlog, no
                // unbounded send queue when the agent does not read.
                if (late > MAX_LATE_MS || p.socket.writableLength > MAX_BACKLOG_BYTES) {
                  p.skippedFrames++;
                  p.due += frameMs;
                  continue;
                }
                const at = wallMicros();
                const f = p.source.nextFrame(at);
                p.socket.write(f.wire.length === 1 ? f.wire[0]! : Buffer.concat(f.wire));
                p.bins.add(at, f.psBytes);
                p.framesSent++;
                p.due += frameMs;
              }
              if (p.socket.writableLength > p.maxBacklogBytes) {
                p.maxBacklogBytes = p.socket.writableLength;
              }
            }
          }, 5);
          return { streams: pushed.length };
        }
        if (req.op === "stop") {
          clearInterval(timer);
          return {};
        }
        if (req.op === "report") {
          const from = req.fromMicros ?? 0;
          const to = req.toMicros ?? Number.MAX_SAFE_INTEGER;
          const seconds = (to - from) / 1e6;
          const rates = pushed.map((p) => (p.bins.sum(from, to) * 8) / seconds);
          return {
            streams: pushed.length,
            framesSent: pushed.reduce((n, p) => n + p.framesSent, 0),
            psBitrateBpsMedian: round(quantile(rates, 0.5)),
            lateFrames: pushed.reduce((n, p) => n + p.lateFrames, 0),
            skippedFrames: pushed.reduce((n, p) => n + p.skippedFrames, 0),
            maxBacklogBytes: Math.max(0, ...pushed.map((p) => p.maxBacklogBytes)),
            closedByAgent: pushed.filter((p) => p.closed).length,
          } satisfies PusherReport;
        }
        if (req.op === "cpu") return cpuNow();
        throw new Error(`unknown op ${req.op}`);
      },
      close() {
        clearInterval(timer);
        for (const p of pushed) p.socket.destroy();
      },
    },
  );
}

// Viewer ------------------------------------------------------------------------------------------

interface Watched {
  format: "ps" | "ts";
  stalled: boolean;
  /** Bytes received per 100 ms of wall time. */
  bins: Bins;
  /** Arrival wall µs and lag ms, flat pairs (one array, no tuple per stamp). */
  lags: number[];
  closedAtMicros: number | undefined;
  destroy(): void;
}

export interface ViewerReport {
  format: "ps" | "ts";
  stalled: boolean;
  /** Bytes received in the window × 8 / window seconds. */
  bitrateBps: number;
  stamps: number;
  lagMedianMs: number;
  lagP95Ms: number;
  lagMaxMs: number;
  /** Median lag of the window's last quarter − median lag of its first quarter. */
  lagGrowthMs: number;
  closed: boolean;
}

const HEADER_END = Buffer.from("\r\n\r\n");

/**
 * A healthy viewer on a raw socket: sends the GET, checks the status line, then per chunk only
 * counts the bytes and looks for stamps (no HTTP parser: the relay writes whole packs per chunk,
 * so chunked-encoding lines never cut a stamp, and they add ~0.05 % to the byte count).
 */
function openHealthy(url: string, w: Watched): Promise<void> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const read = createStampReader((sent) => {
      const now = wallMicros();
      w.lags.push(now, (now - sent) / 1000);
    });
    let head: Buffer | undefined = Buffer.alloc(0);
    const s = connect({ port: Number(u.port), host: u.hostname }, () => {
      s.write(`GET ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\n\r\n`);
    });
    s.on("data", (c: Buffer) => {
      if (head !== undefined) {
        head = Buffer.concat([head, c]);
        const end = head.indexOf(HEADER_END);
        if (end < 0) return;
        if (!head.subarray(0, 16).toString("latin1").startsWith("HTTP/1.1 200")) {
          reject(new Error(`viewer ${url}: ${head.subarray(0, 40).toString("latin1")}`));
          s.destroy();
          return;
        }
        const body = head.subarray(end + HEADER_END.length);
        head = undefined;
        resolve();
        if (body.length === 0) return;
        c = body;
      }
      w.bins.add(wallMicros(), c.length);
      read(c);
    });
    s.once("error", reject);
    s.on("error", () => {});
    s.once("close", () => {
      w.closedAtMicros ??= wallMicros();
    });
    w.destroy = () => s.destroy();
  });
}

/** Sends the GET, then never reads: the agent's writes pile up until it drops the viewer. */
function openStalled(url: string, w: Watched): Promise<void> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const s = connect({ port: Number(u.port), host: u.hostname }, () => {
      s.write(`GET ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\n\r\n`);
      s.pause();
      resolve();
    });
    s.once("error", reject);
    s.on("error", () => {});
    s.once("close", () => {
      w.closedAtMicros ??= wallMicros();
    });
    w.destroy = () => s.destroy();
  });
}

function summarise(w: Watched, from: number, to: number): ViewerReport {
  const seconds = (to - from) / 1e6;
  const bytes = w.bins.sum(from, to);
  const quarter = (to - from) / 4;
  const first: number[] = [];
  const last: number[] = [];
  const values: number[] = [];
  for (let k = 0; k < w.lags.length; k += 2) {
    const at = w.lags[k]!;
    const l = w.lags[k + 1]!;
    if (at < from || at >= to) continue;
    values.push(l);
    if (at < from + quarter) first.push(l);
    if (at >= to - quarter) last.push(l);
  }
  return {
    format: w.format,
    stalled: w.stalled,
    bitrateBps: round((bytes * 8) / seconds),
    stamps: values.length,
    lagMedianMs: round(quantile(values, 0.5), 1),
    lagP95Ms: round(quantile(values, 0.95), 1),
    lagMaxMs: round(values.length ? Math.max(...values) : Number.NaN, 1),
    lagGrowthMs: round(quantile(last, 0.5) - quantile(first, 0.5), 1),
    closed: w.closedAtMicros !== undefined,
  };
}

function runViewer(): void {
  const watched: Watched[] = [];
  serveParent(
    { pid: process.pid },
    {
      async handle(body) {
        const req = body as {
          op: string;
          viewers?: Array<{ url: string; format: "ps" | "ts"; stalled: boolean }>;
          fromMicros?: number;
          toMicros?: number;
        };
        if (req.op === "view") {
          await Promise.all(
            (req.viewers ?? []).map((v) => {
              const w: Watched = {
                format: v.format,
                stalled: v.stalled,
                bins: new Bins(wallMicros()),
                lags: [],
                closedAtMicros: undefined,
                destroy: () => {},
              };
              watched.push(w);
              return v.stalled ? openStalled(v.url, w) : openHealthy(v.url, w);
            }),
          );
          return { viewers: watched.length };
        }
        if (req.op === "report") {
          const from = req.fromMicros ?? 0;
          const to = req.toMicros ?? wallMicros();
          return watched.map((w) => summarise(w, from, to));
        }
        if (req.op === "cpu") return cpuNow();
        throw new Error(`unknown op ${req.op}`);
      },
      close() {
        for (const w of watched) w.destroy();
      },
    },
  );
}

if (mode === "pusher") runPusher();
else if (mode === "viewer") runViewer();
else throw new Error(`load-child: unknown mode ${mode}`);
