import { describe, expect, it } from "vitest";
import { CliUsageError, parseCliArgs } from "../../../edge-agent/simulator/cli-args.ts";
import { createSimMediaEnv } from "../../../edge-agent/simulator/device-media.ts";
import { resolveOptions, SimulatorOptionsError } from "../../../edge-agent/simulator/options.ts";

const agent = { host: "127.0.0.1", port: 7660 };
const base = { agent, devices: 1 };

describe("simulator media knobs (flags and library options)", () => {
  it("parses the media flags into options", () => {
    const c = parseCliArgs([
      "--media-header",
      "--media-speed",
      "0",
      "--playback-framing",
      "rtp",
      "--media-audio",
      "--record-seconds",
      "12",
      "--media-kbps",
      "4000",
      "--media-fixture-dir",
      "test/fixtures/media",
    ])!;
    expect(c.options).toMatchObject({
      mediaHeader: true,
      mediaSpeed: 0,
      playbackFraming: "rtp",
      mediaAudio: true,
      recordSeconds: 12,
      mediaBitrateKbps: 4000,
      mediaFixtureDir: "test/fixtures/media",
    });
    expect(() => parseCliArgs(["--playback-framing", "ts"])).toThrow(CliUsageError);
    expect(() => parseCliArgs(["--media-speed", "fast"])).toThrow(CliUsageError);
  });

  it("defaults to real-time pushes without header, raw PS playback, 60 s records; validates", () => {
    expect(resolveOptions(base)).toMatchObject({
      mediaHeader: false,
      mediaSpeed: 1,
      playbackFraming: "ps",
      mediaAudio: false,
      mediaCapture: false,
      recordSeconds: 60,
      mediaBitrateKbps: 0,
      mediaFixtureDir: undefined,
    });
    expect(() => resolveOptions({ ...base, mediaSpeed: -1 })).toThrow(SimulatorOptionsError);
    expect(() => resolveOptions({ ...base, recordSeconds: 0 })).toThrow(/recordSeconds/);
    expect(() => resolveOptions({ ...base, recordSeconds: 1.5 })).toThrow(/recordSeconds/);
    expect(() => resolveOptions({ ...base, playbackFraming: "ts" as "ps" })).toThrow(
      /playbackFraming/,
    );
  });

  it("loads the fixtures from a directory given relative to the working directory", () => {
    const env = createSimMediaEnv(
      resolveOptions({ ...base, mediaFixtureDir: "test/fixtures/media" }),
    );
    expect(env.fixture("sub").width).toBe(320);
    expect(env.records().record(1, 0).frames).toBe(60 * 25);
    const missing = createSimMediaEnv(resolveOptions({ ...base, mediaFixtureDir: "no/such/dir" }));
    expect(() => missing.fixture("main")).toThrow(/ENOENT/);
  });
});
