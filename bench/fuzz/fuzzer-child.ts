/**
 * A fuzz sender process (bench/fuzz): fires `createFuzzSource` datagrams at the agent's signalling
 * and alarm ports from several loopback source addresses (127.0.0.x, one unconnected socket each),
 * open loop at a fixed rate in 1 ms ticks, and counts what it sent, what failed to send and the
 * replies it got. Answers `progress` while a `run` is under way.
 */
import { createSocket, type Socket } from "node:dgram";
import { serveParent } from "../lib/child.ts";
import { createFuzzSource, type FuzzKind, type FuzzSource } from "./datagrams.ts";

export interface FuzzerInit {
  type: "init";
  host: string;
  signalPort: number;
  alarmPort: number;
  /** Source addresses to bind, one socket each (round-robin per datagram). */
  sources: string[];
  seed: number;
  /** DeviceIDs of the legitimate devices, for the spoofed kinds. */
  legitIds: string[];
}

export interface FuzzerRun {
  type: "run";
  count: number;
  /** Datagrams per second (open loop). */
  rate: number;
}

/** Changes the rate of the run under way (the parent's controller follows the agent's pace). */
export interface FuzzerRate {
  type: "rate";
  rate: number;
}

export interface FuzzerProgress {
  sent: number;
  bytes: number;
  sendErrors: number;
  replies: number;
  byKind: Partial<Record<FuzzKind, number>>;
  toAlarmPort: number;
  elapsedMs: number;
  done: boolean;
}

const TICK_MS = 1;
/** Most sends issued in one tick when catching up, so IPC and replies still get a turn. */
const MAX_PER_TICK = 2_000;

function bind(address: string): Promise<Socket> {
  const socket = createSocket("udp4");
  return new Promise((resolve, reject) => {
    socket.once("error", reject);
    socket.bind(0, address, () => {
      socket.off("error", reject);
      resolve(socket);
    });
  });
}

function createFuzzer() {
  let sockets: Socket[] = [];
  let source: FuzzSource | undefined;
  let target = { host: "127.0.0.1", signalPort: 0, alarmPort: 0 };
  const progress: FuzzerProgress = {
    sent: 0,
    bytes: 0,
    sendErrors: 0,
    replies: 0,
    byKind: {},
    toAlarmPort: 0,
    elapsedMs: 0,
    done: false,
  };
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let finishRun: (() => void) | undefined;
  // The pace: `rate` per second since `baseAt`, when `baseSent` had been sent.
  let rate = 0;
  let baseAt = 0;
  let baseSent = 0;
  const onSent = (err: Error | null) => {
    if (err) progress.sendErrors++;
  };

  async function init(m: FuzzerInit): Promise<{ sockets: number }> {
    target = { host: m.host, signalPort: m.signalPort, alarmPort: m.alarmPort };
    source = createFuzzSource(m.seed, m.legitIds);
    for (const address of m.sources) {
      const s = await bind(address);
      s.on("message", () => {
        progress.replies++;
      });
      s.on("error", () => {
        progress.sendErrors++;
      });
      sockets.push(s);
    }
    return { sockets: sockets.length };
  }

  function run(m: FuzzerRun): Promise<FuzzerProgress> {
    if (!source || sockets.length === 0) throw new Error("run before init");
    const src = source;
    const t0 = performance.now();
    rate = m.rate;
    baseAt = t0;
    baseSent = progress.sent;
    let k = 0;
    return new Promise((resolve) => {
      finishRun = () => {
        progress.elapsedMs = Math.round(performance.now() - t0);
        progress.done = true;
        finishRun = undefined;
        resolve({ ...progress, byKind: { ...progress.byKind } });
      };
      const tick = () => {
        timer = undefined;
        if (stopped) return finishRun?.();
        const due = Math.min(
          m.count,
          baseSent + Math.floor((rate * (performance.now() - baseAt)) / 1000),
        );
        const until = Math.min(due, progress.sent + MAX_PER_TICK);
        while (progress.sent < until) {
          const d = src.next();
          const s = sockets[k]!;
          k = k + 1 === sockets.length ? 0 : k + 1;
          const port = d.port === "alarm" ? target.alarmPort : target.signalPort;
          if (d.port === "alarm") progress.toAlarmPort++;
          s.send(d.bytes, port, target.host, onSent);
          progress.sent++;
          progress.bytes += d.bytes.length;
          progress.byKind[d.kind] = (progress.byKind[d.kind] ?? 0) + 1;
        }
        progress.elapsedMs = Math.round(performance.now() - t0);
        if (progress.sent >= m.count) finishRun?.();
        else timer = setTimeout(tick, TICK_MS);
      };
      tick();
    });
  }

  return {
    handle(body: unknown): unknown {
      const m = body as FuzzerInit | FuzzerRun | FuzzerRate | { type: "progress" };
      switch (m.type) {
        case "init":
          return init(m);
        case "run":
          return run(m);
        case "rate": {
          // From what was sent so far at the new rate (a backlog due at the old rate is dropped).
          baseSent = progress.sent;
          baseAt = performance.now();
          rate = m.rate;
          return { rate };
        }
        case "progress":
          return { ...progress, byKind: { ...progress.byKind } };
        default:
          throw new Error(`unknown request ${(m as { type: string }).type}`);
      }
    },
    async close() {
      stopped = true;
      if (timer) clearTimeout(timer);
      finishRun?.();
      const all = sockets;
      sockets = [];
      await Promise.all(all.map((s) => new Promise<void>((r) => s.close(() => r()))));
    },
  };
}

serveParent({ pid: process.pid }, createFuzzer());
