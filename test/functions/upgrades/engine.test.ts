import { afterAll, describe, expect, it } from "vitest";
import { useLocalBackends } from "../../helpers/local-backends.ts";
import { upgradesHarness } from "./harness.ts";

const backends = useLocalBackends();
const harnesses: { close(): void }[] = [];
afterAll(() => {
  for (const h of harnesses) h.close();
});
function harness(label: string) {
  const h = upgradesHarness(backends(), label);
  harnesses.push(h);
  return h;
}

const SECOND = 1000;

describe("upgrade engine rollout", () => {
  it("dispatches at maxPerMinute (measured within ±10%) under frequent ticks", async () => {
    const h = harness("rate");
    const ids = await h.devices(150);
    const campaignId = await h.campaign(ids, {
      rollout: { maxPerMinute: 30, maxConcurrent: 1000 },
    });
    const minutes = 4;
    for (let t = 0; t < (minutes * 60) / 5; t++) {
      h.clock.advance(5 * SECOND);
      await h.engine.tickCampaign(campaignId);
    }
    const rate = h.dispatched.length / minutes;
    expect(rate).toBeGreaterThanOrEqual(27);
    expect(rate).toBeLessThanOrEqual(33);
    // Each minute on its own stays within the limit too.
    const start = h.dispatched[0]!.at;
    const perMinute = new Map<number, number>();
    for (const d of h.dispatched) {
      const m = Math.floor((d.at - start) / 60_000);
      perMinute.set(m, (perMinute.get(m) ?? 0) + 1);
    }
    for (const n of perMinute.values()) expect(n).toBeLessThanOrEqual(33);
    const view = await h.campaigns.get(campaignId);
    expect(view.counts.sent).toBe(h.dispatched.length);
    expect(view.counts.queued).toBe(150 - h.dispatched.length);
    expect(view.etaSeconds).toBe(Math.ceil((view.counts.queued / 30) * 60));
  });

  it("never has more than maxConcurrent devices in flight", async () => {
    const h = harness("conc");
    const ids = await h.devices(30);
    const campaignId = await h.campaign(ids, {
      rollout: { maxPerMinute: 600, maxConcurrent: 4 },
    });
    let maxSeen = 0;
    for (let t = 0; t < 60; t++) {
      h.clock.advance(5 * SECOND);
      await h.engine.tickCampaign(campaignId);
      const view = await h.campaigns.get(campaignId);
      const inFlight = view.counts.sent + view.counts.downloading + view.counts.upgrading;
      maxSeen = Math.max(maxSeen, inFlight);
      expect(inFlight).toBeLessThanOrEqual(4);
      // Every device dispatched two ticks ago comes back upgraded.
      for (const d of h.dispatched.filter((x) => h.clock.now() - x.at >= 10 * SECOND)) {
        await h.upgraded(d.deviceId);
      }
      if (view.state === "completed") break;
    }
    expect(maxSeen).toBe(4);
    const final = await h.campaigns.get(campaignId);
    expect(final.state).toBe("completed");
    expect(final.counts.succeeded).toBe(30);
  });

  it("ramps the rate exponentially with successes, capped at maxPerMinute", async () => {
    const h = harness("ramp");
    const ids = await h.devices(80);
    const campaignId = await h.campaign(ids, {
      rollout: {
        maxPerMinute: 24,
        maxConcurrent: 1000,
        ramp: { baseRate: 3, factor: 2, stepAfterSuccesses: 3 },
      },
    });
    const perMinute: number[] = [];
    for (let minute = 0; minute < 5; minute++) {
      const before = h.dispatched.length;
      for (let t = 0; t < 12; t++) {
        h.clock.advance(5 * SECOND);
        await h.engine.tickCampaign(campaignId);
        for (const d of h.dispatched) await h.upgraded(d.deviceId);
      }
      perMinute.push(h.dispatched.length - before);
    }
    // 3 → 6 → 12 → 24 per minute; then capped at 24.
    expect(perMinute[0]).toBeLessThanOrEqual(4);
    expect(perMinute[1]!).toBeGreaterThan(perMinute[0]!);
    expect(perMinute[2]!).toBeGreaterThan(perMinute[1]!);
    for (const n of perMinute) expect(n).toBeLessThanOrEqual(24 * 1.1);
    const view = await h.campaigns.get(campaignId);
    expect(view.currentRate).toBe(24);
  });
});

