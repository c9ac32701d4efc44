import { describe, expect, it } from "vitest";
import { sleep, useHarness } from "./harness.ts";

function gaps(times: number[]): number[] {
  return times.slice(1).map((t, i) => t - times[i]!);
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
};

describe("simulator keepalive (ehome-2.0 §2.2)", () => {
  const harness = useHarness();

  it("sends KEEPALIVE at the KeepAliveSeconds of the REGISTER response, and follows a new one", async () => {
    const { platform, sim } = await harness({ devices: 1 }, { keepAliveSeconds: "0.1" });
    await sim.start();
    await sim.waitFor("all-online", 2000);
    const d = sim.devices[0]!;
    expect(d.keepAliveSeconds).toBe(0.1);
    await platform.waitFor(() => platform.messages("keepalive").length >= 5);
    const first = gaps(platform.messages("keepalive").map((m) => m.at));
    // Medians and loose upper bounds: timers run late on a loaded 2-core machine, never early.
    expect(median(first)).toBeGreaterThan(80);
    expect(median(first)).toBeLessThan(200);

    platform.keepAliveSeconds = "0.25";
    d.reregister();
    await sim.waitFor(() => d.keepAliveSeconds === 0.25, 5000);
    const mark = platform.messages("keepalive").length;
    await platform.waitFor(() => platform.messages("keepalive").length >= mark + 4, 6000);
    const second = gaps(
      platform
        .messages("keepalive")
        .slice(mark)
        .map((m) => m.at),
    );
    expect(median(second)).toBeGreaterThan(220);
    expect(median(second)).toBeLessThan(400);
    expect(median(second)).toBeGreaterThan(median(first) * 1.8);
    expect(sim.stats().keepalivesAnswered).toBeGreaterThanOrEqual(8);
  });

  it("keepAliveSeconds overrides the response", async () => {
    const { platform, sim } = await harness(
      { devices: 1, keepAliveSeconds: 0.05 },
      { keepAliveSeconds: 15 },
    );
    await sim.start();
    await platform.waitFor(() => platform.messages("keepalive").length >= 4, 2000);
    expect(sim.devices[0]!.keepAliveSeconds).toBe(0.05);
  });

  it("KeepAliveSeconds 0 means 15 s (SDK default, ehome-2.0 §2.1)", async () => {
    const { sim } = await harness({ devices: 1 }, { keepAliveSeconds: 0 });
    await sim.start();
    await sim.waitFor("all-online", 2000);
    expect(sim.devices[0]!.keepAliveSeconds).toBe(15);
  });

  it("a 403 to a KEEPALIVE makes the device register again", async () => {
    const { platform, sim } = await harness({ devices: 2 }, { keepAliveSeconds: "0.05" });
    const rejected: string[] = [];
    sim.on("rejected", (e) => rejected.push(`${e.device.id}:${e.whichCommand}:${e.status}`));
    await sim.start();
    await sim.waitFor("all-online", 2000);
    const [a, b] = sim.devices;
    platform.forget(a!.id);
    await sim.waitFor(() => a!.counters.registrations === 2, 2000);
    expect(platform.sessions.has(a!.id)).toBe(true);
    expect(a!.counters.keepalive403).toBe(1);
    expect(b!.counters.registrations).toBe(1);
    expect(rejected).toEqual([`${a!.id}:KEEPALIVE:403`]);
    expect(sim.stats().keepalive403).toBe(1);
  });

  it("re-registers after keepaliveMissLimit unanswered KEEPALIVEs", async () => {
    const { platform, sim } = await harness(
      { devices: 1, keepaliveMissLimit: 2, registerRetryMs: 30 },
      { keepAliveSeconds: "0.04" },
    );
    await sim.start();
    await sim.waitFor("all-online", 2000);
    platform.answering = false;
    await sim.waitFor(() => sim.devices[0]!.state === "registering", 2000);
    expect(sim.stats().keepalivesMissed).toBe(2);
    platform.answering = true;
    await sim.waitFor("all-online", 2000);
    expect(sim.stats().registrations).toBe(2);
  });

  it("goSilent stops all traffic; resume continues the keepalives", async () => {
    const { platform, sim } = await harness({ devices: 1 }, { keepAliveSeconds: "0.03" });
    await sim.start();
    await sim.waitFor("all-online", 2000);
    const d = sim.devices[0]!;
    d.goSilent();
    expect(d.state).toBe("stopped");
    expect(d.silent).toBe(true);
    const before = platform.received.length;
    await sleep(150);
    expect(platform.received.length).toBe(before);
    // Requests to a silent device go unanswered.
    await expect(platform.request(d.id, "getWorkStatus", {}, { timeoutMs: 100 })).rejects.toThrow();
    d.resume();
    expect(d.state).toBe("online");
    await platform.waitFor(
      () => platform.messages("keepalive").length > 0 && platform.received.length > before,
    );
    expect(platform.messages("register")).toHaveLength(1);
  });
});
