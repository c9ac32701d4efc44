import dgram from "node:dgram";
import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import { type CatalogueView, DEFAULT_VIEW } from "../signalling/catalogue.ts";
import { decode, type ResponseMessage } from "../signalling/codec/index.ts";
import { type DeviceEnv, SimDevice } from "./device.ts";
import { createSimMediaEnv } from "./device-media.ts";
import { SafeEmitter } from "./emitter.ts";
import { emptyHistogram } from "./histogram.ts";
import { type ResolvedOptions, resolveOptions, type SimulatorOptions } from "./options.ts";
import { createProfile } from "./profile.ts";
import { type Random, seededRandom } from "./random.ts";
import { createScheduler } from "./scheduler.ts";
import {
  emptyCounters,
  emptyStates,
  type SimulatorStats,
  type StatsSnapshot,
  toStats,
} from "./stats.ts";
import type { SimulatedDevice, SimulatorEvents } from "./types.ts";

export interface SimulatorDeps {
  /** Uniform [0, 1) source; default: seeded from `options.seed`. */
  random?: Random;
  /** Monotonic ms for timers and latency. Default performance.now. */
  now?: () => number;
  /** Wall clock (device time, command log). Default Date.now. */
  wallClock?: () => number;
  /** Catalogue with a dialect applied. Default: the catalogue as written. */
  view?: CatalogueView;
  /** Where listener and timer errors go. Default console.error. */
  onError?: (err: unknown) => void;
}

export type WaitCondition = "all-online" | ((sim: Simulator) => boolean);

export interface Simulator {
  readonly options: Readonly<ResolvedOptions>;
  /** Every device, in index order. */
  readonly devices: readonly SimulatedDevice[];
  /** The device with this DeviceID; throws for an unknown id. */
  device(id: string): SimulatedDevice;
  /** Starts registering (spread over `registerSpreadMs`). Idempotent. */
  start(): Promise<void>;
  /** Resolves when the condition holds; rejects with SimulatorTimeoutError, or when closed. */
  waitFor(condition: WaitCondition, timeoutMs?: number): Promise<void>;
  on<K extends keyof SimulatorEvents>(
    name: K,
    listener: (event: SimulatorEvents[K]) => void,
  ): () => void;
  off<K extends keyof SimulatorEvents>(
    name: K,
    listener: (event: SimulatorEvents[K]) => void,
  ): void;
  stats(): SimulatorStats;
  /** Raw mergeable statistics (what workers report). */
  snapshot(): StatsSnapshot;
  /** Closes every socket and timer; rejects pending waits. Idempotent. */
  close(): Promise<void>;
}

export class SimulatorTimeoutError extends Error {
  readonly code = "SIMULATOR_TIMEOUT";
  constructor(
    message: string,
    readonly stats: SimulatorStats,
  ) {
    super(message);
    this.name = "SimulatorTimeoutError";
  }
}

export class SimulatorClosedError extends Error {
  readonly code = "SIMULATOR_CLOSED";
  constructor() {
    super("simulator closed");
    this.name = "SimulatorClosedError";
  }
}

export class SimulatorBindError extends Error {
  readonly code = "SIMULATOR_BIND_FAILED";
  constructor(message: string, options?: { cause: unknown }) {
    super(message, options);
    this.name = "SimulatorBindError";
  }
}

const BIND_BATCH = 500;
const WAIT_POLL_MS = 10;

async function resolveHost(host: string, family: 4 | 6): Promise<string> {
  if (isIP(host)) return host;
  return (await lookup(host, { family })).address;
}

function openSocket(bind: string, host: string, port: number): Promise<dgram.Socket> {
  const socket = dgram.createSocket(isIP(bind) === 6 ? "udp6" : "udp4");
  return new Promise((resolve, reject) => {
    const fail = (err: Error) => {
      try {
        socket.close();
      } catch {
        // Never bound: nothing to release.
      }
      reject(err);
    };
    socket.once("error", fail);
    socket.bind(0, bind, () => {
      // A connected socket: the kernel fills in the destination and drops datagrams from anyone
      // but the agent, which is what the NAT in front of a real device does too.
      socket.connect(port, host, () => {
        socket.off("error", fail);
        resolve(socket);
      });
    });
  });
}

