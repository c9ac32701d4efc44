import { describe, expect, it } from "vitest";
import { CliUsageError, parseCliArgs } from "../../../edge-agent/simulator/cli-args.ts";
import { resolveOptions, SimulatorOptionsError } from "../../../edge-agent/simulator/options.ts";

const agent = { host: "127.0.0.1", port: 7660 };
const base = { agent, devices: 1 };

describe("simulator upgrade knobs (flags and library options)", () => {
  it("parses the upgrade flags into options", () => {
    const c = parseCliArgs([
      "--upgrade-download",
      "--upgrade-fault",
      "bad-checksum",
      "--upgrade-fault-rate",
      "0.05",
      "--upgrade-interrupt-bytes",
      "4096",
      "--upgrade-status",
    ])!;
    expect(c.options).toMatchObject({
      upgradeDownload: true,
      upgradeFault: "bad-checksum",
      upgradeFaultRate: 0.05,
      upgradeInterruptBytes: 4096,
      upgradeStatus: true,
    });
    expect(() => parseCliArgs(["--upgrade-fault", "explode"])).toThrow(CliUsageError);
  });

  it("defaults to no download and no fault, and validates", () => {
    expect(resolveOptions(base)).toMatchObject({
      upgradeDownload: false,
      upgradeFault: "none",
      upgradeFaultRate: 1,
      upgradeInterruptBytes: 0,
      upgradeStatus: false,
    });
    expect(() => resolveOptions({ ...base, upgradeFaultRate: 2 })).toThrow(SimulatorOptionsError);
    expect(() => resolveOptions({ ...base, upgradeFault: "x" as "refuse" })).toThrow(
      /upgradeFault/,
    );
  });
});