describe("upgrade engine outcomes", () => {
  it("succeeds on re-registration with the target version; skips devices already on it", async () => {
    const h = harness("ok");
    const ids = await h.devices(3);
    await h.putDevice(ids[2]!, { firmwareVersion: "2.0.0" });
    const campaignId = await h.campaign(ids);
    h.clock.advance(60 * SECOND);
    await h.engine.tickCampaign(campaignId);
    expect(h.dispatched.map((d) => d.deviceId).sort()).toEqual([ids[0], ids[1]]);
    await h.upgraded(ids[0]!);
    await h.upgraded(ids[1]!);
    await h.engine.tickCampaign(campaignId);
    const view = await h.campaigns.get(campaignId);
    expect(view.counts).toMatchObject({ succeeded: 2, skipped: 1 });
    expect(view.state).toBe("completed");
    expect((await h.repository.activeCampaigns()).map((c) => c.campaignId)).not.toContain(
      campaignId,
    );
  });

  it("retries a timed-out attempt as configured, then ends timed-out", async () => {
    const h = harness("timeout");
    const [id] = await h.devices(1);
    const campaignId = await h.campaign([id!], {
      timeoutSeconds: 60,
      retries: { "timed-out": 1 },
    });
    h.clock.advance(60 * SECOND);
    await h.engine.tickCampaign(campaignId);
    expect(h.dispatched).toHaveLength(1);
    h.clock.advance(61 * SECOND);
    await h.engine.tickCampaign(campaignId); // times out, re-queued with attempt 2, dispatched again
    h.clock.advance(5 * SECOND);
    await h.engine.tickCampaign(campaignId);
    expect(h.dispatched.map((d) => d.attempt)).toEqual([1, 2]);
    h.clock.advance(61 * SECOND);
    await h.engine.tickCampaign(campaignId);
    h.clock.advance(60 * SECOND);
    await h.engine.tickCampaign(campaignId);
    expect(h.dispatched).toHaveLength(2);
    const [execution] = (await h.campaigns.devices(campaignId, 10)).items;
    expect(execution).toMatchObject({ state: "timed-out", attempt: 2, failureType: "timed-out" });
    expect((await h.campaigns.get(campaignId)).state).toBe("completed");
  });

  it("fails on a device error reply and on UPGRADESTATUS FAILED, retrying per failure type", async () => {
    const h = harness("fail");
    const ids = await h.devices(2);
    const campaignId = await h.campaign(ids, { retries: { "upgrade-failed": 1 } });
    h.clock.advance(60 * SECOND);
    await h.engine.tickCampaign(campaignId);
    const [a, b] = h.dispatched;
    h.commandStates.set(a!.commandId, {
      state: "failed",
      error: { code: "DEVICE_ERROR", message: "refused: low battery" },
    });
    await h.engine.progress({ campaignId, deviceId: b!.deviceId, status: "failed" });
    // Redelivered: the same report again changes nothing more.
    await h.engine.progress({ campaignId, deviceId: b!.deviceId, status: "failed" });
    await h.engine.tickCampaign(campaignId);
    const byDevice = new Map(
      (await h.campaigns.devices(campaignId, 10)).items.map((e) => [e.deviceId, e]),
    );
    expect(byDevice.get(a!.deviceId)).toMatchObject({
      state: "failed",
      failureType: "device-error",
      lastMessage: "refused: low battery",
    });
    // upgrade-failed has one retry: queued again (attempt 2) and dispatched on a later tick.
    expect(byDevice.get(b!.deviceId)).toMatchObject({ attempt: 2 });
    h.clock.advance(5 * SECOND);
    await h.engine.tickCampaign(campaignId);
    expect(h.dispatched.filter((d) => d.deviceId === b!.deviceId).map((d) => d.attempt)).toEqual([
      1, 2,
    ]);
  });

  it("fails the in-flight execution on the upgrade-failed alarm hook (type 18)", async () => {
    const h = harness("alarm");
    const [id] = await h.devices(1);
    const campaignId = await h.campaign([id!]);
    h.clock.advance(60 * SECOND);
    await h.engine.tickCampaign(campaignId);
    expect(await h.engine.deviceUpgradeFailedAlarm(id!, "alarm 18: flash write error")).toBe(1);
    expect(await h.engine.deviceUpgradeFailedAlarm(id!)).toBe(0);
    const [e] = (await h.campaigns.devices(campaignId, 10)).items;
    expect(e).toMatchObject({
      state: "failed",
      failureType: "upgrade-failed",
      lastMessage: "alarm 18: flash write error",
    });
  });

  it("tracks download progress from bytes served and never moves backwards", async () => {
    const h = harness("progress");
    const [id] = await h.devices(1);
    const campaignId = await h.campaign([id!]);
    h.clock.advance(60 * SECOND);
    await h.engine.tickCampaign(campaignId);
    await h.engine.progress({ campaignId, deviceId: id!, bytesServed: 400 });
    let [e] = (await h.campaigns.devices(campaignId, 10)).items;
    expect(e).toMatchObject({ state: "downloading", bytesServed: 400 });
    await h.engine.progress({ campaignId, deviceId: id!, bytesServed: 1000 });
    await h.engine.progress({ campaignId, deviceId: id!, bytesServed: 300 });
    [e] = (await h.campaigns.devices(campaignId, 10)).items;
    expect(e).toMatchObject({ state: "upgrading", bytesServed: 1000 });
  });

  it("lets offline devices wait, not fail, until their timeout", async () => {
    const h = harness("offline");
    const ids = await h.devices(2);
    await h.putDevice(ids[1]!, { status: "offline" });
    const campaignId = await h.campaign(ids, { timeoutSeconds: 120 });
    h.clock.advance(60 * SECOND);
    await h.engine.tickCampaign(campaignId);
    expect(h.dispatched.map((d) => d.deviceId)).toEqual([ids[0]]);
    let waiting = (await h.campaigns.devices(campaignId, 10)).items[1]!;
    expect(waiting).toMatchObject({
      state: "queued",
      lastMessage: "device offline; waiting for it",
    });
    // Back online before the timeout: dispatched.
    h.clock.advance(60 * SECOND);
    await h.putDevice(ids[1]!, { status: "online" });
    await h.engine.tickCampaign(campaignId);
    expect(h.dispatched.map((d) => d.deviceId)).toEqual(ids);

    // A device that never comes back ends timed-out after the wait.
    const h2 = harness("offline2");
    const [gone] = await h2.devices(1, { status: "offline" });
    const c2 = await h2.campaign([gone!], { timeoutSeconds: 120 });
    h2.clock.advance(60 * SECOND);
    await h2.engine.tickCampaign(c2);
    h2.clock.advance(121 * SECOND);
    await h2.engine.tickCampaign(c2);
    waiting = (await h2.campaigns.devices(c2, 10)).items[0]!;
    expect(waiting).toMatchObject({ state: "timed-out", lastMessage: "device stayed offline" });
    expect(h2.dispatched).toHaveLength(0);
  });
});

