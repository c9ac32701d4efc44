import { describe, expect, it } from "vitest";
import type { Simulator } from "../../edge-agent/simulator/index.ts";
import { eventually, usePlatform } from "./helpers/platform.ts";

/**
 * Two agents against the same backends (issue 7, multi-agent), as `npm start` composes them
 * (bin/local-platform.ts `extraAgents`): devices split between the agents, commands routed to the
 * agent holding each device's session, a device that moves to the other agent followed there, and
 * an agent that dies without a clean shutdown (`kill()`: no offline events, heartbeat record left
 * behind) has its devices marked offline `agent-lost` by the registry's sweep, except the device
 * that had moved away.
 *
 * Shortened through configuration: keepalive 1 s, offline after 3 missed; heartbeats every 300 ms;
 * an agent is lost 2 s after its last heartbeat; the sweep runs every 250 ms.
 */

const LOST_AFTER_S = 2;

const p = usePlatform({
  agentEnv: {
    EHOME_KEEPALIVE_SECONDS: "1",
    EHOME_OFFLINE_AFTER_MISSED: "3",
    EHOME_COMMAND_RESEND_MS: "500",
    EHOME_COMMAND_TIMEOUT_MS: "3000",
    EHOME_LEARN_DEVICES: "false",
  },
  extraAgentEnvs: [{}],
  cloud: { events: { lingerMs: 20 }, heartbeat: { intervalMs: 300, ttlSeconds: 2 } },
  env: { AGENT_LOST_AFTER_SECONDS: String(LOST_AFTER_S), AWS_LAMBDA_LOG_LEVEL: "silent" },
  agentSweepIntervalMs: 250,
});

interface DeviceBody {
  deviceId: string;
  status: string;
  offlineReason?: string;
  agentId?: string;
}
interface CommandBody {
  commandId: string;
  state: string;
  agentId?: string;
}
interface PresenceBody {
  items: { type: string; reason?: string; agentId?: string }[];
}

async function device(id: string): Promise<DeviceBody | undefined> {
  const res = await p().api<DeviceBody>("GET", `/devices/${id}`);
  return res.status === 200 ? res.body : undefined;
}

/** Until the device is listed with these fields. */
const until = (id: string, fields: Partial<DeviceBody>, timeoutMs = 10_000) =>
  eventually(
    async () => {
      const d = await device(id);
      return d && Object.entries(fields).every(([k, v]) => d[k as keyof DeviceBody] === v)
        ? d
        : undefined;
    },
    { timeoutMs },
  );

async function command(id: string): Promise<CommandBody> {
  const res = await p().api<CommandBody>("POST", `/devices/${id}/commands?wait=10`, {
    type: "work-status",
  });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body;
}

describe("two agents against the same backends", () => {
  let simA: Simulator;
  let simB: Simulator;
  const agentA = () => p().agents[0]!;
  const agentB = () => p().agents[1]!;
  const addressOf = (i: 0 | 1) => {
    const a = p().agents[i]!.agent.signalAddress();
    return { host: a.host, port: a.port };
  };

  it("splits the devices between the agents; a command to each reaches the agent holding it", async () => {
    expect(p().agents.map((a) => a.agentId)).toEqual([p().agentId, `${p().agentId}-2`]);
    simA = await p().simulator({ devices: 3, idPrefix: "ma-a-", agent: addressOf(0) });
    simB = await p().simulator({ devices: 3, idPrefix: "ma-b-", agent: addressOf(1) });
    await Promise.all([simA.start(), simB.start()]);
    await Promise.all([simA.waitFor("all-online", 10_000), simB.waitFor("all-online", 10_000)]);
    for (const d of simA.devices)
      await until(d.id, { status: "online", agentId: agentA().agentId });
    for (const d of simB.devices)
      await until(d.id, { status: "online", agentId: agentB().agentId });
    expect(agentA().agent.sessions.size).toBe(3);
    expect(agentB().agent.sessions.size).toBe(3);

    const [onA, onB] = [simA.devices[0]!.id, simB.devices[0]!.id];
    expect(await command(onA)).toMatchObject({ state: "succeeded", agentId: agentA().agentId });
    expect(await command(onB)).toMatchObject({ state: "succeeded", agentId: agentB().agentId });
    expect(simA.device(onA).commands.length).toBeGreaterThan(0);
    expect(simB.device(onB).commands.length).toBeGreaterThan(0);
  });

  it("a device that re-registers on the other agent is routed there; the old agent's timeout does not take it offline", async () => {
    const moved = simA.devices[0]!;
    // The device stops talking to agent A and registers on agent B (same DeviceID).
    moved.goSilent();
    const mover = await p().simulator({
      devices: 1,
      idPrefix: "ma-a-",
      agent: addressOf(1),
    });
    expect(mover.devices[0]!.id).toBe(moved.id);
    await mover.start();
    await mover.waitFor("all-online", 10_000);
    await until(moved.id, { status: "online", agentId: agentB().agentId });

    const before = mover.devices[0]!.commands.length;
    expect(await command(moved.id)).toMatchObject({
      state: "succeeded",
      agentId: agentB().agentId,
    });
    expect(mover.devices[0]!.commands.length).toBeGreaterThan(before);

    // Agent A still holds a session until 3 missed keepalives: its keepalive-timeout offline
    // (and its last-seen) must not override the registration on B.
    await eventually(async () => (agentA().agent.sessions.get(moved.id) ? undefined : true), {
      timeoutMs: 10_000,
    });
    await new Promise((resolve) => setTimeout(resolve, 500)); // the event reaches the registry
    expect(await device(moved.id)).toMatchObject({ status: "online", agentId: agentB().agentId });
  });

  it("an agent that dies has its devices marked offline agent-lost; the moved device stays online", async () => {
    const moved = simA.devices[0]!.id;
    const left = simA.devices.slice(1).map((d) => d.id);
    const killedAt = Date.now();
    await agentA().kill();

    for (const id of left) {
      await until(id, { status: "offline", offlineReason: "agent-lost" }, 15_000);
    }
    // Not before the deadline: the agent's last heartbeat was at most one interval before the kill.
    expect(Date.now() - killedAt).toBeGreaterThanOrEqual((LOST_AFTER_S - 0.3) * 1000);
    const history = await p().api<PresenceBody>("GET", `/devices/${left[0]}/presence?limit=10`);
    expect(history.body.items[0]).toMatchObject({
      type: "offline",
      reason: "agent-lost",
      agentId: agentA().agentId,
    });
    // Agent B's devices, and the one that moved to it, are untouched.
    expect(await device(moved)).toMatchObject({ status: "online", agentId: agentB().agentId });
    for (const d of simB.devices) {
      expect(await device(d.id)).toMatchObject({ status: "online", agentId: agentB().agentId });
    }
    // A command to a device of the dead agent is refused at once, not left hanging.
    const res = await p().api<{ code: string }>("POST", `/devices/${left[0]}/commands`, {
      type: "work-status",
    });
    expect(res.status).toBe(409);
    expect(res.body.code).toBe("DEVICE_OFFLINE");
  });
});
