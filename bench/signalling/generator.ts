/**
 * A load generator process: plays a slice of the devices, one connected UDP socket (one source
 * port) each, as real devices behind NAT look to the agent. It registers every device once from
 * its socket, then offers KEEPALIVEs at a fixed rate (open loop: sends do not wait for replies,
 * so a slow server shows up as latency and loss instead of slowing the load down) and matches
 * replies by socket and Sequence. The same code measures the agent and the raw echo.
 */
import { createSocket, type Socket } from "node:dgram";
import { serveParent } from "../lib/child.ts";
import { emptyLatencyHistogram, type LatencyHistogram, recordUs } from "../lib/histogram.ts";
import {
  deviceIdOf,
  keepaliveTemplate,
  type PatchableDatagram,
  readSequence,
  readStatus,
  registerDatagram,
  SEQUENCE_BASE,
  SEQUENCE_SPAN,
  sourceAddressOf,
  writeSequence,
} from "./datagrams.ts";
import type {
  GeneratorInit,
  GeneratorRegister,
  GeneratorRequest,
  GeneratorStep,
  RegisterResult,
  StepResult,
} from "./protocol.ts";

const BIND_BATCH = 500;
/** Outstanding KEEPALIVEs remembered per device (a reply later than this many sends is unmatched). */
const SLOTS = 16;
const TICK_MS = 1;

type Phase = "idle" | "register" | "step";

function openSocket(bind: string, host: string, port: number): Promise<Socket> {
  const socket = createSocket("udp4");
  return new Promise((resolve, reject) => {
    const fail = (err: Error) => {
      socket.close();
      reject(err);
    };
    socket.once("error", fail);
    socket.bind(0, bind, () => {
      // Connected: the kernel fills in the destination (no per-send address lookup) and accepts
      // datagrams from the target only.
      socket.connect(port, host, () => {
        socket.off("error", fail);
        resolve(socket);
      });
    });
  });
}

