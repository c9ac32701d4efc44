import { readFileSync } from "node:fs";
import { cpus, loadavg, platform, release, totalmem } from "node:os";

/**
 * What a benchmark ran on, recorded with every result: numbers from different machines (or from a
 * busy one) must not be compared without it.
 */
export interface MachineInfo {
  cpuModel: string;
  cores: number;
  nodeVersion: string;
  platform: string;
  kernel: string;
  totalMemoryBytes: number;
  /** 1-minute load average when the benchmark started. */
  loadAverage1m: number;
  /** net.core.rmem_max: the largest SO_RCVBUF a socket may ask for (null off Linux). */
  udpRmemMaxBytes: number | null;
  /** Soft limit of open files of this process (null off Linux). */
  openFilesLimit: number | null;
}

function readNumber(path: string): number | null {
  try {
    const n = Number(readFileSync(path, "utf8").trim());
    return Number.isFinite(n) ? n : null;
  } catch {
    return null;
  }
}

function openFilesLimit(): number | null {
  try {
    const line = readFileSync("/proc/self/limits", "utf8")
      .split("\n")
      .find((l) => l.startsWith("Max open files"));
    const n = Number(line?.split(/\s{2,}/)[1]);
    return Number.isFinite(n) ? n : null;
  } catch {
    return null;
  }
}

export function machineInfo(): MachineInfo {
  const list = cpus();
  return {
    cpuModel: list[0]?.model.trim() ?? "unknown",
    cores: list.length,
    nodeVersion: process.version,
    platform: platform(),
    kernel: release(),
    totalMemoryBytes: totalmem(),
    loadAverage1m: Math.round(loadavg()[0]! * 100) / 100,
    udpRmemMaxBytes: readNumber("/proc/sys/net/core/rmem_max"),
    openFilesLimit: openFilesLimit(),
  };
}

/**
 * Host-wide UDP counters (Linux /proc/net/snmp). Their deltas over a step show where datagrams
 * were lost: RcvbufErrors = a socket's receive queue was full (the receiver was too slow),
 * SndbufErrors = a sender's queue was full. Null off Linux.
 */
export interface UdpCounters {
  inDatagrams: number;
  outDatagrams: number;
  inErrors: number;
  rcvbufErrors: number;
  sndbufErrors: number;
  noPorts: number;
}

export function readUdpCounters(): UdpCounters | null {
  let text: string;
  try {
    text = readFileSync("/proc/net/snmp", "utf8");
  } catch {
    return null;
  }
  const lines = text.split("\n").filter((l) => l.startsWith("Udp:"));
  if (lines.length < 2) return null;
  const names = lines[0]!.split(/\s+/).slice(1);
  const values = lines[1]!.split(/\s+/).slice(1).map(Number);
  const get = (name: string) => values[names.indexOf(name)] ?? 0;
  return {
    inDatagrams: get("InDatagrams"),
    outDatagrams: get("OutDatagrams"),
    inErrors: get("InErrors"),
    rcvbufErrors: get("RcvbufErrors"),
    sndbufErrors: get("SndbufErrors"),
    noPorts: get("NoPorts"),
  };
}

export function diffUdpCounters(
  before: UdpCounters | null,
  after: UdpCounters | null,
): UdpCounters | null {
  if (!before || !after) return null;
  return {
    inDatagrams: after.inDatagrams - before.inDatagrams,
    outDatagrams: after.outDatagrams - before.outDatagrams,
    inErrors: after.inErrors - before.inErrors,
    rcvbufErrors: after.rcvbufErrors - before.rcvbufErrors,
    sndbufErrors: after.sndbufErrors - before.sndbufErrors,
    noPorts: after.noPorts - before.noPorts,
  };
}

/** Machine-wide CPU time (Linux /proc/stat, all cores), in ms. Null off Linux. */
export interface CpuTimes {
  busyMs: number;
  idleMs: number;
  /** Time a hypervisor ran something else while this VM wanted the CPU. */
  stealMs: number;
}

export function readCpuTimes(): CpuTimes | null {
  let line: string | undefined;
  try {
    line = readFileSync("/proc/stat", "utf8").split("\n")[0];
  } catch {
    return null;
  }
  if (!line?.startsWith("cpu ")) return null;
  // user nice system idle iowait irq softirq steal (USER_HZ ticks; 100 per second on Linux).
  const t = line.trim().split(/\s+/).slice(1).map(Number);
  const ms = (i: number) => (t[i] ?? 0) * 10;
  return {
    busyMs: ms(0) + ms(1) + ms(2) + ms(5) + ms(6),
    idleMs: ms(3) + ms(4),
    stealMs: ms(7),
  };
}

/**
 * Waits until the machine is quiet: the busy share of all cores, sampled over `sampleMs`, is at
 * most `maxBusyPct`. Meant to be called while the benchmark's own processes are idle, so what is
 * busy is the neighbours. Gives up after `maxWaitMs` (0: do not wait). Resolves with the time
 * waited and the last busy share seen (null off Linux).
 */
export async function waitForQuiet(o: {
  maxBusyPct: number;
  sampleMs: number;
  maxWaitMs: number;
}): Promise<{ waitedMs: number; busyPct: number | null }> {
  const started = performance.now();
  for (;;) {
    const a = readCpuTimes();
    await new Promise((r) => setTimeout(r, o.sampleMs));
    const b = readCpuTimes();
    if (!a || !b) return { waitedMs: 0, busyPct: null };
    const busy = b.busyMs - a.busyMs;
    const total = busy + (b.idleMs - a.idleMs) + (b.stealMs - a.stealMs);
    const busyPct = total <= 0 ? 0 : Math.round((1000 * busy) / total) / 10;
    const waitedMs = Math.round(performance.now() - started);
    if (busyPct <= o.maxBusyPct || waitedMs >= o.maxWaitMs) return { waitedMs, busyPct };
  }
}
