import { QueryCommand, ScanCommand } from "@aws-sdk/lib-dynamodb";
import { afterAll, describe, expect, it } from "vitest";
import { createDeviceDataHandlerFromEnv } from "../../../functions/device-data/handler.ts";
import { useLocalBackends } from "../../helpers/local-backends.ts";
import { functionClients, sqsEvent } from "../support.ts";

/**
 * Duplicate SQS deliveries of the device-data queue (issue 7, Show: "no double effects"), on
 * DynamoDB Local: the same positions message and the same passthrough message delivered twice,
 * in one batch and again later, leave exactly the items one delivery leaves.
 */

const backends = useLocalBackends();
const closers: (() => void)[] = [];
afterAll(() => {
  for (const c of closers) c();
});

describe("device-data function, redelivered messages", () => {
  it("the same positions and passthrough messages delivered twice store one item each", async () => {
    const b = backends();
    const fn = createDeviceDataHandlerFromEnv({ ...b.env, AWS_LAMBDA_LOG_LEVEL: "ERROR" });
    closers.push(fn.close);
    const clients = functionClients(b);
    closers.push(() => clients.close());
    const deviceId = `bus-redeliver-${Date.now().toString(36)}`;
    const receivedAt = new Date().toISOString();
    const positions = {
      type: "positions",
      eventId: "e-pos-1",
      agentId: "agent-1",
      deviceId,
      positions: [
        { time: receivedAt, sequence: 7, longitude: 121.426653, latitude: 31.2, receivedAt },
      ],
    };
    const passthrough = {
      type: "passthrough",
      eventId: "e-pt-1",
      agentId: "agent-1",
      deviceId,
      sequence: 8,
      channel: 1,
      data: "AQID",
      receivedAt,
    };
    const snapshot = async () => {
      const out: Record<string, unknown[]> = {};
      for (const table of [b.resources.tables.positions, b.resources.tables.passthrough]) {
        const res = await clients.documentClient.send(
          new QueryCommand({
            TableName: table,
            KeyConditionExpression: "deviceId = :d",
            ExpressionAttributeValues: { ":d": deviceId },
            ConsistentRead: true,
          }),
        );
        out[table] = res.Items ?? [];
      }
      return out;
    };
    expect(await fn.handler(sqsEvent(positions, passthrough))).toEqual({ batchItemFailures: [] });
    const once = await snapshot();
    expect(Object.values(once).map((items) => items.length)).toEqual([1, 1]);
    // Redelivered: twice in one batch, then once more.
    expect(await fn.handler(sqsEvent(positions, positions, passthrough, passthrough))).toEqual({
      batchItemFailures: [],
    });
    expect(await fn.handler(sqsEvent(passthrough, positions))).toEqual({ batchItemFailures: [] });
    expect(await snapshot()).toEqual(once);
    // Nothing else was written for this device anywhere in those tables.
    const scan = await clients.documentClient.send(
      new ScanCommand({
        TableName: b.resources.tables.positions,
        FilterExpression: "deviceId = :d",
        ExpressionAttributeValues: { ":d": deviceId },
      }),
    );
    expect(scan.Items).toHaveLength(1);
  });
});
