import { describe, expect, it } from "vitest";
import { DEFAULT_VIEW } from "../../../edge-agent/signalling/catalogue.ts";
import { readFields } from "../../../edge-agent/signalling/codec/index.ts";
import { useHarness } from "./harness.ts";

const gps = DEFAULT_VIEW.commands.gps;

describe("simulator GPS reports (ehome-2.0 §2.9)", () => {
  const harness = useHarness();

  it("reports position in 1/100 arc-second units with NeedsResponse", async () => {
    const { platform, sim } = await harness({ devices: 2, gpsIntervalSeconds: 0.05 });
    await sim.start();
    await platform.waitFor(() => platform.messages("gps").length >= 6, 3000);
    for (const m of platform.messages("gps")) {
      const f = readFields(m.params, gps.params);
      expect(f.divisionEw).toBe("E");
      expect(f.divisionNs).toBe("N");
      // Around Hangzhou: 120.15 E, 30.27 N, in degrees × 360000.
      expect(Number(f.longitude) / 360_000).toBeGreaterThan(119);
      expect(Number(f.longitude) / 360_000).toBeLessThan(121);
      expect(Number(f.latitude) / 360_000).toBeGreaterThan(29.5);
      expect(Number(f.latitude) / 360_000).toBeLessThan(31);
      expect(Number.isInteger(Number(f.longitude))).toBe(true);
      expect(f.retransFlag).toBe("0");
      expect(f.needsResponse).toBe("1");
      expect(f.time).toMatch(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/);
      expect(Number(f.direction)).toBeLessThan(360);
    }
    expect(sim.stats().gpsAnswered).toBeGreaterThanOrEqual(6);
  });

  it("resends an unanswered report with RetransFlag 1 and the same Sequence until answered", async () => {
    const { platform, sim } = await harness(
      { devices: 1, gpsIntervalSeconds: 0.05, gpsRetryMs: 40 },
      { answerGps: false },
    );
    await sim.start();
    await platform.waitFor(() => platform.messages("gps").length >= 3, 3000);
    const sent = platform.messages("gps");
    expect(new Set(sent.map((m) => m.header.sequence)).size).toBe(1);
    expect(sent.map((m) => m.retransFlag)).toEqual(["0", ...sent.slice(1).map(() => "1")]);
    platform.answerGps = true;
    await sim.waitFor(() => sim.stats().gpsAnswered >= 2, 3000);
    const s = sim.stats();
    expect(s.gpsResent).toBeGreaterThanOrEqual(2);
    // After the answer a new report (new Sequence) starts with RetransFlag 0 again.
    const later = platform
      .messages("gps")
      .filter((m) => m.header.sequence !== sent[0]!.header.sequence);
    expect(later[0]!.retransFlag).toBe("0");
  });
});
