import { randomBytes } from "node:crypto";
import { CreateQueueCommand, ReceiveMessageCommand, SQSClient } from "@aws-sdk/client-sqs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createSqsUpgradeEventSink } from "../../../edge-agent/cloud/sqs-upgrade-event-sink.ts";
import { createAgentUpgrades, upgradesConfigFromEnv } from "../../../edge-agent/upgrades/index.ts";
import { ENV } from "../../../lib/contracts/env.ts";
import { UpgradeProgressEvent } from "../../../lib/contracts/upgrades.ts";
import { LOCAL_CREDENTIALS, LOCAL_REGION } from "../../../lib/local/clients.ts";
import { type LocalFauxqs, startFauxqs } from "../../../lib/local/fauxqs.ts";

describe("agent upgrades configuration", () => {
  it("serves /fw/ only with a valid key and a bucket, and says why not otherwise", () => {
    const key = randomBytes(32).toString("hex");
    const deps = {
      s3: () => ({ send: async () => ({}) }) as never,
      sink: { emit: () => {} },
      sessions: () => undefined,
    };
    const on = createAgentUpgrades(
      upgradesConfigFromEnv({ [ENV.FIRMWARE_TOKEN_KEY]: key, [ENV.MEDIA_BUCKET]: "b" }, "a1"),
      deps,
    );
    expect(on.routes.map((r) => `${r.method} ${r.path}`)).toEqual(["GET /fw/"]);
    expect(on.disabled).toBeUndefined();
    on.close();
    const off = createAgentUpgrades(upgradesConfigFromEnv({ [ENV.MEDIA_BUCKET]: "b" }, "a1"), deps);
    expect(off.routes).toEqual([]);
    expect(off.disabled).toMatch(/FIRMWARE_TOKEN_KEY not set/);
    off.close();
    expect(() => upgradesConfigFromEnv({ [ENV.FIRMWARE_TOKEN_KEY]: "short" }, "a1")).toThrow(
      expect.objectContaining({ code: "CONFIG_INVALID", variable: ENV.FIRMWARE_TOKEN_KEY }),
    );
  });
});

describe("upgrade events to SQS", () => {
  let fauxqs: LocalFauxqs;
  let sqs: SQSClient;
  beforeAll(async () => {
    fauxqs = await startFauxqs();
    sqs = new SQSClient({
      region: LOCAL_REGION,
      endpoint: fauxqs.endpoint,
      credentials: LOCAL_CREDENTIALS,
    });
  });
  afterAll(async () => {
    sqs?.destroy();
    await fauxqs?.close();
  });

  it("arrive on the queue as contract UpgradeProgressEvents", async () => {
    const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: "upgrade-events" }));
    const sink = createSqsUpgradeEventSink(
      { queueUrl: QueueUrl!, lingerMs: 0 },
      { sqs: () => sqs },
    );
    const event: UpgradeProgressEvent = {
      kind: "bytes-served",
      deviceId: "cam-1",
      campaignId: "c1",
      attempt: 1,
      agentId: "a1",
      at: new Date().toISOString(),
      bytes: 10,
      totalBytes: 10,
      reachedEnd: true,
    };
    sink.emit(event);
    await sink.close();
    expect(sink.counters().sent).toBe(1);
    const r = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: QueueUrl!,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: 1,
      }),
    );
    expect(r.Messages?.map((m) => UpgradeProgressEvent.parse(JSON.parse(m.Body!)))).toEqual([
      event,
    ]);
  });
});
