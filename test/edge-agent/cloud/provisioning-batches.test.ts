import { randomBytes } from "node:crypto";
import {
  BatchGetItemCommand,
  type BatchGetItemCommandOutput,
  PutItemCommand,
} from "@aws-sdk/client-dynamodb";
import { describe, expect, it } from "vitest";
import type { DynamoSender } from "../../../edge-agent/cloud/aws.ts";
import {
  createDynamoProvisioningSource,
  ProvisioningBusyError,
} from "../../../edge-agent/cloud/dynamo-provisioning.ts";
import { useLocalBackends } from "../../helpers/local-backends.ts";

/**
 * Register storm (issue 7): lookups that wait for a read call are read together in one
 * strongly consistent BatchGetItem of up to 100 devices, against DynamoDB Local; keys DynamoDB
 * leaves unprocessed are asked again; the bounded queue sheds beyond `maxConcurrentReads`.
 */

const backends = useLocalBackends();
const prefix = () => `st-${randomBytes(3).toString("hex")}`;

/** The backends' client, recording each call's name and key count; `tamper` may edit answers. */
function recordingDynamo(
  tamper?: (out: BatchGetItemCommandOutput, call: number) => BatchGetItemCommandOutput,
) {
  const calls: { name: string; keys: number }[] = [];
  const sender = {
    async send(command: object) {
      const name = command.constructor.name;
      const input = (command as { input: { RequestItems?: Record<string, { Keys: unknown[] }> } })
        .input;
      const keys = input.RequestItems
        ? Object.values(input.RequestItems).reduce((a, r) => a + r.Keys.length, 0)
        : 1;
      calls.push({ name, keys });
      const real = backends().clients.dynamodb.send as (c: unknown) => Promise<unknown>;
      const out = await real.call(backends().clients.dynamodb, command);
      if (tamper && command instanceof BatchGetItemCommand) {
        return tamper(out as BatchGetItemCommandOutput, calls.length);
      }
      return out;
    },
  } as unknown as DynamoSender;
  return { sender, calls };
}

async function putDevice(deviceId: string, attrs: Record<string, { S?: string; BOOL?: boolean }>) {
  await backends().clients.dynamodb.send(
    new PutItemCommand({
      TableName: backends().resources.tables.devices,
      Item: { deviceId: { S: deviceId }, ...attrs },
    }),
  );
}

