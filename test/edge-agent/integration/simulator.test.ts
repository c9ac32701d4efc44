import { afterEach, describe, expect, it } from "vitest";
import { createEdgeAgent, type EdgeAgent } from "../../../edge-agent/agent.ts";
import { loadConfig } from "../../../edge-agent/config.ts";
import { createUdpTransport } from "../../../edge-agent/signalling/server.ts";
import {
  createSimulator,
  type Simulator,
  type SimulatorOptions,
} from "../../../edge-agent/simulator/index.ts";
import { CommandResult } from "../../../lib/contracts/commands.ts";
import { DeviceEvent } from "../../../lib/contracts/events.ts";

/**
 * The agent and the device simulator over real loopback UDP (issue 2, Show): 1,000 devices register
 * and stay online; killing the simulator marks them offline with keepalive-timeout (shortened
 * timers); a 403 → re-register cycle; every command of item 6 round-trips; 30 % loss still
 * completes commands via resend.
 */

let agent: EdgeAgent | undefined;
let sim: Simulator | undefined;
afterEach(async () => {
  await sim?.close();
  await agent?.close();
  sim = undefined;
  agent = undefined;
});

async function startAgent(env: Record<string, string>) {
  const config = loadConfig({
    EHOME_HOST: "127.0.0.1",
    EHOME_SIGNAL_PORT: "0",
    EHOME_AGENT_ID: "integration",
    EHOME_KEEPALIVE_SECONDS: "1",
    EHOME_OFFLINE_AFTER_MISSED: "3",
    ...env,
  });
  const events: DeviceEvent[] = [];
  const a = createEdgeAgent(config, {
    transport: createUdpTransport({ host: config.host, port: config.signalPort }),
    events: { emit: (e) => void events.push(DeviceEvent.parse(e)) },
  });
  agent = a;
  await a.start();
  return { agent: a, events, address: a.signalAddress() };
}

async function startSim(address: { host: string; port: number }, o: Partial<SimulatorOptions>) {
  const s = await createSimulator(
    { agent: address, devices: 1, seed: 7, ...o },
    { onError: () => {} },
  );
  sim = s;
  await s.start();
  return s;
}

