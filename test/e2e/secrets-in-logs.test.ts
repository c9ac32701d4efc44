import { randomBytes } from "node:crypto";
import { afterAll, describe, expect, it, vi } from "vitest";
import { createLocalPlatform, type LocalPlatform } from "../../bin/local-platform.ts";
import { loadConfig } from "../../edge-agent/config.ts";
import { createLogger } from "../../edge-agent/log.ts";
import { createSimulator, type Simulator } from "../../edge-agent/simulator/index.ts";
import { eventually, uniquePrefix } from "../helpers/local-backends.ts";

/**
 * docs/SECURITY.md §3.5: the firmware token key, the API token and device passwords never appear
 * in a log line. The whole local platform runs at debug level (agent, api, registry, alarms,
 * upgrades, backends) with planted values while devices register (one with a wrong password), the
 * API is called with the right and a wrong token, a password is set and a command runs; every line
 * written to stdout and stderr and every agent log line is searched for the planted values.
 */

const KEY = randomBytes(32).toString("hex");
const TOKEN = `planted-api-${randomBytes(8).toString("hex")}`;
const PASSWORD = `planted-pw-${randomBytes(6).toString("hex")}`;
const WRONG = `wrong-pw-${randomBytes(6).toString("hex")}`;

const lines: string[] = [];
const capture = (chunk: unknown) => {
  lines.push(typeof chunk === "string" ? chunk : Buffer.from(chunk as Uint8Array).toString());
  return true;
};
let platform: LocalPlatform | undefined;
const sims: Simulator[] = [];

afterAll(async () => {
  await Promise.all(sims.map((s) => s.close()));
  await platform?.close("tests done");
  vi.restoreAllMocks();
});

describe("secrets in logs", () => {
  it("no log line of the platform holds the firmware key, the API token or a device password", async () => {
    vi.spyOn(process.stdout, "write").mockImplementation(capture);
    vi.spyOn(process.stderr, "write").mockImplementation(capture);
    const log = createLogger({ level: "debug", write: (l) => lines.push(l) });
    const agentConfig = loadConfig(
      {
        EHOME_AGENT_ID: uniquePrefix("agent"),
        EHOME_HOST: "127.0.0.1",
        EHOME_SIGNAL_PORT: "0",
        EHOME_ALARM_PORT: "0",
        EHOME_HTTP_PORT: "0",
        EHOME_LOG_LEVEL: "debug",
        EHOME_AUTO_PROVISION: "false",
        EHOME_LEARN_DEVICES: "false",
      },
      { hostname: "e2e", pid: process.pid },
    );
    platform = createLocalPlatform(
      {
        backends: { prefix: uniquePrefix("e2e") },
        api: { port: 0, host: "127.0.0.1", token: TOKEN },
        agent: agentConfig,
        cloud: { events: { lingerMs: 20 } },
        env: { FIRMWARE_TOKEN_KEY: KEY, AWS_LAMBDA_LOG_LEVEL: "debug" },
        agentSweepIntervalMs: 200,
      },
      { log },
    );
    await platform.start();
    const url = platform.api!.url;
    const api = async (method: string, path: string, body?: unknown, token = TOKEN) => {
      const res = await fetch(`${url}${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    };

    const address = platform.agent!.signalAddress();
    const agent = { host: address.host, port: address.port };
    expect((await api("PUT", "/devices/sec-ok-00001", { allowed: true })).status).toBeLessThan(300);
    expect(
      (await api("PUT", "/devices/sec-pw-00001", { allowed: true, password: PASSWORD })).status,
    ).toBeLessThan(300);
    const ok = await createSimulator({
      agent,
      devices: 1,
      idPrefix: "sec-ok-",
      registerSpreadMs: 0,
    });
    const bad = await createSimulator({
      agent,
      devices: 1,
      idPrefix: "sec-pw-",
      password: WRONG,
      registerSpreadMs: 0,
      registerRetryMs: 200,
    });
    sims.push(ok, bad);
    let refused = 0;
    bad.on("rejected", (e) => {
      if (e.status === 401) refused++;
    });
    await ok.start();
    await bad.start();
    await ok.waitFor("all-online", 10_000);
    await eventually(async () => (refused > 0 ? true : undefined));
    expect((await api("GET", "/devices", undefined, "not-the-token")).status).toBe(401);
    await eventually(async () =>
      (await api("GET", "/devices/sec-ok-00001")).body.status === "online" ? true : undefined,
    );
    const command = await api("POST", "/devices/sec-ok-00001/commands?wait=5", {
      type: "work-status",
    });
    expect(command.status).toBe(200);
    await platform.close("test done");
    platform = undefined;
    vi.restoreAllMocks();

    const all = lines.join("\n");
    expect(lines.length).toBeGreaterThan(20); // debug logs of every part were captured
    expect(all).toContain("password mismatch");
    for (const secret of [KEY, TOKEN, PASSWORD, WRONG]) expect(all).not.toContain(secret);
  });
});