describe("upgrade engine abort and cancel", () => {
  it("aborts at the threshold: no more dispatches, queued executions canceled", async () => {
    const h = harness("abort");
    const ids = await h.devices(20);
    const campaignId = await h.campaign(ids, {
      rollout: { maxPerMinute: 60, maxConcurrent: 4 },
      abort: [{ failureType: "device-error", thresholdPercent: 50, minExecuted: 4 }],
    });
    h.clock.advance(5 * SECOND);
    await h.engine.tickCampaign(campaignId);
    expect(h.dispatched).toHaveLength(4);
    // 3 of 4 fail (75% ≥ 50%), one succeeds.
    for (const d of h.dispatched.slice(0, 3)) {
      h.commandStates.set(d.commandId, {
        state: "failed",
        error: { code: "DEVICE_ERROR", message: "bad image" },
      });
    }
    await h.upgraded(h.dispatched[3]!.deviceId);
    h.clock.advance(5 * SECOND);
    await h.engine.tickCampaign(campaignId);
    h.clock.advance(60 * SECOND);
    await h.engine.tickCampaign(campaignId);
    const view = await h.campaigns.get(campaignId);
    expect(view.state).toBe("aborted");
    expect(view.abortReason).toContain("device-error");
    expect(view.counts).toMatchObject({ failed: 3, succeeded: 1, canceled: 16, queued: 0 });
    expect(h.dispatched).toHaveLength(4);
  });

  it("cancels mid-flight: queued canceled, in-flight observed to their end, then refused", async () => {
    const h = harness("cancel");
    const ids = await h.devices(10);
    const campaignId = await h.campaign(ids, {
      rollout: { maxPerMinute: 60, maxConcurrent: 3 },
    });
    h.clock.advance(5 * SECOND);
    await h.engine.tickCampaign(campaignId);
    expect(h.dispatched).toHaveLength(3);
    const canceled = await h.campaigns.cancel(campaignId);
    expect(canceled.state).toBe("canceled");
    expect(canceled.counts).toMatchObject({ canceled: 7, sent: 3 });
    await expect(h.campaigns.cancel(campaignId)).rejects.toMatchObject({
      code: "CAMPAIGN_FINISHED",
    });
    for (const d of h.dispatched) await h.upgraded(d.deviceId);
    h.clock.advance(60 * SECOND);
    await h.engine.tickCampaign(campaignId);
    expect(h.dispatched).toHaveLength(3);
    const view = await h.campaigns.get(campaignId);
    expect(view).toMatchObject({ state: "canceled", counts: { succeeded: 3, canceled: 7 } });
    expect((await h.repository.activeCampaigns()).map((c) => c.campaignId)).not.toContain(
      campaignId,
    );
  });
});

describe("upgrade engine under concurrency", () => {
  it("concurrent and repeated ticks never dispatch a device twice", async () => {
    const h = harness("race");
    const ids = await h.devices(150);
    const campaignId = await h.campaign(ids, {
      rollout: { maxPerMinute: 120, maxConcurrent: 1000 },
    });
    for (let t = 0; t < 12; t++) {
      h.clock.advance(5 * SECOND);
      // Three schedulers at once, then a redelivered run of the same instant.
      await Promise.all([h.engine.tick(), h.engine.tick(), h.engine.tick()]);
      await h.engine.tick();
    }
    const perDevice = new Map<string, number>();
    for (const d of h.dispatched) perDevice.set(d.deviceId, (perDevice.get(d.deviceId) ?? 0) + 1);
    expect([...perDevice.values()].every((n) => n === 1)).toBe(true);
    // Rate still honoured: 120/min for one minute.
    expect(h.dispatched.length).toBeGreaterThanOrEqual(108);
    expect(h.dispatched.length).toBeLessThanOrEqual(132);
    const view = await h.campaigns.get(campaignId);
    expect(view.counts.sent).toBe(h.dispatched.length);
  });
});
