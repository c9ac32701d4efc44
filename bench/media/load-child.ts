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
 */
import { request } from "node:http";
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

// Pusher ------------------------------------------------------------------------------------------

interface Pushed {
  socket: Socket;
  source: LiveSource;
  due: number;
  /** [wall µs, PS bytes] per frame sent. */
  frames: Array<[number, number]>;
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
          streams?: Array<{ port: number; session: number }>;
          bitrateBps?: number;
          gopFrames?: number;
          fromMicros?: number;
          toMicros?: number;
        };
        if (req.op === "push") {
          const list = req.streams ?? [];
          const frameMs = 40;
          const t0 = performance.now() + 50;
          const sources = createLiveSources({
            bitrateBps: req.bitrateBps ?? 4_000_000,
            gopFrames: req.gopFrames ?? 25,
          });
          await Promise.all(
            list.map(
              (s, i) =>
                new Promise<void>((resolve, reject) => {
                  const source = sources(s.session);
                  const socket = connect({ port: s.port, host: HOST }, () => {
                    socket.write(source.header());
                    resolve();
                  });
                  const p: Pushed = {
                    socket,
                    source,
                    due: t0 + (frameMs * i) / list.length,
                    frames: [],
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
                const f = p.source.nextFrame(wallMicros());
                p.socket.write(f.wire.length === 1 ? f.wire[0]! : Buffer.concat(f.wire));
                p.frames.push([wallMicros(), f.psBytes]);
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
          const rates = pushed.map((p) => {
            let bytes = 0;
            for (const [at, n] of p.frames) if (at >= from && at < to) bytes += n;
            return (bytes * 8) / seconds;
          });
          return {
            streams: pushed.length,
            framesSent: pushed.reduce((n, p) => n + p.frames.length, 0),
            psBitrateBpsMedian: round(quantile(rates, 0.5)),
            lateFrames: pushed.reduce((n, p) => n + p.lateFrames, 0),
            skippedFrames: pushed.reduce((n, p) => n + p.skippedFrames, 0),
            maxBacklogBytes: Math.max(0, ...pushed.map((p) => p.maxBacklogBytes)),
            closedByAgent: pushed.filter((p) => p.closed).length,
          } satisfies PusherReport;
        }
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
  /** Bytes received per 100 ms of wall time (key: wall µs / 100 000). */
  bins: Map<number, number>;
  /** [arrival wall µs, lag ms]. */
  lags: Array<[number, number]>;
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

function openHealthy(url: string, w: Watched): Promise<void> {
  return new Promise((resolve, reject) => {
    const read = createStampReader((sent) => {
      const now = wallMicros();
      w.lags.push([now, (now - sent) / 1000]);
    });
    const req = request(url, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        reject(new Error(`viewer ${url}: HTTP ${res.statusCode}`));
        return;
      }
      res.on("data", (c: Buffer) => {
        const bin = Math.floor(wallMicros() / BIN_MICROS);
        w.bins.set(bin, (w.bins.get(bin) ?? 0) + c.length);
        read(c);
      });
      res.once("close", () => {
        w.closedAtMicros ??= wallMicros();
      });
      resolve();
    });
    req.once("error", reject);
    req.on("error", () => {});
    w.destroy = () => req.destroy();
    req.end();
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
  let bytes = 0;
  for (const [bin, n] of w.bins) {
    if (bin * BIN_MICROS >= from && bin * BIN_MICROS < to) bytes += n;
  }
  const lags = w.lags.filter(([at]) => at >= from && at < to);
  const quarter = (to - from) / 4;
  const first = lags.filter(([at]) => at < from + quarter).map(([, l]) => l);
  const last = lags.filter(([at]) => at >= to - quarter).map(([, l]) => l);
  const values = lags.map(([, l]) => l);
  return {
    format: w.format,
    stalled: w.stalled,
    bitrateBps: round((bytes * 8) / seconds),
    stamps: lags.length,
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
                bins: new Map(),
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
