import { randomBytes } from "node:crypto";
import { PutItemCommand } from "@aws-sdk/client-dynamodb";
import { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { describe, expect, it } from "vitest";
import type { DynamoSender } from "../../../edge-agent/cloud/aws.ts";
import {
  createDynamoProvisioningSource,
  type DynamoProvisioningDeps,
} from "../../../edge-agent/cloud/dynamo-provisioning.ts";
import { createDevicesRepository } from "../../../functions/api/devices-repository.ts";
import {
  hashDevicePassword,
  verifyDevicePassword,
} from "../../../functions/shared/device-password.ts";
import { useLocalBackends } from "../../helpers/local-backends.ts";

/**
 * The provisioning source against DynamoDB Local, with items written by the API's own devices
 * repository: the attribute names the agent reads are the ones the API writes.
 */

const backends = useLocalBackends();
const uid = () => `cam-${randomBytes(3).toString("hex")}`;

/** The backends' client, counting GetItem calls. */
function countingDynamo() {
  const calls: string[] = [];
  const sender = {
    send(command: object, opts?: unknown) {
      calls.push(command.constructor.name);
      const real = backends().clients.dynamodb.send as (
        c: unknown,
        o?: unknown,
      ) => Promise<unknown>;
      return real.call(backends().clients.dynamodb, command, opts);
    },
  } as unknown as DynamoSender;
  return { sender, reads: () => calls.filter((n) => n === "GetItemCommand").length };
}

function api() {
  const documentClient = DynamoDBDocumentClient.from(backends().clients.dynamodb, {
    marshallOptions: { removeUndefinedValues: true },
  });
  return createDevicesRepository(
    { devicesTable: backends().resources.tables.devices },
    { documentClient },
  );
}

function source(deps: Partial<DynamoProvisioningDeps> & { dynamodb: () => DynamoSender }) {
  return createDynamoProvisioningSource(
    { devicesTable: backends().resources.tables.devices, maxEntries: 100 },
    deps,
  );
}

const now = () => new Date().toISOString();

describe("provisioning from the devices table", () => {
  it("maps what the API wrote to decisions", async () => {
    const repo = api();
    const [allowed, refused, unknown, registryOnly, deleted, withPassword] = Array.from(
      { length: 6 },
      uid,
    );
    await repo.provision(allowed!, { provisioned: true, labels: {}, now: now() });
    await repo.provision(refused!, { provisioned: false, labels: {}, now: now() });
    // An item the registry created for an auto-provisioned device: no provisioning attributes.
    await backends().clients.dynamodb.send(
      new PutItemCommand({
        TableName: backends().resources.tables.devices,
        Item: { deviceId: { S: registryOnly! }, status: { S: "online" } },
      }),
    );
    await repo.provision(deleted!, { provisioned: true, labels: {}, now: now() });
    expect(await repo.remove(deleted!, now())).toBe(true);
    const hash = await hashDevicePassword("s3cret", { logN: 4, r: 8, p: 1 });
    await repo.provision(withPassword!, {
      provisioned: true,
      passwordHash: hash,
      labels: {},
      now: now(),
    });

    const db = countingDynamo();
    const p = source({ dynamodb: () => db.sender });
    expect(await p.lookup(allowed!)).toEqual({ allowed: true });
    expect(await p.lookup(refused!)).toEqual({ allowed: false });
    expect(await p.lookup(unknown!)).toBeUndefined();
    expect(await p.lookup(registryOnly!)).toBeUndefined();
    expect(await p.lookup(deleted!)).toEqual({ allowed: false });
    expect(await p.lookup(withPassword!)).toEqual({ allowed: true, passwordHash: hash });
    expect(db.reads()).toBe(6);
  });

  it("answers from the cache, synchronously, until the TTL (60 s allowed, 10 s otherwise)", async () => {
    const repo = api();
    const [allowed, unknown] = [uid(), uid()];
    await repo.provision(allowed, { provisioned: true, labels: {}, now: now() });
    const db = countingDynamo();
    let clock = 1_000_000;
    const p = source({ dynamodb: () => db.sender, now: () => clock });
    await p.lookup(allowed);
    await p.lookup(unknown);
    expect(db.reads()).toBe(2);

    clock += 9_999;
    expect(p.lookup(allowed)).toEqual({ allowed: true }); // not a Promise: the core stays sync
    expect(p.lookup(unknown)).toBeUndefined();
    clock += 1;
    await p.lookup(unknown); // the negative entry expired
    expect(db.reads()).toBe(3);
    clock += 50_000;
    await p.lookup(allowed);
    expect(db.reads()).toBe(4);
    expect(p.counters()).toMatchObject({ hits: 2, misses: 4, reads: 4 });
  });

  it("shares one read between concurrent lookups of a device", async () => {
    const db = countingDynamo();
    const p = source({ dynamodb: () => db.sender });
    const id = uid();
    const answers = await Promise.all(Array.from({ length: 20 }, () => p.lookup(id)));
    expect(answers.every((a) => a === undefined)).toBe(true);
    expect(db.reads()).toBe(1);
    expect(p.counters()).toMatchObject({ coalesced: 19 });
  });

  it("invalidate() makes the next lookup read the change; a read in flight cannot restore the old answer", async () => {
    const repo = api();
    const id = uid();
    await repo.provision(id, { provisioned: true, labels: {}, now: now() });
    const db = countingDynamo();
    const p = source({ dynamodb: () => db.sender });
    expect(await p.lookup(id)).toEqual({ allowed: true });

    const stale = p.lookup(id); // cached: no read
    expect(stale).toEqual({ allowed: true });
    await repo.provision(id, { provisioned: false, labels: {}, now: now() });
    p.invalidate(id);
    expect(await p.lookup(id)).toEqual({ allowed: false });

    // A read started before a change, answered after the invalidation, is not cached. The read's
    // answer is held until the change and the invalidation are done (a gate on the sender), so
    // the order does not depend on how fast DynamoDB Local answers either call.
    let answered!: () => void;
    const readAnswered = new Promise<void>((r) => {
      answered = r;
    });
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const held = {
      send: async (command: object, opts?: unknown) => {
        const out = await (db.sender.send as (c: object, o?: unknown) => Promise<unknown>)(
          command,
          opts,
        );
        answered();
        await gate;
        return out;
      },
    } as unknown as DynamoSender;
    const gated = source({ dynamodb: () => held });
    const inFlight = gated.lookup(id);
    await readAnswered; // the table said `provisioned: false`
    await repo.provision(id, { provisioned: true, labels: {}, now: now() });
    gated.invalidate(id);
    release();
    expect(await inFlight).toEqual({ allowed: false });
    expect(await gated.lookup(id)).toEqual({ allowed: true });
    gated.close();
  });

  it("keeps at most maxNegativeEntries unknown devices", async () => {
    const db = countingDynamo();
    const p = createDynamoProvisioningSource(
      { devicesTable: backends().resources.tables.devices, maxNegativeEntries: 3 },
      { dynamodb: () => db.sender },
    );
    for (let i = 0; i < 5; i++) await p.lookup(uid());
    expect(p.counters()).toMatchObject({ size: 3, evictions: 2 });
  });

  it("verifies a device password against the stored hash, once per device and password", async () => {
    const repo = api();
    const id = uid();
    const hash = await hashDevicePassword("s3cret", { logN: 4, r: 8, p: 1 });
    await repo.provision(id, { provisioned: true, passwordHash: hash, labels: {}, now: now() });
    const db = countingDynamo();
    let verifications = 0;
    const p = source({
      dynamodb: () => db.sender,
      verify: (password, stored) => {
        verifications++;
        return verifyDevicePassword(password, stored);
      },
    });
    expect(await p.verifyPassword(id, "s3cret")).toBe(true);
    expect(await p.verifyPassword(id, "s3cret")).toBe(true);
    expect(await p.verifyPassword(id, "guess")).toBe(false);
    expect(await p.verifyPassword(id, "guess")).toBe(false);
    expect(verifications).toBe(2);
    // No hash stored: nothing to check.
    expect(await p.verifyPassword(uid(), "anything")).toBe(true);
  });

  it("rejects (and caches nothing) when the table cannot be read", async () => {
    const p = createDynamoProvisioningSource(
      { devicesTable: "no-such-table" },
      { dynamodb: () => backends().clients.dynamodb },
    );
    const id = uid();
    await expect(p.lookup(id)).rejects.toThrow();
    await expect(p.lookup(id)).rejects.toThrow();
    expect(p.counters()).toMatchObject({ reads: 2, readErrors: 2, size: 0 });
  });
});
