import { describe, expect, it } from "vitest";
import { decode, encode } from "../../../edge-agent/signalling/codec/index.ts";
import { corrupt, createLink } from "../../../edge-agent/simulator/link.ts";
import { seededRandom } from "../../../edge-agent/simulator/random.ts";
import { createScheduler } from "../../../edge-agent/simulator/scheduler.ts";
import { type CounterName, emptyCounters } from "../../../edge-agent/simulator/stats.ts";

function setup(imp: Partial<Parameters<typeof createLink>[0]["impairments"]>) {
  const sent: Uint8Array[] = [];
  const counters = emptyCounters();
  const scheduler = createScheduler();
  const link = createLink({
    port: {
      send: (b, cb) => {
        sent.push(b);
        cb(null);
      },
    },
    impairments: { loss: 0, latencyMs: 0, jitterMs: 0, duplicate: 0, malformed: 0, ...imp },
    random: seededRandom(99),
    scheduler,
    count: (k: CounterName, n = 1) => {
      counters[k] += n;
    },
  });
  return { link, sent, counters, scheduler };
}

describe("device link impairments", () => {
  it("loss drops about the configured share in each direction", () => {
    const { link, sent, counters } = setup({ loss: 0.25 });
    let delivered = 0;
    for (let i = 0; i < 4000; i++) {
      link.send(new Uint8Array([1]), false);
      link.receive(new Uint8Array([1]), () => delivered++);
    }
    expect(sent.length + counters.droppedOutbound).toBe(4000);
    expect(counters.droppedOutbound / 4000).toBeCloseTo(0.25, 1);
    expect(counters.droppedInbound / 4000).toBeCloseTo(0.25, 1);
    expect(delivered + counters.droppedInbound).toBe(4000);
  });

  it("malformed only touches replies", () => {
    const { link, counters } = setup({ malformed: 1 });
    link.send(new Uint8Array(100), false);
    expect(counters.malformedSent).toBe(0);
    link.send(new Uint8Array(100), true);
    expect(counters.malformedSent).toBe(1);
  });

  it("a corrupted reply never decodes", () => {
    const r = encode({
      kind: "response",
      version: "2.0",
      sequence: 1,
      whichCommand: "GETDEVICEWORKSTATUS",
      status: 200,
      description: "OK",
      params: { A: "1" },
    });
    if (!r.ok) throw new Error(r.error.message);
    const random = seededRandom(1);
    for (let i = 0; i < 200; i++) {
      const bad = corrupt(r.bytes, random);
      expect(bad.length).toBeLessThan(r.bytes.length);
      expect(decode(bad, { role: "platform" }).ok).toBe(false);
    }
  });

  it("latency delays delivery through the scheduler", async () => {
    const { link, sent, scheduler } = setup({ latencyMs: 30 });
    const t0 = performance.now();
    link.send(new Uint8Array([1]), false);
    expect(sent).toHaveLength(0);
    await new Promise((r) => setTimeout(r, 60));
    expect(sent).toHaveLength(1);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(29);
    scheduler.close();
  });
});