async function until(pred: () => boolean, ms: number, what: string) {
  const start = Date.now();
  while (!pred()) {
    if (Date.now() - start > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const command = (deviceId: string, type: string, params: Record<string, unknown> = {}) => ({
  commandId: `${type}-${deviceId}`,
  deviceId,
  type: type as "reboot",
  params,
  deadline: Date.now() + 60_000,
});

describe("agent × simulator over loopback UDP", () => {
  it("1,000 devices register, are learned and stay online; killing the simulator marks them offline (keepalive-timeout)", async () => {
    const { agent, events, address } = await startAgent({ EHOME_LEARN_DEVICES: "true" });
    const s = await startSim(address, { devices: 1000, registerSpreadMs: 500, encoding: "mixed" });
    await s.waitFor("all-online", 20_000);
    await until(() => agent.sessions.size === 1000, 5000, "1,000 sessions");
    await until(
      () => events.filter((e) => e.type === "device-info").length === 1000,
      15_000,
      "device-info",
    );

    // Three keepalive periods more than the offline timeout: nobody drops.
    await sleep(3500);
    expect(agent.sessions.size).toBe(1000);
    expect(events.filter((e) => e.type === "offline")).toHaveLength(0);
    expect(events.filter((e) => e.type === "online")).toHaveLength(1000);
    expect(agent.metrics().keepalives).toBeGreaterThan(2000);
    const info = events.find((e) => e.type === "device-info" && e.deviceId === s.devices[0]!.id);
    expect(info).toMatchObject({
      channelCount: 1,
      channels: [expect.objectContaining({ channel: 1 })],
    });

    await s.close();
    sim = undefined;
    await until(() => agent.sessions.size === 0, 8000, "every session to expire");
    const offline = events.filter((e) => e.type === "offline");
    expect(offline).toHaveLength(1000);
    expect(new Set(offline.map((e) => e.type === "offline" && e.reason))).toEqual(
      new Set(["keepalive-timeout"]),
    );
  });

  it("403 → re-register: a device whose session is gone gets 403 on its next keepalive and registers again", async () => {
    const { agent, events, address } = await startAgent({ EHOME_LEARN_DEVICES: "false" });
    const s = await startSim(address, { devices: 3, registerSpreadMs: 0 });
    await s.waitFor("all-online", 5000);
    const victim = s.devices[1]!;
    const rejected: number[] = [];
    s.on("rejected", (e) => {
      if (e.device.id === victim.id) rejected.push(e.status);
    });
    expect(agent.dropDevice(victim.id, "re-registered-elsewhere")).toBe(true);
    await until(
      () => events.filter((e) => e.type === "online" && e.deviceId === victim.id).length === 2,
      5000,
      "the device to register again",
    );
    expect(rejected).toContain(403);
    expect(agent.sessions.get(victim.id)).toMatchObject({ port: victim.localAddress.port });
    expect(agent.metrics().keepalives_unknown).toBeGreaterThanOrEqual(1);
  });

  it("every command of item 6 round-trips: reboot, get-config, set-config, work-status, ptz, time-sync", async () => {
    const { agent, events, address } = await startAgent({ EHOME_LEARN_DEVICES: "false" });
    const s = await startSim(address, { devices: 1, ptz: true, rebootMs: 200, channels: 4 });
    await s.waitFor("all-online", 5000);
    const dev = s.devices[0]!;
    const id = dev.id;
    const run = async (type: string, params: Record<string, unknown> = {}) =>
      CommandResult.parse(await agent.commands.execute(command(id, type, params)));

    const ws = await run("work-status");
    expect(ws.state).toBe("succeeded");
    expect((ws.result as { channels: unknown[] }).channels).toHaveLength(4);

    const si = await run("get-config", { configCmd: "GetServerInfo" });
    expect(si.state).toBe("succeeded");
    expect(JSON.stringify(si.result)).toContain(dev.profile.serialNumber);

    const body = { PICPARA: { ChannelName: "Gate 1" } };
    expect(
      (await run("set-config", { configCmd: "SetPicPara", configParam1: 1, config: body })).state,
    ).toBe("succeeded");
    expect(dev.storedConfig("SetPicPara", 1)).toBeDefined();

    for (const action of ["start", "stop"]) {
      const ptz = await run("ptz", { channel: 1, command: "LEFT", action });
      expect(ptz.state).toBe("succeeded");
    }
    expect(dev.commands.filter((c) => c.commandId === "ptzControl")).toHaveLength(6); // 3 + 3 copies

    const ts = await run("time-sync", { time: "2030-01-02 03:04:05", timeZone: "+08:00" });
    expect(ts.state).toBe("succeeded");
    expect(dev.deviceTime().startsWith("2030-01-02 03:04")).toBe(true);

    expect((await run("reboot")).state).toBe("succeeded");
    await until(
      () => events.filter((e) => e.type === "registered" && e.deviceId === id).length === 2,
      5000,
      "the rebooted device to register again",
    );
  });

  it("with 30 % loss each way, commands still complete through resends", async () => {
    const { agent, address } = await startAgent({
      EHOME_LEARN_DEVICES: "false",
      EHOME_OFFLINE_AFTER_MISSED: "10",
      EHOME_COMMAND_RESEND_MS: "150",
      EHOME_COMMAND_MAX_SENDS: "10",
      EHOME_COMMAND_TIMEOUT_MS: "3000",
    });
    const s = await startSim(address, {
      devices: 20,
      loss: 0.3,
      seed: 42,
      registerSpreadMs: 200,
      registerRetryMs: 200,
      keepaliveMissLimit: 0,
    });
    await s.waitFor("all-online", 10_000);
    await until(() => agent.sessions.size === 20, 5000, "20 sessions");
    const results = await Promise.all(
      s.devices.map((d) => agent.commands.execute(command(d.id, "work-status"))),
    );
    expect(results.map((r) => r.state)).toEqual(results.map(() => "succeeded"));
    expect(agent.metrics().command_resends).toBeGreaterThan(0);
    // Devices acted on each request once, whatever number of copies reached them.
    for (const d of s.devices) {
      const acted = d.commands.filter((c) => c.commandId === "getWorkStatus" && !c.duplicate);
      expect(acted).toHaveLength(1);
    }
  });
});
