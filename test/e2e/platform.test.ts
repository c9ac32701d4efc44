import { describe, expect, it } from "vitest";
import { COMMANDS } from "../../edge-agent/signalling/catalogue.ts";
import type { Simulator } from "../../edge-agent/simulator/index.ts";
import { eventually, usePlatform } from "./helpers/platform.ts";

/**
 * The platform end to end, as `npm start` composes it (bin/local-platform.ts): DynamoDB Local and
 * fauxqs, the registry and command-results functions behind the local SQS pollers, the api
 * function behind the bearer-token server, a real agent on loopback UDP with its cloud adapters,
 * and simulated devices. Auto-provisioning is off: devices are provisioned through the API first.
 *
 * Timers are shortened through configuration: keepalive 1 s, offline after 3 missed (3 s).
 */

const KEEPALIVE_S = 1;
const MISSED = 3;
const OFFLINE_AFTER_MS = KEEPALIVE_S * MISSED * 1000;
const CHANNELS = 4;

const p = usePlatform({
  agentEnv: {
    EHOME_AUTO_PROVISION: "false",
    EHOME_KEEPALIVE_SECONDS: String(KEEPALIVE_S),
    EHOME_OFFLINE_AFTER_MISSED: String(MISSED),
    EHOME_COMMAND_RESEND_MS: "500",
    EHOME_COMMAND_TIMEOUT_MS: "3000",
  },
});

interface DeviceBody {
  deviceId: string;
  status: string;
  offlineReason?: string;
  agentId?: string;
  serialNumber?: string;
  channelCount?: number;
  channels?: { channel: number }[];
}
interface PresenceBody {
  items: { at: string; type: string; status: string; reason?: string; version: number }[];
}
interface CommandBody {
  commandId: string;
  state: string;
  agentId?: string;
}
interface ErrorBody {
  code: string;
  message: string;
  details?: { command?: CommandBody };
}

async function provision(ids: readonly string[], allowed = true): Promise<void> {
  for (const id of ids) {
    const res = await p().api("PUT", `/devices/${id}`, { allowed });
    expect(res.status).toBeLessThan(300);
  }
}

async function device(id: string): Promise<DeviceBody | undefined> {
  const res = await p().api<DeviceBody>("GET", `/devices/${id}`);
  return res.status === 200 ? res.body : undefined;
}

/** Presence history, oldest first (the API lists newest first). */
async function presence(id: string): Promise<PresenceBody["items"]> {
  const res = await p().api<PresenceBody>("GET", `/devices/${id}/presence?limit=100`);
  expect(res.status).toBe(200);
  return [...res.body.items].reverse();
}

const transitions = (items: PresenceBody["items"]) =>
  items.map((i) => (i.reason ? `${i.type}:${i.reason}` : i.type));

/** Resolves when every device of `sim` has re-registered `times` more times than now. */
function registrations(sim: Simulator, id: string): () => number {
  let n = 0;
  sim.on("registered", ({ device }) => {
    if (device.id === id) n++;
  });
  return () => n;
}

