import { type ChildProcess, fork } from "node:child_process";
import { createRequire } from "node:module";
import { fileURLToPath, pathToFileURL } from "node:url";
import { resolveOptions, type SimulatorOptions } from "./options.ts";
import { SimulatorClosedError, SimulatorTimeoutError } from "./simulator.ts";
import {
  emptySnapshot,
  mergeSnapshots,
  type SimulatorStats,
  type StatsSnapshot,
  toStats,
} from "./stats.ts";
import type { ParentMessage, WorkerMessage } from "./worker-protocol.ts";

/**
 * Several processes each playing a slice of the devices: one process holds at most as many devices
 * as it has file descriptors (one UDP socket each; ~18k under a 20k limit), so 100k devices for a
 * benchmark need workers. Device IDs stay contiguous and distinct across workers.
 */

export interface WorkerDeps {
  /** Node flags for the workers. Default: the tsx loader, so the TypeScript sources run. */
  execArgv?: string[];
  /** Module the workers run. Default: worker-main.ts beside this file. */
  workerModule?: string;
  /** How long a worker may take to bind its sockets and start. Default 60 s. */
  startTimeoutMs?: number;
  /** Called when a worker exits on its own (crash, kill). */
  onWorkerExit?: (worker: number, code: number | null, signal: NodeJS.Signals | null) => void;
}

export type WorkersWaitCondition = "all-online" | ((stats: SimulatorStats) => boolean);

export interface SimulatorWorkers {
  readonly workers: number;
  readonly devices: number;
  readonly pids: readonly number[];
  /** Fresh statistics summed over the workers. */
  stats(timeoutMs?: number): Promise<SimulatorStats>;
  snapshot(timeoutMs?: number): Promise<StatsSnapshot>;
  waitFor(condition: WorkersWaitCondition, timeoutMs?: number): Promise<void>;
  /** Closes every worker (killing any that hang) and returns the final statistics. Idempotent. */
  close(): Promise<SimulatorStats>;
}

const CLOSE_TIMEOUT_MS = 10_000;
const POLL_MS = 100;

function defaultExecArgv(): string[] {
  const loader = createRequire(import.meta.url).resolve("tsx");
  return ["--import", pathToFileURL(loader).href];
}

function tell(child: ChildProcess, message: ParentMessage): void {
  if (child.connected) child.send(message, (err) => void err);
}

interface Worker {
  index: number;
  child: ChildProcess;
  last: StatsSnapshot;
  exited: boolean;
  exit: Promise<void>;
}

/** Splits `devices` over `workers` processes and starts them all; resolves once every one is up. */
export async function runSimulatorWorkers(
  options: SimulatorOptions & { workers: number },
  deps: WorkerDeps = {},
): Promise<SimulatorWorkers> {
  const resolved = resolveOptions(options);
  const { workers: requested, ...base } = options;
  if (!Number.isInteger(requested) || requested < 1) {
    throw new Error(`workers must be a positive integer, got ${requested}`);
  }
  const count = Math.min(requested, resolved.devices);
  const execArgv = deps.execArgv ?? defaultExecArgv();
  const modulePath =
    deps.workerModule ?? fileURLToPath(new URL("./worker-main.ts", import.meta.url));
  let nextId = 1;
  const pendingSnapshots = new Map<number, (s: StatsSnapshot) => void>();

  let closing: Promise<SimulatorStats> | null = null;
  const list: Worker[] = [];
  let firstIndex = resolved.firstIndex;
  const starts: Promise<void>[] = [];
  for (let k = 0; k < count; k++) {
    const devices = Math.floor(resolved.devices / count) + (k < resolved.devices % count ? 1 : 0);
    const slice: SimulatorOptions = {
      ...base,
      devices,
      firstIndex,
      idWidth: resolved.idWidth,
      seed: (resolved.seed + k) >>> 0,
    };
    firstIndex += devices;
    const child = fork(modulePath, [], {
      execArgv,
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    // An IPC write to a worker that just died (EPIPE) must not crash the parent; its exit is
    // handled below.
    child.on("error", () => {});
    const w: Worker = {
      index: k,
      child,
      last: emptySnapshot(),
      exited: false,
      exit: new Promise((resolve) =>
        child.once("exit", (code, signal) => {
          w.exited = true;
          if (!closing) deps.onWorkerExit?.(k, code, signal);
          resolve();
        }),
      ),
    };
    list.push(w);
    starts.push(
      new Promise<void>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`worker ${k} did not start in time`)),
          deps.startTimeoutMs ?? 60_000,
        );
        child.on("message", (m: WorkerMessage) => {
          if (m.type === "ready") {
            clearTimeout(timer);
            resolve();
          } else if (m.type === "error") {
            clearTimeout(timer);
            reject(new Error(`worker ${k}: ${m.message}`));
          } else if (m.type === "snapshot") {
            w.last = m.snapshot;
            pendingSnapshots.get(m.id)?.(m.snapshot);
          } else if (m.type === "closed") {
            w.last = m.snapshot;
          }
        });
        void w.exit.then(() => {
          clearTimeout(timer);
          reject(new Error(`worker ${k} exited before it started`));
        });
      }),
    );
    tell(child, { type: "start", options: slice });
  }

  const snapshot = async (timeoutMs = 5000): Promise<StatsSnapshot> => {
    const parts = await Promise.all(
      list.map((w) => {
        if (w.exited || !w.child.connected) return Promise.resolve(w.last);
        const id = nextId++;
        return new Promise<StatsSnapshot>((resolve) => {
          const done = (s: StatsSnapshot) => {
            clearTimeout(timer);
            pendingSnapshots.delete(id);
            resolve(s);
          };
          // A worker that does not answer in time counts with its last report.
          const timer = setTimeout(() => done(w.last), timeoutMs);
          pendingSnapshots.set(id, done);
          void w.exit.then(() => done(w.last));
          tell(w.child, { type: "snapshot", id });
        });
      }),
    );
    return mergeSnapshots(parts);
  };

  const close = (): Promise<SimulatorStats> => {
    if (closing) return closing;
    closing = (async () => {
      await Promise.all(
        list.map(async (w) => {
          if (!w.exited && w.child.connected) tell(w.child, { type: "close" });
          const timer = setTimeout(() => w.child.kill("SIGKILL"), CLOSE_TIMEOUT_MS);
          await w.exit;
          clearTimeout(timer);
        }),
      );
      return toStats(mergeSnapshots(list.map((w) => w.last)));
    })();
    return closing;
  };

  try {
    await Promise.all(starts);
  } catch (err) {
    await close();
    throw err;
  }

  return {
    workers: count,
    devices: resolved.devices,
    pids: list.map((w) => w.child.pid ?? -1),
    snapshot,
    stats: async (timeoutMs) => toStats(await snapshot(timeoutMs)),
    async waitFor(condition, timeoutMs = 30_000) {
      const deadline = performance.now() + timeoutMs;
      for (;;) {
        if (closing) throw new SimulatorClosedError();
        const stats = toStats(await snapshot());
        const done =
          condition === "all-online" ? stats.states.online === resolved.devices : condition(stats);
        if (done) return;
        if (performance.now() >= deadline) {
          throw new SimulatorTimeoutError(`timed out after ${timeoutMs} ms`, stats);
        }
        await new Promise((r) => setTimeout(r, POLL_MS));
      }
    },
    close,
  };
}
