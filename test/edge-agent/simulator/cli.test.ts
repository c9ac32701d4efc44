import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import {
  CliUsageError,
  DEVICES_PER_WORKER,
  parseCliArgs,
} from "../../../edge-agent/simulator/cli-args.ts";
import { resolveOptions } from "../../../edge-agent/simulator/options.ts";
import { FakePlatform } from "./fake-platform.ts";

const CLI = fileURLToPath(new URL("../../../edge-agent/simulator/cli.ts", import.meta.url));
const TSX_LOADER = createRequire(import.meta.url).resolve("tsx");

describe("simulator CLI arguments", () => {
  it("defaults to one GB2312 device against 127.0.0.1:7660 in this process", () => {
    const c = parseCliArgs([])!;
    expect(c.options).toEqual({ agent: { host: "127.0.0.1", port: 7660 }, devices: 1 });
    expect(c.workers).toBe(1);
    expect(resolveOptions(c.options).encoding).toBe("gb2312");
  });

  it("maps every flag onto an option", () => {
    const c = parseCliArgs([
      "--devices=1000",
      "--agent=10.0.0.5:7661",
      "--bind=127.0.0.1, 127.0.0.2",
      "--id-prefix=cam",
      "--id-start=100",
      "--id-width=8",
      "--encoding=UTF-8",
      "--password=pw",
      "--dev-type=11",
      "--firmware=V1",
      "--channels=8",
      "--ptz=mixed",
      "--register-spread-ms=5000",
      "--register-retry-ms=2000",
      "--keepalive-seconds=30",
      "--keepalive-miss-limit=0",
      "--gps-seconds=10",
      "--gps-retry-ms=1500",
      "--gps-path=121.426653,31.2; 121.43,-31.205",
      "--gps-max-reports=1000",
      "--gps-answer-loss=0.05",
      "--passthrough-seconds=2",
      "--reboot-ms=20000",
      "--upgrade-ms=-1",
      "--loss=0.3",
      "--latency-ms=20",
      "--jitter-ms=5",
      "--duplicate=0.1",
      "--malformed=0.05",
      "--seed=42",
      "--workers=3",
      "--status-interval-ms=0",
      "--duration-s=60",
    ])!;
    expect(c.options).toEqual({
      agent: { host: "10.0.0.5", port: 7661 },
      devices: 1000,
      bind: ["127.0.0.1", "127.0.0.2"],
      idPrefix: "cam",
      firstIndex: 100,
      idWidth: 8,
      encoding: "utf8",
      password: "pw",
      devType: "11",
      firmwareVersion: "V1",
      channels: 8,
      ptz: "mixed",
      registerSpreadMs: 5000,
      registerRetryMs: 2000,
      keepAliveSeconds: 30,
      keepaliveMissLimit: 0,
      gpsIntervalSeconds: 10,
      gpsRetryMs: 1500,
      gpsPath: [
        [121.426653, 31.2],
        [121.43, -31.205],
      ],
      gpsMaxReports: 1000,
      gpsAnswerLossRate: 0.05,
      passthroughIntervalSeconds: 2,
      rebootMs: 20000,
      upgradeMs: -1,
      loss: 0.3,
      latencyMs: 20,
      jitterMs: 5,
      duplicate: 0.1,
      malformed: 0.05,
      seed: 42,
    });
    expect(c.workers).toBe(3);
    expect(c.statusIntervalMs).toBe(0);
    expect(c.durationSeconds).toBe(60);
  });

  it("splits large fleets over worker processes by default (file-descriptor limit)", () => {
    expect(parseCliArgs(["--devices", "100000"])!.workers).toBe(
      Math.ceil(100_000 / DEVICES_PER_WORKER),
    );
    expect(parseCliArgs(["--devices", "100000", "--workers", "10"])!.workers).toBe(10);
  });

  it("accepts [IPv6]:port and refuses malformed values", () => {
    expect(parseCliArgs(["--agent", "[::1]:7660"])!.options.agent).toEqual({
      host: "::1",
      port: 7660,
    });
    for (const bad of [
      ["--agent", "localhost"],
      ["--agent", "h:70000"],
      ["--devices", "many"],
      ["--ptz", "maybe"],
      ["--encoding", "latin1"],
      ["--workers", "0"],
      ["--gps-path", "121.4;31.2"],
      ["--gps-path", "east,north"],
      ["--unknown-flag"],
    ]) {
      expect(() => parseCliArgs(bad), bad.join(" ")).toThrow(CliUsageError);
    }
    expect(parseCliArgs(["--help"])).toBeNull();
  });
});

function runCli(args: string[]) {
  const child = spawn(process.execPath, ["--import", TSX_LOADER, CLI, ...args], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d) => {
    stdout += d;
  });
  child.stderr.on("data", (d) => {
    stderr += d;
  });
  const exit = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return { child, exit, out: () => stdout, err: () => stderr };
}

describe("simulator CLI", () => {
  it("runs for --duration-s, prints status lines and a JSON summary", async () => {
    const platform = await FakePlatform.start({ keepAliveSeconds: "0.2" });
    try {
      const run = runCli([
        "--devices=10",
        `--agent=127.0.0.1:${platform.port}`,
        "--register-spread-ms=50",
        "--status-interval-ms=300",
        "--duration-s=1.2",
        "--encoding=mixed",
      ]);
      expect(await run.exit).toBe(0);
      expect(run.err()).toMatch(/\[sim \d+s\] devices=10 online=10/);
      const summary = JSON.parse(run.out());
      expect(summary.devices).toBe(10);
      expect(summary.registrations).toBe(10);
      expect(summary.keepalivesAnswered).toBeGreaterThan(0);
      expect(summary.states.stopped).toBe(10);
      expect(new Set(platform.messages("register").map((m) => m.header.encoding))).toEqual(
        new Set(["GB2312", "UTF-8"]),
      );
    } finally {
      await platform.close();
    }
  });

  it("closes cleanly on Ctrl-C (SIGINT), workers included", async () => {
    const platform = await FakePlatform.start({ keepAliveSeconds: "0.2" });
    const run = runCli([
      "--devices=6",
      "--workers=2",
      `--agent=127.0.0.1:${platform.port}`,
      "--register-spread-ms=20",
      "--status-interval-ms=200",
    ]);
    try {
      await platform.waitFor(() => platform.sessions.size === 6, 15_000);
      await platform.waitFor(() => /online=6/.test(run.err()), 15_000);
      run.child.kill("SIGINT");
      expect(await run.exit).toBe(0);
      const summary = JSON.parse(run.out());
      expect(summary.devices).toBe(6);
      expect(summary.states.stopped).toBe(6);
    } finally {
      if (run.child.exitCode === null) run.child.kill("SIGKILL");
      await platform.close();
    }
  });

  it("exits 2 with usage on a bad flag", async () => {
    const run = runCli(["--loss=lots"]);
    expect(await run.exit).toBe(2);
    expect(run.err()).toMatch(/--loss expects a number/);
    expect(run.err()).toMatch(/Usage: npm run sim/);
  });
});