describe("the platform end to end (embedded backends, simulator devices)", () => {
  let sim: Simulator;
  let ids: string[];

  it("devices provisioned through the API register and are listed online with serial and channels", async () => {
    sim = await p().simulator({
      devices: 3,
      idPrefix: "e2e-nvr-",
      channels: CHANNELS,
      // Longer than the keepalive timeout: the reboot below is seen as an outage.
      rebootMs: OFFLINE_AFTER_MS + 2_000,
    });
    ids = sim.devices.map((d) => d.id);
    await provision(ids);
    await sim.start();
    await sim.waitFor("all-online", 10_000);

    // REGISTER → agent → SQS → registry poller → DynamoDB → API; the learn step (GetServerInfo,
    // GETDEVICEWORKSTATUS) adds serial and channels through a device-info event.
    const listed = await eventually(async () => {
      const res = await p().api<{ items: DeviceBody[] }>("GET", "/devices?status=online");
      const mine = res.body.items.filter((d) => ids.includes(d.deviceId));
      return mine.length === ids.length && mine.every((d) => d.channels?.length === CHANNELS)
        ? mine
        : undefined;
    });
    for (const d of listed) {
      const profile = sim.device(d.deviceId).profile;
      expect(d).toMatchObject({
        status: "online",
        agentId: p().agentId,
        serialNumber: profile.serialNumber,
        channelCount: CHANNELS,
      });
      expect(d.channels?.map((c) => c.channel)).toEqual([1, 2, 3, 4]);
    }
  });

  it("reboot with ?wait=10 answers 200 succeeded; the device re-registers and presence shows offline (keepalive-timeout) then online", async () => {
    const id = ids[0]!;
    const registered = registrations(sim, id);
    const res = await p().api<CommandBody>("POST", `/devices/${id}/commands?wait=10`, {
      type: "reboot",
    });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ state: "succeeded", agentId: p().agentId });
    expect(sim.device(id).commands.map((c) => c.commandId)).toContain("reboot");
    // The stored command agrees.
    const stored = await p().api<CommandBody>("GET", `/commands/${res.body.commandId}`);
    expect(stored.body.state).toBe("succeeded");

    // Silence (rebootMs), keepalive timeout, then REGISTER again.
    await eventually(async () => (registered() >= 1 ? true : undefined), { timeoutMs: 15_000 });
    const history = await eventually(async () => {
      const items = await presence(id);
      const t = transitions(items);
      return t.at(-1) === "online" && t.includes("offline:keepalive-timeout") ? t : undefined;
    });
    expect(history).toEqual([
      "registered",
      "online",
      "offline:keepalive-timeout",
      "registered",
      "online",
    ]);
    expect(await device(id)).toMatchObject({ status: "online" });
  }, 40_000);

  it("a reboot shorter than the keepalive timeout leaves a second `registered` entry and no offline one", async () => {
    // What the platform guarantees for a quick reboot: the device's new REGISTER is recorded
    // (presence type `registered`) and it stays online; the silence was too short to be an
    // outage, and the agent reports none.
    const quick = await p().simulator({ devices: 1, idPrefix: "e2e-quick-", rebootMs: 300 });
    const id = quick.devices[0]!.id;
    await provision([id]);
    await quick.start();
    await quick.waitFor("all-online", 10_000);
    await eventually(async () => ((await presence(id)).length >= 2 ? true : undefined));
    const registered = registrations(quick, id);

    const res = await p().api<CommandBody>("POST", `/devices/${id}/commands?wait=10`, {
      type: "reboot",
    });
    expect(res.status).toBe(200);
    await eventually(async () => (registered() >= 1 ? true : undefined), { timeoutMs: 10_000 });
    const history = await eventually(async () => {
      const t = transitions(await presence(id));
      return t.length >= 3 ? t : undefined;
    });
    expect(history).toEqual(["registered", "online", "registered"]);
    expect(await device(id)).toMatchObject({ status: "online" });
  }, 30_000);

  it("a command to an offline device is refused with 409 DEVICE_OFFLINE and recorded as device-offline", async () => {
    const id = ids[1]!;
    sim.device(id).goSilent();
    await eventually(async () => ((await device(id))?.status === "offline" ? true : undefined), {
      timeoutMs: OFFLINE_AFTER_MS + 10_000,
    });
    expect(await device(id)).toMatchObject({ offlineReason: "keepalive-timeout" });

    const res = await p().api<ErrorBody>("POST", `/devices/${id}/commands?wait=5`, {
      type: "reboot",
    });
    expect(res.status).toBe(409);
    expect(res.body.code).toBe("DEVICE_OFFLINE");
    const commandId = res.body.details?.command?.commandId;
    expect(commandId).toBeDefined();
    const stored = await p().api<CommandBody>("GET", `/commands/${commandId}`);
    expect(stored.body.state).toBe("device-offline");
    // Without ?wait the answer is the same: it never hangs.
    const noWait = await p().api<ErrorBody>("POST", `/devices/${id}/commands`, {
      type: "work-status",
    });
    expect(noWait.status).toBe(409);
    sim.device(id).resume();
  }, 30_000);

  it("refuses requests without the bearer token (401); /healthz needs none", async () => {
    const none = await p().api<ErrorBody>("GET", "/devices", undefined, null);
    expect(none.status).toBe(401);
    expect(none.body.code).toBe("UNAUTHORIZED");
    const wrong = await p().api<ErrorBody>(
      "POST",
      `/devices/${ids[0]}/commands`,
      {
        type: "reboot",
      },
      "not-the-token",
    );
    expect(wrong.status).toBe(401);
    // Nothing reached the device: the command was refused before the API ran.
    expect(sim.device(ids[0]!).commands.filter((c) => c.commandId === "reboot")).toHaveLength(1);
    const health = await p().api("GET", "/healthz", undefined, null);
    expect(health.status).toBe(200);
  });

  it("a device never provisioned is refused at REGISTER (403)", async () => {
    const stranger = await p().simulator({ devices: 1, idPrefix: "e2e-stranger-" });
    const refusals: number[] = [];
    stranger.on("rejected", ({ whichCommand, status }) => {
      if (whichCommand === COMMANDS.register.command) refusals.push(status);
    });
    await stranger.start();
    await eventually(async () => (refusals.length > 0 ? true : undefined));
    expect(refusals[0]).toBe(403);
    expect(p().agent.sessions.get(stranger.devices[0]!.id)).toBeUndefined();
  });

  it("deprovisioned (PUT allowed:false) or deleted through the API, a device is dropped and refused at its next REGISTER", async () => {
    const [, , last] = ids;
    const other = await p().simulator({ devices: 1, idPrefix: "e2e-deleted-" });
    const deleted = other.devices[0]!.id;
    await provision([deleted]);
    await other.start();
    await other.waitFor("all-online", 10_000);
    await eventually(async () => ((await device(last!))?.status === "online" ? true : undefined));
    await eventually(async () => ((await device(deleted))?.status === "online" ? true : undefined));

    const refused = new Map<string, number>();
    const onRejected = ({
      device: d,
      whichCommand,
      status,
    }: {
      device: { id: string };
      whichCommand: string;
      status: number;
    }) => {
      if (whichCommand === COMMANDS.register.command) refused.set(d.id, status);
    };
    sim.on("rejected", onRejected);
    other.on("rejected", onRejected);

    expect((await p().api("PUT", `/devices/${last}`, { allowed: false })).status).toBe(200);
    expect((await p().api("DELETE", `/devices/${deleted}`)).status).toBe(204);

    // provisioning-changed → the agent drops the sessions now; the devices' next KEEPALIVE gets
    // 403, they REGISTER again and are refused.
    await eventually(
      async () => (refused.get(last!) === 403 && refused.get(deleted) === 403 ? true : undefined),
      { timeoutMs: 15_000 },
    );
    expect(p().agent.sessions.get(last!)).toBeUndefined();
    expect(p().agent.sessions.get(deleted)).toBeUndefined();
    const gone = await eventually(async () => {
      const d = await device(last!);
      return d?.status === "offline" ? d : undefined;
    });
    expect(gone.offlineReason).toBe("deprovisioned");
    expect(transitions(await presence(last!)).at(-1)).toBe("offline:deprovisioned");
    // A deleted device stays deleted: its own late offline event does not bring the record back.
    expect((await p().api("GET", `/devices/${deleted}`)).status).toBe(404);
  }, 40_000);
});
