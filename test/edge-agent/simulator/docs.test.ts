import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { CliUsageError, USAGE } from "../../../edge-agent/simulator/cli-args.ts";
import {
  SimulatorBindError,
  SimulatorClosedError,
  SimulatorOptionsError,
  SimulatorTimeoutError,
} from "../../../edge-agent/simulator/index.ts";
import { emptySnapshot, toStats } from "../../../edge-agent/simulator/stats.ts";

const doc = readFileSync(new URL("../../../docs/simulator.md", import.meta.url), "utf8");

describe("docs/simulator.md stays in step with the code", () => {
  it("documents every CLI flag of the usage text", () => {
    const flags = [...USAGE.matchAll(/^\s+(--[a-z-]+)/gm)].map((m) => m[1]!);
    expect(flags.length).toBeGreaterThan(25);
    for (const flag of flags) {
      if (flag === "--help") continue;
      expect(doc, flag).toContain(`\`${flag}`);
    }
  });

  it("lists every error code with its class", () => {
    const errors = [
      new SimulatorOptionsError("devices", "x"),
      new SimulatorBindError("x"),
      new SimulatorTimeoutError("x", toStats(emptySnapshot())),
      new SimulatorClosedError(),
      new CliUsageError("x"),
    ];
    const documented = [...doc.matchAll(/^\| `(SIMULATOR_[A-Z_]+)` +\| `(\w+)` +\|/gm)].map(
      (m) => `${m[1]} ${m[2]}`,
    );
    expect(documented.sort()).toEqual(errors.map((e) => `${e.code} ${e.name}`).sort());
  });

  it("names every counter", () => {
    const { devices, states, latency, elapsedMs, ...counters } = toStats(emptySnapshot());
    for (const name of Object.keys(counters)) expect(doc, name).toContain(`\`${name}\``);
  });
});
