import { afterAll, describe, expect, it } from "vitest";
import { createProgressHandler } from "../../../functions/upgrades/handler.ts";
import type { UpgradeProgressEvent } from "../../../lib/contracts/upgrades.ts";
import { useLocalBackends } from "../../helpers/local-backends.ts";
import { silentLogger, sqsEvent } from "../support.ts";
import { upgradesHarness } from "./harness.ts";

/**
 * The upgrade-events queue consumer (issue 7, Show: "duplicate SQS deliveries everywhere (no double
 * effects)", "Lambda handler throwing for one record (partial failure)"), on DynamoDB Local with
 * the real engine: the same progress message delivered twice has one effect, and a batch where
 * one record throws reports only that record.
 */

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

function failedStatus(campaignId: string, deviceId: string): UpgradeProgressEvent {
  return {
    kind: "device-status",
    status: "FAILED",
    description: "flash write error",
    campaignId,
    deviceId,
    attempt: 1,
    agentId: "agent-1",
    at: new Date().toISOString(),
  };
}

describe("upgrade-events consumer", () => {
  it("a FAILED status delivered twice (one batch, then again) fails the attempt once: one retry, not two", async () => {
    const h = harness("dup");
    const [id] = await h.devices(1);
    const campaignId = await h.campaign([id!], { retries: { "upgrade-failed": 3 } });
    h.clock.advance(60_000);
    await h.engine.tickCampaign(campaignId);
    const handler = createProgressHandler({ engine: h.engine, logger: silentLogger });
    const body = failedStatus(campaignId, id!);
    expect(await handler(sqsEvent(body, body))).toEqual({ batchItemFailures: [] });
    const [once] = (await h.campaigns.devices(campaignId, 10)).items;
    expect(once).toMatchObject({ attempt: 2, failureType: "upgrade-failed" });
    expect(await handler(sqsEvent(body))).toEqual({ batchItemFailures: [] });
    expect((await h.campaigns.devices(campaignId, 10)).items).toEqual([once]);
  });

  it("bytes-served redelivered: progress counted once (cumulative, never backwards)", async () => {
    const h = harness("bytes");
    const [id] = await h.devices(1);
    const campaignId = await h.campaign([id!]);
    h.clock.advance(60_000);
    await h.engine.tickCampaign(campaignId);
    const handler = createProgressHandler({ engine: h.engine, logger: silentLogger });
    const served = (bytes: number): UpgradeProgressEvent => ({
      kind: "bytes-served",
      bytes,
      totalBytes: 1000,
      reachedEnd: false,
      campaignId,
      deviceId: id!,
      attempt: 1,
      agentId: "agent-1",
      at: new Date().toISOString(),
    });
    await handler(sqsEvent(served(400), served(400)));
    await handler(sqsEvent(served(400), served(300)));
    const [e] = (await h.campaigns.devices(campaignId, 10)).items;
    expect(e).toMatchObject({ state: "downloading", bytesServed: 400 });
  });

  it("one record throwing (storage failure) and a poison record are reported; the others are applied", async () => {
    const h = harness("partial");
    const ids = await h.devices(2);
    const campaignId = await h.campaign(ids);
    h.clock.advance(60_000);
    await h.engine.tickCampaign(campaignId);
    const [good, broken] = ids;
    const applied: string[] = [];
    const handler = createProgressHandler({
      engine: {
        async progress(input) {
          if (input.deviceId === broken) throw new Error("executions.UpdateItem failed: throttled");
          applied.push(input.deviceId);
          await h.engine.progress(input);
        },
      },
      logger: silentLogger,
    });
    const event = sqsEvent(
      failedStatus(campaignId, good!),
      failedStatus(campaignId, broken!),
      '{"kind":"device-status"',
    );
    const out = await handler(event);
    expect(out.batchItemFailures.map((f) => f.itemIdentifier).sort()).toEqual(
      [event.Records[1]!.messageId, event.Records[2]!.messageId].sort(),
    );
    expect(applied).toEqual([good]);
    const byDevice = new Map(
      (await h.campaigns.devices(campaignId, 10)).items.map((e) => [e.deviceId, e]),
    );
    expect(byDevice.get(good!)).toMatchObject({ state: "failed", failureType: "upgrade-failed" });
    expect(byDevice.get(broken!)?.failureType).toBeUndefined();
  });
});
