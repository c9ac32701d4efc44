import { describe, expect, it } from "vitest";
import { replaceSection } from "../../bench/run-all.ts";
import { render } from "../../bench/signalling/report.ts";
import { runSignallingBench } from "../../bench/signalling/run.ts";

/**
 * Smoke test of bench/signalling so it cannot silently rot: the quick path end to end (agent and
 * echo children, two generator processes, 200 devices, two short rates), checking the JSON shape
 * and that both servers answered. The numbers themselves belong in docs/BENCHMARKS.md, not here.
 */
describe("bench/signalling quick mode", () => {
  it("registers 200 devices, measures agent and raw echo, and reports a ratio", async () => {
    const lines: string[] = [];
    const result = await runSignallingBench({
      quick: true,
      devices: [200],
      repetitions: 1,
      rates: [1_000, 2_000],
      refine: 0,
      stepMs: 1_000,
      warmupMs: 0,
      generators: 2,
      lossThresholdPct: 0.1,
      quietMaxWaitMs: 0,
      idleMs: 200,
      maxDrainMs: 1_000,
      profileDir: undefined,
      command: "test",
      log: (line) => lines.push(line),
    });

    // The result is plain JSON.
    expect(JSON.parse(JSON.stringify(result))).toEqual(result);
    expect(result).toMatchObject({ benchmark: "signalling", mode: "quick", command: "test" });
    expect(result.machine.cores).toBeGreaterThan(0);
    expect(result.machine.nodeVersion).toBe(process.version);
    expect(result.machine.cpuModel).not.toBe("");

    expect(result.scenarios).toHaveLength(1);
    const s = result.scenarios[0]!;
    expect(s.devices).toBe(200);
    expect(s.generators).toBe(2);
    const run = s.runs[0]!;
    expect(run.agent.registration).toMatchObject({ registered: 200, failed: 0, sessionsHeld: 200 });
    expect(run.echo.registration).toMatchObject({ registered: 200, failed: 0 });
    for (const step of [...run.agent.steps, ...run.echo.steps]) {
      expect(step.sent).toBeGreaterThan(0);
      expect(step.answered).toBeGreaterThan(0);
      expect(step.rejected).toBe(0);
      expect(step.p50Ms).toBeGreaterThan(0);
      expect(step.p99Ms).toBeGreaterThanOrEqual(step.p50Ms);
    }
    // Every KEEPALIVE the agent received was from a device it held (none answered 403).
    expect(run.agent.steps.every((x) => x.server.keepalivesUnknown === 0)).toBe(true);

    for (const key of [
      "offeredRate",
      "answeredRate",
      "p50Ms",
      "p99Ms",
      "cpuUsPerMessage",
    ] as const) {
      expect(s[key]).toBeGreaterThan(0);
      expect(s.echo[key]).toBeGreaterThan(0);
    }
    expect(s.lossPct).toBeGreaterThanOrEqual(0);
    expect(s.ratio).toBeGreaterThan(0);
    expect(s.ratios).toHaveLength(1);
    expect(Number.isFinite(s.rssPerSessionBytes)).toBe(true);
    expect(s.heapPerSessionBytes).toBeGreaterThan(0);
    expect(run.agent.memory?.after.sessions).toBe(200);
    expect(s.ladder.map((l) => l.targetRate)).toEqual([1_000, 2_000]);
    expect(typeof s.targets.ratio.met).toBe("boolean");

    // And it renders into the docs section.
    const md = render(result);
    expect(md).toContain("| 200 | 2 |");
    expect(md).toContain("Command: `test`");
    expect(lines.some((l) => l.includes("agent 200 devices: 200 registered"))).toBe(true);
  }, 30_000);
});

describe("bench/run-all docs sections", () => {
  it("replaces a marked section and keeps the hand-written text around it", () => {
    const doc =
      "# B\n\nintro\n\n## S\n\n<!-- bench:x:begin -->\nold\n<!-- bench:x:end -->\n\nnotes\n";
    const next = replaceSection(doc, "x", "S", "new table");
    expect(next).toContain("intro");
    expect(next).toContain("notes");
    expect(next).toContain("new table");
    expect(next).not.toContain("old");
    expect(replaceSection(next, "x", "S", "again")).not.toContain("new table");
  });

  it("appends a section with its heading when the markers are missing", () => {
    const next = replaceSection("# B\n", "y", "Why", "table");
    expect(next).toMatch(
      /## Why\n\n<!-- bench:y:begin -->[\s\S]*table[\s\S]*<!-- bench:y:end -->\n$/,
    );
  });
});
