import { describe, expect, it } from "vitest";
import { decode } from "../../../edge-agent/signalling/codec/index.ts";
import { useHarness } from "./harness.ts";

describe("simulator network knobs", () => {
  const harness = useHarness();

  it("30 % loss in both directions is visible in stats, and registration still completes", async () => {
    const { platform, sim } = await harness(
      { devices: 20, loss: 0.3, registerRetryMs: 50, keepaliveMissLimit: 0 },
      { keepAliveSeconds: "0.05" },
    );
    await sim.start();
    await sim.waitFor("all-online", 5000);
    await sim.waitFor(() => sim.stats().keepalivesSent >= 200, 5000);
    const s = sim.stats();
    const outRate = s.droppedOutbound / (s.droppedOutbound + s.datagramsSent);
    expect(outRate).toBeGreaterThan(0.15);
    expect(outRate).toBeLessThan(0.45);
    expect(s.droppedInbound).toBeGreaterThan(0);
    // Only what survived the knob reached the platform (loopback itself loses nothing).
    await platform.waitFor(() => platform.received.length === sim.stats().datagramsSent, 2000);
    expect(s.keepalivesAnswered).toBeLessThan(s.keepalivesSent);
  });

  it("duplicate 1 sends every datagram twice", async () => {
    const { platform, sim } = await harness(
      { devices: 1, duplicate: 1 },
      { keepAliveSeconds: "0.05" },
    );
    await sim.start();
    await sim.waitFor("all-online", 2000);
    await sim.waitFor(() => sim.stats().keepalivesSent >= 3, 2000);
    await platform.waitFor(() => platform.messages("keepalive").length >= 6);
    const seqs = platform.messages("keepalive").map((m) => m.header.sequence);
    expect(seqs.slice(0, 6)).toEqual([seqs[0], seqs[0], seqs[2], seqs[2], seqs[4], seqs[4]]);
    const s = sim.stats();
    expect(s.duplicatesSent).toBe(s.datagramsSent / 2);
  });

  it("malformed 1 corrupts every reply so the platform cannot decode it", async () => {
    const { platform, sim } = await harness({ devices: 1, malformed: 1 });
    await sim.start();
    await sim.waitFor("all-online", 2000);
    const d = sim.devices[0]!;
    await expect(platform.request(d.id, "getWorkStatus", {}, { timeoutMs: 200 })).rejects.toThrow();
    const last = platform.received.at(-1)!;
    expect(last.message).toBeNull();
    expect(decode(last.bytes, { role: "platform" }).ok).toBe(false);
    expect(sim.stats().malformedSent).toBe(1);
    // REGISTER/KEEPALIVE are requests, not replies: they are never corrupted.
    expect(platform.messages("register")).toHaveLength(1);
  });

  it("a partly malformed link still completes commands when the platform resends", async () => {
    const { platform, sim } = await harness({ devices: 1, malformed: 0.5, seed: 3 });
    await sim.start();
    await sim.waitFor("all-online", 2000);
    const d = sim.devices[0]!;
    for (let i = 0; i < 5; i++) {
      const r = await platform.request(
        d.id,
        "getWorkStatus",
        {},
        { resendMs: 30, timeoutMs: 2000 },
      );
      expect(r.status).toBe(200);
    }
    const s = sim.stats();
    expect(s.malformedSent).toBeGreaterThan(0);
    expect(s.commandDuplicates).toBe(s.commandsReceived - 5);
  });

  it("latency delays each direction", async () => {
    const { sim } = await harness(
      { devices: 1, latencyMs: 40, jitterMs: 5 },
      { keepAliveSeconds: "0.05" },
    );
    const t0 = performance.now();
    await sim.start();
    await sim.waitFor("all-online", 2000);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(70);
    await sim.waitFor(() => sim.stats().latency.count >= 3, 3000);
    const { latency } = sim.stats();
    // Round trip = two one-way delays of 40 ± 5 ms.
    expect(latency.p50Ms).toBeGreaterThanOrEqual(70);
    expect(latency.p50Ms).toBeLessThan(200);
  });
});