describe("provisioning reads in batches", () => {
  it("reads 250 devices looked up at once in a few BatchGetItem calls, each decision right", async () => {
    const p0 = prefix();
    const ids = Array.from({ length: 250 }, (_, i) => `${p0}-${i}`);
    // Every 5th provisioned, every 7th refused, every 11th deleted; the rest unknown.
    const expected = new Map<string, unknown>();
    for (const [i, id] of ids.entries()) {
      if (i % 11 === 0) {
        await putDevice(id, { provisioned: { BOOL: true }, deletedAt: { S: "2026-01-01" } });
        expected.set(id, { allowed: false });
      } else if (i % 7 === 0) {
        await putDevice(id, { provisioned: { BOOL: false } });
        expected.set(id, { allowed: false });
      } else if (i % 5 === 0) {
        await putDevice(id, { provisioned: { BOOL: true }, passwordHash: { S: `h${i}` } });
        expected.set(id, { allowed: true, passwordHash: `h${i}` });
      } else {
        expected.set(id, undefined);
      }
    }
    const db = recordingDynamo();
    const p = createDynamoProvisioningSource(
      { devicesTable: backends().resources.tables.devices, maxReadCalls: 1 },
      { dynamodb: () => db.sender },
    );
    const answers = await Promise.all(ids.map((id) => p.lookup(id)));
    for (const [i, id] of ids.entries()) expect(answers[i]).toEqual(expected.get(id));
    // The first device takes the free call alone (GetItem); the 249 waiting ones go 100 at a time.
    expect(db.calls).toEqual([
      { name: "GetItemCommand", keys: 1 },
      { name: "BatchGetItemCommand", keys: 100 },
      { name: "BatchGetItemCommand", keys: 100 },
      { name: "BatchGetItemCommand", keys: 49 },
    ]);
    expect(p.counters()).toMatchObject({ reads: 250, batchReads: 3, misses: 250, size: 250 });
    // Cached now: no further call.
    for (const id of ids) expect(p.lookup(id)).toEqual(expected.get(id));
    expect(db.calls).toHaveLength(4);
    p.close();
  });

  it("asks again for the keys DynamoDB left unprocessed, with backoff", async () => {
    const p0 = prefix();
    const ids = Array.from({ length: 40 }, (_, i) => `${p0}-${i}`);
    for (const id of ids) await putDevice(id, { provisioned: { BOOL: true } });
    const unknown = `${p0}-unknown`;
    const db = recordingDynamo((out, call) => {
      // The first two batch answers leave half of what they got unprocessed (throttling).
      if (call > 3) return out;
      const table = backends().resources.tables.devices;
      const items = out.Responses?.[table] ?? [];
      const half = Math.ceil(items.length / 2);
      return {
        ...out,
        Responses: { [table]: items.slice(half) },
        UnprocessedKeys: {
          [table]: { Keys: items.slice(0, half).map((item) => ({ deviceId: item.deviceId! })) },
        },
      };
    });
    const p = createDynamoProvisioningSource(
      { devicesTable: backends().resources.tables.devices, maxReadCalls: 1, retryBaseMs: 1 },
      { dynamodb: () => db.sender },
    );
    const first = p.lookup(`${p0}-warm`); // takes the one call: the others wait and batch
    const answers = await Promise.all([...ids, unknown].map((id) => p.lookup(id)));
    await first;
    expect(answers.slice(0, 40).every((a) => (a as { allowed: boolean }).allowed)).toBe(true);
    expect(answers[40]).toBeUndefined();
    const batches = db.calls.filter((x) => x.name === "BatchGetItemCommand");
    expect(batches.map((b) => b.keys)).toEqual([41, 20, 10]);
    expect(p.counters()).toMatchObject({ unprocessedRetries: 30, readErrors: 0, size: 42 });
    p.close();
  });

  it("fails devices left unprocessed too often; an expired decision is served again", async () => {
    const p0 = prefix();
    const [known, fresh] = [`${p0}-known`, `${p0}-fresh`];
    await putDevice(known, { provisioned: { BOOL: true } });
    await putDevice(fresh, { provisioned: { BOOL: true } });
    const table = () => backends().resources.tables.devices;
    let throttle = false;
    const db = recordingDynamo((out) =>
      throttle
        ? {
            ...out,
            Responses: { [table()]: [] },
            UnprocessedKeys: {
              [table()]: {
                Keys: (out.Responses?.[table()] ?? []).map((i) => ({ deviceId: i.deviceId! })),
              },
            },
          }
        : out,
    );
    let t = 1_000_000;
    const p = createDynamoProvisioningSource(
      {
        devicesTable: table(),
        maxReadCalls: 1,
        retryBaseMs: 1,
        retryMaxMs: 2,
        maxUnprocessedRetries: 2,
        positiveTtlMs: 1000,
      },
      { dynamodb: () => db.sender, now: () => t },
    );
    expect(await p.lookup(known)).toEqual({ allowed: true });
    t += 5000;
    throttle = true;
    const blocker = p.lookup(`${p0}-blocker`);
    const [a, b] = [p.lookup(known), p.lookup(fresh)];
    await blocker;
    expect(await a).toEqual({ allowed: true }); // stale-if-error
    await expect(Promise.resolve(b)).rejects.toThrow(/unprocessed/);
    expect(db.calls.filter((x) => x.name === "BatchGetItemCommand")).toHaveLength(3);
    expect(p.counters()).toMatchObject({ staleServed: 1, readErrors: 2, unprocessedRetries: 4 });
    p.close();
  });

  it("sheds lookups beyond the bounded queue, and close() rejects the waiting ones", async () => {
    const p0 = prefix();
    const db = recordingDynamo();
    const p = createDynamoProvisioningSource(
      {
        devicesTable: backends().resources.tables.devices,
        maxConcurrentReads: 50,
        maxReadCalls: 1,
      },
      { dynamodb: () => db.sender },
    );
    const outcomes: Array<Promise<unknown> | "shed"> = [];
    for (let i = 0; i < 120; i++) {
      try {
        outcomes.push(Promise.resolve(p.lookup(`${p0}-${i}`)));
      } catch (err) {
        expect(err).toBeInstanceOf(ProvisioningBusyError);
        outcomes.push("shed");
      }
    }
    expect(outcomes.filter((o) => o === "shed")).toHaveLength(70);
    expect(p.counters()).toMatchObject({ shed: 70, misses: 50 });
    const settled = Promise.allSettled(outcomes.filter((o) => o !== "shed"));
    p.close(); // the first device's GetItem is in flight; the 49 waiting ones are rejected
    const results = await settled;
    expect(results.filter((r) => r.status === "rejected")).toHaveLength(49);
    expect(db.calls).toEqual([{ name: "GetItemCommand", keys: 1 }]);
    // After close() a lookup fails at once instead of waiting for a read that never comes.
    await expect(Promise.resolve(p.lookup(`${p0}-late`))).rejects.toThrow(/closed/);
  });
});
