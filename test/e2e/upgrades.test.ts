import { createHash, randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { eventually, usePlatform } from "./helpers/platform.ts";

/**
 * An upgrade campaign end to end on the `npm start` platform: firmware uploaded through the
 * presigned URL and verified, a campaign over 50 devices of which some fail (bad checksum with
 * UPGRADESTATUS FAILED, UPDATE refused) and some never come online; the engine ticks every
 * 300 ms, simulators download the image from the agent's /fw/ route for real, flash, and
 * re-register with the new version. `EHOME_UPGRADE_E2E_SCALE=10` multiplies every group, rate and
 * concurrency (500 devices: the issue's run; a bench, not part of the default suite).
 */

const SCALE = Math.max(1, Number(process.env.EHOME_UPGRADE_E2E_SCALE ?? "1") || 1);

const p = usePlatform({
  agentEnv: { EHOME_PUBLIC_HOST: "127.0.0.1", EHOME_KEEPALIVE_SECONDS: "1" },
  upgradesTickMs: 300,
});

const OLD = "V5.5.0 build 180101";
const NEW = "V5.6.0 build 260101";

// biome-ignore lint/suspicious/noExplicitAny: API JSON
type Json = any;

describe("upgrade campaign with the simulator", () => {
  it("reaches the right final counts; succeeded devices list the new version; bytes served = image size", {
    timeout: 90_000 * SCALE,
  }, async () => {
    const image = randomBytes(48_000);
    const created = await p().api<Json>("POST", "/firmware", {
      version: NEW,
      models: [],
      sha256: createHash("sha256").update(image).digest("hex"),
      size: image.length,
    });
    expect(created.status).toBe(201);
    const put = await fetch(created.body.upload.url, { method: "PUT", body: image });
    expect(put.status).toBe(200);
    const firmwareId = created.body.firmware.firmwareId;
    expect((await p().api<Json>("POST", `/firmware/${firmwareId}/complete`)).body.state).toBe(
      "available",
    );

    const common = { upgradeDownload: true, upgradeMs: 200, firmwareVersion: OLD };
    const good = await p().simulator({ ...common, devices: 40 * SCALE, idPrefix: "ok-" });
    const badSum = await p().simulator({
      ...common,
      devices: 4 * SCALE,
      idPrefix: "sum-",
      upgradeFault: "bad-checksum",
      upgradeStatus: true,
    });
    const refuse = await p().simulator({
      ...common,
      devices: 3 * SCALE,
      idPrefix: "ref-",
      upgradeFault: "refuse",
    });
    const sims = [good, badSum, refuse];
    await Promise.all(sims.map((s) => s.start()));
    await Promise.all(sims.map((s) => s.waitFor("all-online", 15_000)));
    const offline = Array.from({ length: 3 * SCALE }, (_, i) => `off-${i + 1}`);
    for (const id of offline) {
      expect((await p().api("PUT", `/devices/${id}`, { allowed: true })).status).toBeLessThan(300);
    }
    const onlineIds = sims.flatMap((s) => s.devices.map((d) => d.id));
    // The registry applies the REGISTERs asynchronously: wait until every device is listed online.
    await eventually(
      async () => {
        const states = await Promise.all(
          onlineIds.map(async (d) => (await p().api<Json>("GET", `/devices/${d}`)).body.status),
        );
        return states.every((s) => s === "online") ? true : undefined;
      },
      { timeoutMs: 15_000 * SCALE, intervalMs: 200 },
    );
    const started = await p().api<Json>("POST", "/upgrades", {
      firmwareId,
      targets: { deviceIds: [...onlineIds, ...offline] },
      rollout: { maxPerMinute: 600 * SCALE, maxConcurrent: 20 * SCALE },
      timeoutSeconds: 10 * SCALE,
      abort: [{ failureType: "any", thresholdPercent: 60, minExecuted: 10 }],
    });
    expect(started.status, JSON.stringify(started.body)).toBe(201);
    expect(started.body.counts.queued).toBe(50 * SCALE);
    const id = started.body.campaignId;

    // In-flight devices never exceed maxConcurrent while it runs.
    const final = await eventually(
      async () => {
        const view = (await p().api<Json>("GET", `/upgrades/${id}`)).body;
        const c = view.counts;
        expect(c.sent + c.downloading + c.upgrading).toBeLessThanOrEqual(20 * SCALE);
        return view.state === "running" ? undefined : view;
      },
      { timeoutMs: 45_000 * SCALE, intervalMs: 250 * SCALE },
    );
    expect(final.state).toBe("completed");
    expect(final.counts).toMatchObject({
      succeeded: 40 * SCALE,
      failed: 7 * SCALE,
      "timed-out": 3 * SCALE,
      queued: 0,
      canceled: 0,
    });

    const executions: Json[] = [];
    let cursor: string | undefined;
    do {
      const page = (
        await p().api<Json>(
          "GET",
          `/upgrades/${id}/devices?limit=20${cursor ? `&cursor=${cursor}` : ""}`,
        )
      ).body;
      executions.push(...page.items);
      cursor = page.nextCursor;
    } while (cursor);
    expect(executions).toHaveLength(50 * SCALE);
    const byId = new Map(executions.map((e) => [e.deviceId, e]));
    for (const d of good.devices) {
      expect(byId.get(d.id)).toMatchObject({ state: "succeeded", bytesServed: image.length });
      const listed = await p().api<Json>("GET", `/devices/${d.id}`);
      expect(listed.body.firmwareVersion).toBe(NEW);
    }
    for (const d of badSum.devices) {
      expect(byId.get(d.id)).toMatchObject({ state: "failed", failureType: "upgrade-failed" });
      expect((await p().api<Json>("GET", `/devices/${d.id}`)).body.firmwareVersion).toBe(OLD);
    }
    for (const d of refuse.devices) {
      expect(byId.get(d.id)).toMatchObject({ state: "failed", failureType: "device-error" });
    }
    for (const d of offline) {
      expect(byId.get(d)).toMatchObject({
        state: "timed-out",
        lastMessage: "device stayed offline",
      });
    }
    // Each device received one UPDATE (retransmissions share its sequence): never dispatched twice.
    for (const sim of sims) {
      for (const d of sim.devices) {
        const updates = d.commands.filter((c) => c.command.toUpperCase() === "UPDATE");
        expect(new Set(updates.map((c) => c.sequence)).size, d.id).toBe(1);
      }
    }
  });
});
