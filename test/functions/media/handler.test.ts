import { GetCommand, PutCommand } from "@aws-sdk/lib-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { StreamItem } from "../../../functions/api/streams-repository.ts";
import { createMediaHandler, type MediaHandler } from "../../../functions/media/handler.ts";
import { createMediaEventsRepository } from "../../../functions/media/repository.ts";
import { createMediaEventsService } from "../../../functions/media/service.ts";
import type { StreamEvent, StreamState } from "../../../lib/contracts/media.ts";
import { streamKey } from "../../../lib/contracts/tables.ts";
import { useLocalBackends } from "../../helpers/local-backends.ts";
import { type FunctionClients, functionClients, recordingLogger, sqsEvent } from "../support.ts";

/**
 * The media function on DynamoDB Local: stream events applied by one conditional write each,
 * newer `seq` only, never out of a final state; redeliveries and strays are no-ops, poison is
 * reported for the DLQ.
 */
const backends = useLocalBackends();
let clients: FunctionClients;
let handler: MediaHandler;
let table: string;
const log = recordingLogger();

beforeAll(() => {
  clients = functionClients(backends());
  table = backends().resources.tables.streams;
  handler = createMediaHandler({
    service: createMediaEventsService({
      repository: createMediaEventsRepository(
        { streamsTable: table },
        { documentClient: clients.documentClient },
      ),
      clock: { now: () => Date.now() },
      logger: log.logger,
    }),
    logger: log.logger,
  });
});
afterAll(() => clients?.close());

let counter = 0;
async function createStream(kind: StreamItem["kind"] = "live"): Promise<string> {
  const streamId = `st-test-${++counter}`;
  const now = new Date().toISOString();
  const item: StreamItem = {
    streamId,
    deviceId: "cam-m",
    agentId: "agent-m",
    kind,
    spec: { streamId, kind, channel: 1, transport: "tcp" },
    state: "starting",
    counters: { viewers: 0, bytesIn: 0, bytesOut: 0, bitrateBps: 0, viewersDropped: 0 },
    seq: -1,
    createdAt: now,
    updatedAt: now,
    tokenExpiresAt: Math.floor(Date.now() / 1000) + 3600,
    expiresAt: Math.floor(Date.now() / 1000) + 86_400,
  };
  await clients.documentClient.send(new PutCommand({ TableName: table, Item: item }));
  return streamId;
}

async function read(streamId: string): Promise<StreamItem> {
  const out = await clients.documentClient.send(
    new GetCommand({ TableName: table, Key: streamKey(streamId), ConsistentRead: true }),
  );
  return out.Item as StreamItem;
}

function event(
  streamId: string,
  seq: number,
  state: StreamState,
  extra: Partial<StreamEvent> = {},
): StreamEvent {
  return {
    type: "stream-state",
    streamId,
    deviceId: "cam-m",
    agentId: "agent-m",
    seq,
    state,
    counters: {
      viewers: seq,
      bytesIn: seq * 1000,
      bytesOut: seq * 2000,
      bitrateBps: 8000,
      viewersDropped: 0,
    },
    at: new Date().toISOString(),
    ...extra,
  };
}

async function apply(...events: unknown[]) {
  return handler(sqsEvent(...events));
}

describe("media function: StreamEvents onto the streams table", () => {
  it("applies a newer event: state, counters, seq and updatedAt", async () => {
    const id = await createStream();
    const before = await read(id);
    expect(await apply(event(id, 1, "active"))).toEqual({ batchItemFailures: [] });
    const after = await read(id);
    expect(after).toMatchObject({
      state: "active",
      seq: 1,
      counters: { viewers: 1, bytesIn: 1000, bytesOut: 2000, bitrateBps: 8000 },
    });
    expect(after.updatedAt >= before.updatedAt).toBe(true);
    // Untouched: what the API wrote.
    expect(after.spec).toEqual(before.spec);
    expect(after.tokenExpiresAt).toBe(before.tokenExpiresAt);
  });

  it("ignores an older or repeated seq (redelivery, reordering across batches)", async () => {
    const id = await createStream();
    await apply(event(id, 5, "active"));
    expect(await apply(event(id, 3, "paused"), event(id, 5, "paused"))).toEqual({
      batchItemFailures: [],
    });
    expect(await read(id)).toMatchObject({ state: "active", seq: 5, counters: { viewers: 5 } });
  });

  it("within one batch the newest seq wins whatever the order", async () => {
    const id = await createStream();
    await apply(event(id, 7, "paused"), event(id, 6, "active"), event(id, 2, "active"));
    expect(await read(id)).toMatchObject({ state: "paused", seq: 7 });
  });

  it("never moves a final state, not back to active nor to another final state", async () => {
    const id = await createStream();
    await apply(
      event(id, 1, "active"),
      event(id, 2, "stopped", { reason: { code: "IDLE", message: "no viewer for 30 s" } }),
    );
    await apply(event(id, 3, "active"), event(id, 4, "failed"));
    expect(await read(id)).toMatchObject({
      state: "stopped",
      seq: 2,
      reason: { code: "IDLE", message: "no viewer for 30 s" },
    });
  });

  it("a completed download stores its object and final counters", async () => {
    const id = await createStream("download");
    const key = `downloads/cam-m/${id}.ps`;
    await apply(
      event(id, 1, "active"),
      event(id, 2, "completed", { object: { key, bytes: 123_456 } }),
    );
    expect(await read(id)).toMatchObject({
      state: "completed",
      object: { key, bytes: 123_456 },
      counters: { bytesIn: 2000 },
    });
  });

  it("events for an unknown stream or another device change nothing and are not retried", async () => {
    const id = await createStream();
    const response = await apply(event("st-never-created", 1, "active"), {
      ...event(id, 9, "failed"),
      deviceId: "cam-other",
    });
    expect(response).toEqual({ batchItemFailures: [] });
    expect(await read(id)).toMatchObject({ state: "starting", seq: -1 });
    const warnings = log.lines().filter((l) => l.message === "stream event ignored");
    expect(warnings.map((l) => l.reason)).toEqual(
      expect.arrayContaining(["unknown-stream", "device-mismatch"]),
    );
  });

  it("reports only the poison records of a batch (left for the DLQ); the others apply", async () => {
    const id = await createStream();
    const batch = sqsEvent(
      "not json",
      { ...event(id, 1, "active"), seq: -4 },
      event(id, 1, "active"),
    );
    const response = await handler(batch);
    expect(response.batchItemFailures.map((f) => f.itemIdentifier)).toEqual([
      batch.Records[0]!.messageId,
      batch.Records[1]!.messageId,
    ]);
    expect(await read(id)).toMatchObject({ state: "active", seq: 1 });
    expect(log.lines().some((l) => l.message === "poison message; it will reach the DLQ")).toBe(
      true,
    );
  });
});