/**
 * Plays `options.devices` EHOME 2.0 devices against an agent, one UDP socket each. Binds every
 * socket before resolving (so `localAddress` is known); `start()` begins registering.
 */
export async function createSimulator(
  options: SimulatorOptions,
  deps: SimulatorDeps = {},
): Promise<Simulator> {
  const opts = resolveOptions(options);
  const onError = deps.onError ?? ((err: unknown) => console.error("simulator:", err));
  const random = deps.random ?? seededRandom(opts.seed);
  const wallClock = deps.wallClock ?? Date.now;
  const scheduler = createScheduler({ ...(deps.now ? { now: deps.now } : {}), onError });
  const events = new SafeEmitter<SimulatorEvents>(onError);
  const states = emptyStates();
  states.stopped = opts.devices;
  const totals = emptyCounters();
  const latency = emptyHistogram();
  const family = isIP(opts.bind[0]!) === 6 ? 6 : 4;
  const agentHost = await resolveHost(opts.agent.host, family);

  const sockets: dgram.Socket[] = [];
  try {
    for (let i = 0; i < opts.devices; i += BIND_BATCH) {
      const n = Math.min(BIND_BATCH, opts.devices - i);
      const batch = await Promise.allSettled(
        Array.from({ length: n }, (_, k) => {
          const bind = opts.bind[(opts.firstIndex + i + k) % opts.bind.length]!;
          return openSocket(bind, agentHost, opts.agent.port);
        }),
      );
      for (const r of batch) if (r.status === "fulfilled") sockets.push(r.value);
      const failed = batch.find((r) => r.status === "rejected");
      if (failed) throw (failed as PromiseRejectedResult).reason;
    }
  } catch (err) {
    await Promise.all(sockets.map((s) => new Promise<void>((r) => s.close(() => r()))));
    const code = (err as NodeJS.ErrnoException).code;
    const hint =
      code === "EMFILE" || code === "ENFILE"
        ? " (out of file descriptors: one socket per device; raise `ulimit -n` or use workers)"
        : code === "EADDRINUSE"
          ? " (out of ephemeral ports on that address: bind more addresses, e.g. 127.0.0.2)"
          : "";
    throw new SimulatorBindError(
      `could not bind ${opts.devices} sockets on ${opts.bind.join(",")}: ${(err as Error).message}${hint}`,
      { cause: err },
    );
  }

  // One unconnected socket for every device's alarms (ehome-2.0 §5.1: the AMS is a different
  // port); answers are routed back by Sequence to the devices waiting for one.
  const alarmWaiters = new Map<number, Map<string, (m: ResponseMessage) => void>>();
  let alarmSocket: dgram.Socket | null = null;
  const alarmSocketFor = (): dgram.Socket => {
    if (alarmSocket) return alarmSocket;
    const s = dgram.createSocket(family === 6 ? "udp6" : "udp4");
    s.on("message", (bytes) => {
      const r = decode(bytes, { role: "device", view: deps.view ?? DEFAULT_VIEW });
      if (!r.ok || r.message.kind !== "response") return;
      const m = r.message;
      const waiting = alarmWaiters.get(m.header.sequence);
      if (!waiting) return;
      alarmWaiters.delete(m.header.sequence);
      for (const answer of waiting.values()) answer(m);
    });
    s.on("error", () => totals.sendErrors++);
    s.bind(0, opts.bind[0]);
    alarmSocket = s;
    return s;
  };

  const env: DeviceEnv = {
    options: opts,
    sendAlarm(bytes, target, sequence, deviceId, onAnswer) {
      if (closing) return;
      let waiting = alarmWaiters.get(sequence);
      if (!waiting) {
        waiting = new Map();
        alarmWaiters.set(sequence, waiting);
      }
      waiting.set(deviceId, onAnswer);
      alarmSocketFor().send(bytes, target.port, target.host, (err) => {
        if (err) totals.sendErrors++;
      });
    },
    view: deps.view ?? DEFAULT_VIEW,
    scheduler,
    random,
    wallClock,
    totals,
    latency,
    events,
    media: createSimMediaEnv(opts),
    stateChanged(from, to) {
      states[from]--;
      states[to]++;
    },
    onError,
  };

  const devices: SimDevice[] = sockets.map((socket, i) => {
    const profile = createProfile(opts, opts.firstIndex + i);
    const addr = socket.address();
    const device = new SimDevice(
      env,
      profile,
      { send: (bytes, cb) => socket.send(bytes, cb) },
      { address: addr.address, port: addr.port },
    );
    socket.on("message", (bytes) => device.receive(bytes));
    // ICMP port-unreachable on a connected socket (no agent yet) surfaces here; keep retrying.
    socket.on("error", () => {
      totals.sendErrors++;
      device.counters.sendErrors++;
    });
    return device;
  });
  const byId = new Map(devices.map((d) => [d.id, d]));

  let startedAt = scheduler.now();
  let started = false;
  let closing: Promise<void> | null = null;
  const waiters = new Set<(err: Error) => void>();

  const snapshot = (): StatsSnapshot => ({
    devices: devices.length,
    states: { ...states },
    counters: { ...totals },
    latency: { ...latency, counts: [...latency.counts] },
    elapsedMs: started ? scheduler.now() - startedAt : 0,
  });

  const sim: Simulator = {
    options: opts,
    devices,
    device(id) {
      const d = byId.get(id);
      if (!d) throw new Error(`no simulated device ${id}`);
      return d;
    },
    async start() {
      if (started || closing) return;
      started = true;
      startedAt = scheduler.now();
      const n = devices.length;
      for (let i = 0; i < n; i++) devices[i]!.start((opts.registerSpreadMs * i) / n);
    },
    waitFor(condition, timeoutMs = 10_000) {
      const check =
        condition === "all-online" ? () => states.online === devices.length : () => condition(sim);
      if (closing) return Promise.reject(new SimulatorClosedError());
      return new Promise<void>((resolve, reject) => {
        const deadline = performance.now() + timeoutMs;
        let timer: NodeJS.Timeout | null = null;
        const finish = (err?: Error) => {
          if (timer) clearTimeout(timer);
          waiters.delete(finish);
          if (err) reject(err);
          else resolve();
        };
        const poll = () => {
          timer = null;
          let done: boolean;
          try {
            done = check();
          } catch (err) {
            finish(err as Error);
            return;
          }
          if (done) return finish();
          if (performance.now() >= deadline) {
            const what = condition === "all-online" ? "all devices online" : "condition";
            return finish(
              new SimulatorTimeoutError(
                `timed out after ${timeoutMs} ms waiting for ${what}`,
                sim.stats(),
              ),
            );
          }
          timer = setTimeout(poll, WAIT_POLL_MS);
        };
        waiters.add(finish);
        poll();
      });
    },
    on: (name, listener) => events.on(name, listener),
    off: (name, listener) => events.off(name, listener),
    stats: () => toStats(snapshot()),
    snapshot,
    close() {
      if (closing) return closing;
      closing = (async () => {
        for (const d of devices) d.close();
        scheduler.close();
        for (const w of [...waiters]) w(new SimulatorClosedError());
        events.removeAll();
        await Promise.all(sockets.map((s) => new Promise<void>((r) => s.close(() => r()))));
        alarmWaiters.clear();
        const a = alarmSocket;
        if (a) await new Promise<void>((r) => a.close(() => r()));
      })();
      return closing;
    },
  };
  return sim;
}
