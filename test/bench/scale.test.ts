import { describe, expect, it } from "vitest";
import { render as renderStorm } from "../../bench/register-storm/report.ts";
import { runRegisterStorm } from "../../bench/register-storm/run.ts";
import { render as renderSoak } from "../../bench/soak/report.ts";
import { runSoak } from "../../bench/soak/run.ts";

/**
 * Smoke tests of the scale benchmarks (bench/register-storm, bench/soak) at tiny sizes, so they
 * cannot silently rot: agent and echo children, generator processes, the JSON shape, the same-run
 * baseline ratio and the generated markdown. The numbers belong in docs/BENCHMARKS.md.
 */
describe("bench/register-storm at a tiny size", () => {
  it("registers every device at once on the agent and on the echo, and reports a ratio", async () => {
    const result = await runRegisterStorm({
      quick: true,
      devices: 300,
      repetitions: 1,
      generators: 2,
      retryMs: 2_000,
      maxSends: 5,
      timeoutMs: 20_000,
      platform: true,
      spreadMs: 1_000,
      command: "test",
      log: () => {},
    });
    expect(JSON.parse(JSON.stringify(result))).toEqual(result);
    expect(result).toMatchObject({ benchmark: "register-storm", mode: "quick" });
    const [s] = result.scenarios;
    const { agent, echo } = s!.runs[0]!;
    expect(agent).toMatchObject({ registered: 300, failed: 0, refused: 0, sessionsHeld: 300 });
    expect(agent.registeredEvents).toBe(300);
    expect(agent.allOnlineMs).toBeGreaterThan(0);
    expect(echo).toMatchObject({ registered: 300, failed: 0 });
    expect(s!.registersPerSecond).toBeGreaterThan(0);
    expect(s!.ratio).toBeGreaterThan(0);
    // Through the whole local platform: every device online in the devices table and the API.
    expect(s!.platform).toMatchObject({ registered: 300, failed: 0, apiListedOnline: 300 });
    expect(s!.platform!.registryAllOnlineMs).toBeGreaterThan(0);
    // The first REGISTERs were spread over the second, and the API listed all of them after it.
    expect(s!.platform!.lastReplyMs).toBeGreaterThanOrEqual(900);
    expect(s!.platform!.apiAllOnlineMs).toBeGreaterThanOrEqual(s!.platform!.registryAllOnlineMs!);
    expect(s!.platform!.provisioning).toMatchObject({ reads: 300, shed: 0 });
    expect(s!.platform!.timeline.length).toBeGreaterThan(0);
    expect(renderStorm(result)).toContain("| 300 |");
  });
});

describe("bench/soak at a tiny size", () => {
  it("keepalives 300 devices over three windows: no loss to speak of, no false offline, memory sampled", async () => {
    const result = await runSoak({
      quick: true,
      devices: 300,
      durationMs: 1_500,
      windowMs: 500,
      keepAliveSeconds: 1,
      generators: 2,
      command: "test",
      log: () => {},
    });
    expect(JSON.parse(JSON.stringify(result))).toEqual(result);
    const [s] = result.scenarios;
    expect(s!.registration).toMatchObject({ registered: 300, sessionsHeld: 300 });
    expect(s!.windows.length).toBeGreaterThanOrEqual(3);
    for (const w of s!.windows) {
      expect(w.sent).toBeGreaterThan(0);
      expect(w.sessions).toBe(300);
      expect(w.heapUsedBytes).toBeGreaterThan(0);
    }
    expect(s!.falseOffline).toBe(0);
    expect(s!.echo.p99Ms).toBeGreaterThan(0);
    expect(s!.p99Ratio).toBeGreaterThan(0);
    expect(renderSoak(result)).toContain("False offline");
  });
});
