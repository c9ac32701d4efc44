import { describe, expect, it } from "vitest";
import { z } from "zod";
import { createLogger } from "../../../functions/shared/logger.ts";
import {
  deviceIdGroupKey,
  parseRecord,
  processPartialBatch,
  type SqsRecord,
} from "../../../functions/shared/sqs-batch.ts";

const record = (messageId: string, body: unknown): SqsRecord => ({
  messageId,
  body: typeof body === "string" ? body : JSON.stringify(body),
});

describe("processPartialBatch: partial batch failures", () => {
  it("reports exactly the records that threw, in batch order, and logs poison messages", async () => {
    const lines: string[] = [];
    const logger = createLogger({ service: "test", sink: (l) => lines.push(l) });
    const schema = z.object({ deviceId: z.string(), n: z.number() });
    const handled: number[] = [];
    const response = await processPartialBatch(
      {
        Records: [
          record("m1", { deviceId: "a", n: 1 }),
          record("m2", "{not json"),
          record("m3", { deviceId: "b", n: "x" }),
          record("m4", { deviceId: "a", n: 4 }),
        ],
      },
      async (r) => {
        handled.push(parseRecord(r, schema).n);
      },
      { logger, groupKey: deviceIdGroupKey },
    );
    expect(response.batchItemFailures).toEqual([
      { itemIdentifier: "m2" },
      { itemIdentifier: "m3" },
    ]);
    expect(handled).toEqual([1, 4]);
    const poison = lines.map((l) => JSON.parse(l)).filter((l) => l.message.startsWith("poison"));
    expect(poison.map((l) => l.messageId)).toEqual(["m2", "m3"]);
  });

  it("runs records of one device in order, one after another", async () => {
    const order: string[] = [];
    await processPartialBatch(
      { Records: [record("1", { deviceId: "a" }), record("2", { deviceId: "a" })] },
      async (r) => {
        order.push(`start ${r.messageId}`);
        await new Promise((resolve) => setTimeout(resolve, r.messageId === "1" ? 20 : 0));
        order.push(`end ${r.messageId}`);
      },
      { logger: createLogger({ service: "t", level: "silent" }), groupKey: deviceIdGroupKey },
    );
    expect(order).toEqual(["start 1", "end 1", "start 2", "end 2"]);
  });

  it("a transient failure is reported too (retried, not lost)", async () => {
    const response = await processPartialBatch(
      { Records: [record("ok", {}), record("flaky", {})] },
      async (r) => {
        if (r.messageId === "flaky") throw new Error("throttled");
      },
      { logger: createLogger({ service: "t", level: "silent" }) },
    );
    expect(response.batchItemFailures).toEqual([{ itemIdentifier: "flaky" }]);
  });
});
