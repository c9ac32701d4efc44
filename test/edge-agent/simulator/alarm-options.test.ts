import { describe, expect, it } from "vitest";
import { CliUsageError, parseCliArgs } from "../../../edge-agent/simulator/cli-args.ts";
import { resolveOptions, SimulatorOptionsError } from "../../../edge-agent/simulator/index.ts";

describe("simulator alarm and upload options", () => {
  it("CLI flags map to the library options", () => {
    const c = parseCliArgs([
      "--alarm-every-s",
      "2.5",
      "--alarm-pictures",
      "3",
      "--alarm-videos",
      "1",
      "--alarm-stop-after-ms",
      "500",
      "--alarm-retry-ms",
      "700",
      "--upload-order",
      "mixed",
      "--upload-delay-ms",
      "250",
      "--upload-fail-rate",
      "0.1",
      "--video-bytes",
      "1000",
    ])!;
    expect(c.options).toMatchObject({
      alarmEverySeconds: 2.5,
      alarmPictures: 3,
      alarmVideos: 1,
      alarmStopAfterMs: 500,
      alarmRetryMs: 700,
      uploadOrder: "mixed",
      uploadDelayMs: 250,
      uploadFailRate: 0.1,
      videoBytes: 1000,
    });
    expect(() => parseCliArgs(["--upload-order", "sideways"])).toThrow(CliUsageError);
  });

  it("defaults: no alarms, one picture, uploads after, nothing lost", () => {
    const o = resolveOptions({ agent: { host: "127.0.0.1", port: 7660 }, devices: 1 });
    expect(o).toMatchObject({
      alarmEverySeconds: 0,
      alarmPictures: 1,
      alarmVideos: 0,
      uploadOrder: "after",
      uploadDelayMs: 0,
      uploadFailRate: 0,
    });
    expect(() =>
      resolveOptions({ agent: { host: "h", port: 1 }, devices: 1, uploadFailRate: 2 }),
    ).toThrow(SimulatorOptionsError);
  });
});
