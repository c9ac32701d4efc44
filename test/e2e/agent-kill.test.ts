import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { RaisedAlarm, Simulator } from "../../edge-agent/simulator/index.ts";
import {
  type AgentProcess,
  agentProcessEnv,
  freeUdpPort,
  startAgentProcess,
} from "./helpers/agent-process.ts";
import { eventually, usePlatform } from "./helpers/platform.ts";

/**
 * Issue 7 (faults): the agent SIGKILLed under load and restarted. 20 devices keepalive every
 * second and raise alarms continuously (about 100 a second, before, across and after the kill);
 * commands are in flight when it dies. Afterwards every device is back online, every command has
 * a final state, and every alarm a device raised is in the alarms table: the ones the dead agent
 * had answered come from its journal (re-sent at the next start, same agent id and spill
 * directory; the journal is written before the ALARM is answered), the ones it had not answered
 * are re-sent by their devices to the new process.
 */

const DEVICES = 20;
const DEADLINE_S = 4;
const GRACE_S = 2;

const spillDir = mkdtempSync(join(tmpdir(), "ehome-e2e-kill-"));
afterAll(() => rmSync(spillDir, { recursive: true, force: true }));

const p = usePlatform({
  agentEnv: false,
  api: { commandDeadlineSeconds: DEADLINE_S, commandGraceSeconds: GRACE_S },
});

// biome-ignore lint/suspicious/noExplicitAny: response JSON is navigated freely; assertions check it
type Json = any;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("the agent SIGKILLed under load", () => {
  const agents: AgentProcess[] = [];
  let sim: Simulator | undefined;
  afterAll(async () => {
    await sim?.close();
    for (const a of agents) await a.kill("SIGKILL");
  });

  it("every device comes back, every command ends, no alarm is lost", async () => {
    const port = await freeUdpPort();
    const env = agentProcessEnv(p().platform.env, `agent-kill-load-${process.pid}`, port, {
      EHOME_SPILL_DIR: spillDir,
    });
    agents.push(await startAgentProcess(env));
    sim = await p().simulator({
      devices: DEVICES,
      idPrefix: "kill-load-",
      agent: { host: "127.0.0.1", port },
      registerRetryMs: 300,
    });
    await sim.start();
    await sim.waitFor("all-online", 20_000);
    const devices = sim.devices;

    // Alarms round-robin, one every 10 ms, until told to stop.
    const raised: { deviceId: string; alarm: RaisedAlarm }[] = [];
    let raising = true;
    const raiser = (async () => {
      for (let i = 0; raising; i++) {
        const d = devices[i % DEVICES]!;
        // One PicID (never uploaded) makes each alarm's content unique: copies re-sent with
        // RetransFlag 1 are de-duplicated by content (ehome-2.0 §8), and two alarms of one device
        // with the same type, channel and second would otherwise count as one.
        const alarm = d.raiseAlarm({ action: "start", pictures: 1, order: "never" });
        raised.push({ deviceId: d.id, alarm });
        await sleep(10);
      }
    })();
    await sleep(1_500);

    // Commands in flight at the kill (the devices answer; the agent dies before or after).
    const commands: string[] = [];
    for (const d of devices.slice(0, 5)) {
      const res = await p().api<{ commandId: string }>("POST", `/devices/${d.id}/commands`, {
        type: "work-status",
      });
      expect(res.status).toBe(202);
      commands.push(res.body.commandId);
    }
    const killedAt = new Date().toISOString();
    expect(await agents[0]!.kill("SIGKILL")).toBe("SIGKILL");
    const raisedAtKill = raised.length;
    await sleep(500);
    agents.push(await startAgentProcess(env));
    await sleep(1_500);
    raising = false;
    await raiser;
    expect(raisedAtKill).toBeGreaterThan(50);

    // All devices online again with the new process.
    await eventually(
      async () => {
        const res = await p().api<Json>("GET", "/devices?status=online&limit=100");
        const mine = (res.body.items as Json[]).filter((d) => d.deviceId.startsWith("kill-load-"));
        return mine.length === DEVICES && mine.every((d) => (d.registeredAt ?? "") > killedAt)
          ? true
          : undefined;
      },
      { timeoutMs: 20_000, intervalMs: 200 },
    );

    // Every command ends: succeeded, or timed out on read after deadline + grace.
    for (const id of commands) {
      const state = await eventually(
        async () => {
          const res = await p().api<{ state: string }>("GET", `/commands/${id}`);
          return ["pending", "sent"].includes(res.body.state) ? undefined : res.body.state;
        },
        { timeoutMs: (DEADLINE_S + GRACE_S) * 1000 + 10_000, intervalMs: 250 },
      );
      expect(["succeeded", "timed-out"]).toContain(state);
    }

    // Every alarm raised (before, at and after the kill) is stored, once per device sequence.
    const want = new Map<string, Set<number>>();
    for (const r of raised) {
      const set = want.get(r.deviceId) ?? new Set<number>();
      set.add(r.alarm.sequence);
      want.set(r.deviceId, set);
    }
    let missing: string[] = [];
    await eventually(
      async () => {
        missing = [];
        for (const [deviceId, sequences] of want) {
          const seen = new Set<number>();
          let cursor: string | undefined;
          do {
            const q = `limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`;
            const res = await p().api<Json>("GET", `/devices/${deviceId}/alarms?${q}`);
            for (const a of res.body.items as Json[]) seen.add(a.sequence);
            cursor = res.body.nextCursor ?? undefined;
          } while (cursor);
          for (const s of sequences) if (!seen.has(s)) missing.push(`${deviceId}#${s}`);
        }
        return missing.length === 0 ? true : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 500 },
    ).catch(() => undefined);
    expect(missing).toEqual([]);
    expect(agents[1]!.stderr()).not.toContain('"level":"error"');
    expect(await agents[1]!.kill("SIGTERM")).toBe(0);
  }, 90_000);
});
