import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { CONFIG_VARIABLES, ConfigError, loadConfig } from "../../edge-agent/config.ts";
import { PORTS } from "../../lib/contracts/ports.ts";

const runtime = { hostname: "box", pid: 42 };

function errorOf(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env, runtime);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error("loadConfig accepted an invalid configuration");
}

describe("agent configuration (issue 2 item 9)", () => {
  it("has the documented defaults", () => {
    const c = loadConfig({}, runtime);
    expect(c).toMatchObject({
      agentId: "box-42",
      host: "0.0.0.0",
      publicHost: "127.0.0.1",
      signalPort: PORTS.signallingUdp,
      alarmPort: PORTS.alarmUdp,
      httpPort: PORTS.deviceHttpTcp,
      mediaPorts: { min: 31000, max: 31999 },
      keepAliveSeconds: 15,
      offlineAfterMissed: 6,
      autoProvision: true,
      maxDatagramBytes: 8192,
      signalRecvBufferBytes: 4 * 1024 * 1024,
      maxOutboundBytes: 1500,
      commandResendMs: 1500,
      commandMaxSends: 3,
      commandTimeoutMs: 5000,
      lastSeenFlushSeconds: 600,
      traceMaxBytes: 10 * 1024 * 1024,
      ntpHost: "127.0.0.1",
      ntpPort: 123,
      learnDevices: true,
      logLevel: "info",
    });
    expect(c.traceFile).toBeUndefined();
    expect(c.dialectFile).toBeUndefined();
  });

  it("reads every EHOME_ variable", () => {
    const c = loadConfig(
      {
        EHOME_AGENT_ID: "edge-1",
        EHOME_HOST: "::",
        EHOME_PUBLIC_HOST: "agent.example.com",
        EHOME_SIGNAL_PORT: "17660",
        EHOME_MEDIA_PORTS: "40000 - 40010",
        EHOME_AUTO_PROVISION: "false",
        EHOME_TRACE_FILE: "/tmp/trace.jsonl",
        EHOME_DIALECT_FILE: "/etc/dialect.json",
        EHOME_LOG_LEVEL: "DEBUG",
        EHOME_SIGNAL_RECV_BUFFER_BYTES: "8388608",
      },
      runtime,
    );
    expect(c).toMatchObject({
      agentId: "edge-1",
      host: "::",
      publicHost: "agent.example.com",
      ntpHost: "agent.example.com",
      signalPort: 17660,
      mediaPorts: { min: 40000, max: 40010 },
      autoProvision: false,
      traceFile: "/tmp/trace.jsonl",
      dialectFile: "/etc/dialect.json",
      logLevel: "debug",
      signalRecvBufferBytes: 8 * 1024 * 1024,
    });
  });

  it.each([
    ["EHOME_SIGNAL_PORT", "seventy"],
    ["EHOME_SIGNAL_PORT", "70000"],
    ["EHOME_KEEPALIVE_SECONDS", "0"],
    ["EHOME_OFFLINE_AFTER_MISSED", "-1"],
    ["EHOME_AUTO_PROVISION", "maybe"],
    ["EHOME_MEDIA_PORTS", "32000-31000"],
    ["EHOME_MEDIA_PORTS", "31000"],
    ["EHOME_PUBLIC_HOST", "http://x/"],
    ["EHOME_LOG_LEVEL", "loud"],
    ["EHOME_MAX_DATAGRAM_BYTES", "100000"],
    ["EHOME_SIGNAL_RECV_BUFFER_BYTES", "1024"],
    ["EHOME_COMMAND_MAX_SENDS", "0"],
    ["EHOME_AGENT_ID", "has spaces"],
    ["EHOME_TRACE_MAX_BYTES", "10"],
  ])("an invalid %s (%s) stops start-up with a message naming it", (name, value) => {
    const err = errorOf({ [name]: value });
    expect(err.variable).toBe(name);
    expect(err.message.startsWith(`${name}: `)).toBe(true);
    expect(err.code).toBe("CONFIG_INVALID");
  });

  it("public address discovery: off by default, ecs on request, anything else refused", () => {
    expect(loadConfig({}, runtime)).toMatchObject({
      publicHostDiscovery: "off",
      publicHostDiscoverySeconds: 30,
    });
    expect(
      loadConfig(
        { EHOME_PUBLIC_HOST_DISCOVERY: "ECS", EHOME_PUBLIC_HOST_DISCOVERY_SECONDS: "5" },
        runtime,
      ),
    ).toMatchObject({ publicHostDiscovery: "ecs", publicHostDiscoverySeconds: 5 });
    expect(errorOf({ EHOME_PUBLIC_HOST_DISCOVERY: "ec2" }).variable).toBe(
      "EHOME_PUBLIC_HOST_DISCOVERY",
    );
    expect(errorOf({ EHOME_PUBLIC_HOST_DISCOVERY_SECONDS: "0" }).variable).toBe(
      "EHOME_PUBLIC_HOST_DISCOVERY_SECONDS",
    );
  });

  it("a timeout shorter than the resend interval is refused", () => {
    const err = errorOf({ EHOME_COMMAND_RESEND_MS: "3000", EHOME_COMMAND_TIMEOUT_MS: "2000" });
    expect(err.variable).toBe("EHOME_COMMAND_TIMEOUT_MS");
  });

  it("docs/configuration.md lists exactly the variables loadConfig reads", async () => {
    const doc = await readFile(new URL("../../docs/configuration.md", import.meta.url), "utf8");
    const documented = [...doc.matchAll(/^\| `(EHOME_[A-Z_]+)` +\|/gm)].map((m) => m[1]);
    expect([...documented].sort()).toEqual([...CONFIG_VARIABLES].sort());
  });

  it("every variable read by config.ts is in CONFIG_VARIABLES", async () => {
    const src = await readFile(new URL("../../edge-agent/config.ts", import.meta.url), "utf8");
    const read = new Set([...src.matchAll(/"(EHOME_[A-Z_]+)"/g)].map((m) => m[1]));
    expect([...read].sort()).toEqual([...CONFIG_VARIABLES].sort());
  });
});