function createGenerator() {
  let sockets: Socket[] = [];
  let templates: PatchableDatagram[] = [];
  let deviceIds: string[] = [];
  let count = 0;
  let phase: Phase = "idle";

  // KEEPALIVE bookkeeping, flat typed arrays (no per-datagram objects).
  let nextSeq = new Uint32Array(0);
  let slotSeq = new Float64Array(0);
  let slotSentAt = new Float64Array(0);
  let cursor = 0;

  // Registration bookkeeping.
  let registered = new Uint8Array(0);
  let onRegisterReply: ((device: number, status: number) => void) | undefined;

  // The current step's counters.
  let step: {
    answered: number;
    rejected: number;
    unmatched: number;
    lastReplyAt: number;
    latency: LatencyHistogram;
    onReply?: () => void;
  } = { answered: 0, rejected: 0, unmatched: 0, lastReplyAt: 0, latency: emptyLatencyHistogram() };
  let sendErrors = 0;

  const onMessage = (device: number, bytes: Buffer): void => {
    if (phase === "step") {
      const now = performance.now();
      const seq = readSequence(bytes);
      const slot = device * SLOTS + ((seq - SEQUENCE_BASE) % SLOTS);
      if (seq < SEQUENCE_BASE || slotSeq[slot] !== seq) {
        step.unmatched++;
        return;
      }
      slotSeq[slot] = -1;
      const status = readStatus(bytes);
      if (status !== -1 && status !== 200) step.rejected++;
      else step.answered++;
      recordUs(step.latency, (now - slotSentAt[slot]!) * 1000);
      step.lastReplyAt = now;
      step.onReply?.();
    } else if (phase === "register") {
      onRegisterReply?.(device, readStatus(bytes));
    }
  };

  async function init(m: GeneratorInit): Promise<{ devices: number }> {
    count = m.count;
    deviceIds = Array.from({ length: count }, (_, i) => deviceIdOf(m.idPrefix, m.firstIndex + i));
    templates = deviceIds.map(keepaliveTemplate);
    nextSeq = new Uint32Array(count);
    slotSeq = new Float64Array(count * SLOTS).fill(-1);
    slotSentAt = new Float64Array(count * SLOTS);
    registered = new Uint8Array(count);
    for (let i = 0; i < count; i += BIND_BATCH) {
      const n = Math.min(BIND_BATCH, count - i);
      const batch = await Promise.all(
        Array.from({ length: n }, (_, j) =>
          openSocket(sourceAddressOf(m.firstIndex + i + j), m.target.host, m.target.port),
        ),
      );
      for (const s of batch) {
        const device = sockets.length;
        s.on("message", (bytes) => onMessage(device, bytes));
        // ICMP port-unreachable and full queues surface here; counted, never fatal.
        s.on("error", () => {
          sendErrors++;
        });
        sockets.push(s);
      }
    }
    return { devices: count };
  }

  function register(m: GeneratorRegister): Promise<RegisterResult> {
    const started = performance.now();
    const end = Math.min(count, m.first + m.count);
    const todo = Math.max(0, end - m.first);
    let sends = 0;
    let refused = 0;
    let done = 0;
    let failed = 0;
    let next = m.first;
    const attempts = new Uint8Array(count);
    const timers = new Map<number, NodeJS.Timeout>();
    const spread = m.spreadMs !== undefined && m.spreadMs > 0 ? m.spreadMs : 0;
    let pacer: NodeJS.Timeout | undefined;
    phase = "register";
    return new Promise((resolve) => {
      const finishOne = (device: number) => {
        const t = timers.get(device);
        if (t) clearTimeout(t);
        timers.delete(device);
        done++;
        if (!spread && next < end) send(next++);
        if (done === todo) {
          if (pacer) clearInterval(pacer);
          phase = "idle";
          onRegisterReply = undefined;
          resolve({
            registered: todo - failed,
            failed,
            sends,
            refused,
            elapsedMs: Math.round(performance.now() - started),
          });
        }
      };
      const send = (device: number) => {
        attempts[device]!++;
        sends++;
        sockets[device]!.send(registerDatagram(deviceIds[device]!, attempts[device]!));
        timers.set(
          device,
          setTimeout(() => {
            if (registered[device]) return;
            if (attempts[device]! >= m.maxSends) {
              failed++;
              finishOne(device);
            } else send(device);
          }, m.retryMs),
        );
      };
      onRegisterReply = (device, status) => {
        if (registered[device] || !timers.has(device)) return;
        registered[device] = 1;
        if (status !== -1 && status !== 200) {
          refused++;
          failed++;
        }
        finishOne(device);
      };
      if (todo === 0) {
        phase = "idle";
        resolve({ registered: 0, failed: 0, sends: 0, refused: 0, elapsedMs: 0 });
        return;
      }
      if (!spread) {
        while (next < Math.min(end, m.first + m.window)) send(next++);
        return;
      }
      // Paced: every 10 ms, send what is due by now on the straight line over spreadMs.
      const pace = () => {
        const due = Math.min(todo, Math.ceil((todo * (performance.now() - started)) / spread));
        while (next < end && next - m.first < due) send(next++);
        if (next >= end && pacer) {
          clearInterval(pacer);
          pacer = undefined;
        }
      };
      pacer = setInterval(pace, 10);
      pace();
    });
  }

  function sendKeepalive(): void {
    const d = cursor;
    cursor = cursor + 1 === count ? 0 : cursor + 1;
    const k = nextSeq[d]!;
    nextSeq[d] = k + 1 >= SEQUENCE_SPAN ? 0 : k + 1;
    const seq = SEQUENCE_BASE + k;
    const t = templates[d]!;
    // A fresh buffer per datagram: a send that libuv has to queue must not see the next patch.
    const b = Buffer.allocUnsafe(t.bytes.length);
    t.bytes.copy(b);
    writeSequence(b, t.sequenceOffset, seq);
    const slot = d * SLOTS + (k % SLOTS);
    slotSeq[slot] = seq;
    slotSentAt[slot] = performance.now();
    sockets[d]!.send(b);
  }

  function runStep(m: GeneratorStep): Promise<StepResult> {
    slotSeq.fill(-1);
    step = {
      answered: 0,
      rejected: 0,
      unmatched: 0,
      lastReplyAt: 0,
      latency: emptyLatencyHistogram(),
    };
    sendErrors = 0;
    const cpu0 = process.cpuUsage();
    const total = count === 0 ? 0 : Math.round((m.rate * m.durationMs) / 1000);
    phase = "step";
    const t0 = performance.now();
    const wall0 = performance.timeOrigin;
    let sent = 0;
    let lastTick = t0;
    let maxTickGapMs = 0;
    let maxBurst = 0;
    let lastSendAt = t0;
    return new Promise((resolve) => {
      const finish = () => {
        phase = "idle";
        step.onReply = undefined;
        const cpu = process.cpuUsage(cpu0);
        resolve({
          sent,
          answered: step.answered,
          rejected: step.rejected,
          unmatched: step.unmatched,
          firstSendAt: wall0 + t0,
          lastSendAt: wall0 + lastSendAt,
          lastReplyAt: step.lastReplyAt === 0 ? 0 : wall0 + step.lastReplyAt,
          maxTickGapMs: Math.round(maxTickGapMs * 100) / 100,
          maxBurst,
          sendErrors,
          cpuUs: cpu.user + cpu.system,
          latency: step.latency,
        });
      };
      const drain = () => {
        const drainStart = performance.now();
        let idleTimer: NodeJS.Timeout | undefined;
        const hard = setTimeout(stop, m.maxDrainMs);
        function stop() {
          clearTimeout(hard);
          if (idleTimer) clearTimeout(idleTimer);
          finish();
        }
        const armIdle = () => {
          if (idleTimer) clearTimeout(idleTimer);
          idleTimer = setTimeout(stop, m.idleMs);
        };
        step.onReply = () => {
          if (step.answered + step.rejected >= sent) stop();
          else if (performance.now() - drainStart < m.maxDrainMs) armIdle();
        };
        if (step.answered + step.rejected >= sent) stop();
        else armIdle();
      };
      const tick = () => {
        const now = performance.now();
        if (now - lastTick > maxTickGapMs) maxTickGapMs = now - lastTick;
        lastTick = now;
        const due = Math.min(total, Math.floor((m.rate * (now - t0)) / 1000));
        const burst = due - sent;
        if (burst > maxBurst) maxBurst = burst;
        while (sent < due) {
          sendKeepalive();
          sent++;
        }
        if (burst > 0) lastSendAt = performance.now();
        if (sent >= total) drain();
        else setTimeout(tick, TICK_MS);
      };
      tick();
    });
  }

  return {
    handle(body: unknown): unknown {
      const m = body as GeneratorRequest;
      switch (m.type) {
        case "init":
          return init(m);
        case "register":
          return register(m);
        case "step":
          return runStep(m);
        default:
          throw new Error(`unknown request ${(m as { type: string }).type}`);
      }
    },
    async close() {
      phase = "idle";
      const all = sockets;
      sockets = [];
      await Promise.all(all.map((s) => new Promise<void>((r) => s.close(() => r()))));
    },
  };
}

serveParent({ pid: process.pid }, createGenerator());
