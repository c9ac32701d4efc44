import { execFileSync } from "node:child_process";
import { afterEach, describe, expect, it } from "vitest";
import { runSimulatorWorkers, type SimulatorWorkers } from "../../../edge-agent/simulator/index.ts";
import { FakePlatform } from "./fake-platform.ts";

/** Simulator worker processes this test process has forked and not yet reaped. */
function workerChildren(): string[] {
  const out = execFileSync("ps", ["-o", "pid=,args=", "--ppid", String(process.pid)], {
    encoding: "utf8",
  });
  return out.split("\n").filter((l) => l.includes("worker-main"));
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe("simulator worker processes (fd limit: one socket per device)", () => {
  const open: Array<{ close(): Promise<unknown> }> = [];
  afterEach(async () => {
    await Promise.all(open.splice(0).map((o) => o.close()));
  });

  it("2 workers × 20 devices register distinct IDs, aggregate stats, and exit on close", async () => {
    const platform = await FakePlatform.start({ keepAliveSeconds: "0.1" });
    open.push(platform);
    const workers: SimulatorWorkers = await runSimulatorWorkers({
      agent: platform.agent,
      devices: 40,
      workers: 2,
      registerSpreadMs: 50,
      seed: 1,
    });
    open.push(workers);
    expect(workers.workers).toBe(2);
    expect(workers.pids.every(alive)).toBe(true);
    expect(workerChildren()).toHaveLength(2);
    await workers.waitFor("all-online", 10_000);
    await workers.waitFor((s) => s.keepalivesAnswered >= 40, 10_000);

    const ids = [...new Set(platform.messages("register").map((m) => m.deviceId))].sort();
    expect(ids).toEqual(
      Array.from({ length: 40 }, (_, i) => `sim-${String(i + 1).padStart(5, "0")}`),
    );
    const ports = new Set([...platform.sessions.values()].map((s) => s.port));
    expect(ports.size).toBe(40);

    const live = await workers.stats();
    expect(live.devices).toBe(40);
    expect(live.states.online).toBe(40);
    expect(live.registrations).toBe(40);
    expect(live.latency.count).toBe(live.keepalivesAnswered);

    const final = await workers.close();
    expect(final.devices).toBe(40);
    expect(final.states.stopped).toBe(40);
    expect(final.keepalivesSent).toBeGreaterThanOrEqual(live.keepalivesSent);
    expect(workers.pids.some(alive)).toBe(false);
    expect(workerChildren()).toEqual([]);
    expect(await workers.close()).toEqual(final);
  });

  it("a worker that cannot start fails the whole start and leaves no process behind", async () => {
    // 192.0.2.1 (TEST-NET-1) is not a local address, so binding fails in the worker.
    await expect(
      runSimulatorWorkers({
        agent: { host: "127.0.0.1", port: 9 },
        devices: 4,
        workers: 2,
        bind: "192.0.2.1",
      }),
    ).rejects.toThrow(/worker \d: could not bind/);
    expect(workerChildren()).toEqual([]);
  });
});
