import { randomBytes } from "node:crypto";
import { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { afterEach, describe, expect, it } from "vitest";
import { createDynamoProvisioningSource } from "../../../edge-agent/cloud/dynamo-provisioning.ts";
import type { ResponseMessage } from "../../../edge-agent/signalling/codec/index.ts";
import { createDevicesRepository } from "../../../functions/api/devices-repository.ts";
import { hashDevicePassword } from "../../../functions/shared/device-password.ts";
import { eventually, useLocalBackends } from "../../helpers/local-backends.ts";
import { registerDatagram } from "../helpers/devices.ts";
import { type Harness, startHarness } from "../helpers/harness.ts";

/**
 * A device provisioned with a password through the API (`PUT /devices/{id}` stores only its
 * scrypt hash) must send it: against DynamoDB Local, the DynamoDB provisioning source's decision
 * carries the hash, and the core refuses a REGISTER without a password with 401 (issue 7,
 * docs/SECURITY.md §3.1). `EHOME_REQUIRE_PASSWORD=false` restores "checked only when sent".
 */

const backends = useLocalBackends();
const DEV = "10.1.1.1";
let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

async function provision(deviceId: string, password?: string) {
  const documentClient = DynamoDBDocumentClient.from(backends().clients.dynamodb, {
    marshallOptions: { removeUndefinedValues: true },
  });
  const repo = createDevicesRepository(
    { devicesTable: backends().resources.tables.devices },
    { documentClient },
  );
  await repo.provision(deviceId, {
    provisioned: true,
    ...(password === undefined
      ? {}
      : { passwordHash: await hashDevicePassword(password, { logN: 4, r: 8, p: 1 }) }),
    labels: {},
    now: new Date().toISOString(),
  });
}

async function start(env: Record<string, string> = {}) {
  const provisioning = createDynamoProvisioningSource(
    { devicesTable: backends().resources.tables.devices },
    { dynamodb: () => backends().clients.dynamodb },
  );
  h = await startHarness({ EHOME_AUTO_PROVISION: "false", ...env }, { provisioning });
  return h;
}

/** The answer to the n-th REGISTER sent to `port` (the lookup and scrypt are asynchronous). */
function nthAnswer(harness: Harness, port: number, n: number): Promise<ResponseMessage> {
  return eventually(async () => {
    const r = harness.sentTo(port, DEV).filter((m): m is ResponseMessage => m.kind === "response");
    return r[n - 1];
  });
}

const uid = () => `cam-${randomBytes(3).toString("hex")}`;

describe("a stored password is required (DynamoDB provisioning source)", () => {
  it("REGISTER without a password → 401, wrong → 401, right → 200; a device without one registers", async () => {
    const [locked, open] = [uid(), uid()];
    await provision(locked, "s3cret");
    await provision(open);
    const harness = await start();
    harness.transport.deliver(registerDatagram({ deviceId: locked, sequence: 1 }), DEV, 40001);
    expect(await nthAnswer(harness, 40001, 1)).toMatchObject({
      status: 401,
      description: "Password required",
    });
    harness.transport.deliver(
      registerDatagram({ deviceId: locked, sequence: 2, password: "wrong" }),
      DEV,
      40001,
    );
    expect((await nthAnswer(harness, 40001, 2)).status).toBe(401);
    harness.transport.deliver(
      registerDatagram({ deviceId: locked, sequence: 3, password: "s3cret" }),
      DEV,
      40001,
    );
    expect((await nthAnswer(harness, 40001, 3)).status).toBe(200);
    harness.transport.deliver(registerDatagram({ deviceId: open, sequence: 1 }), DEV, 40002);
    expect((await nthAnswer(harness, 40002, 1)).status).toBe(200);
    expect(harness.agent.metrics()).toMatchObject({ registers_unauthorized: 2 });
    expect(harness.eventsOf("registered").map((e) => e.deviceId)).toEqual([locked, open]);
  });

  it("EHOME_REQUIRE_PASSWORD=false: a REGISTER without a password is accepted", async () => {
    const locked = uid();
    await provision(locked, "s3cret");
    const harness = await start({ EHOME_REQUIRE_PASSWORD: "false" });
    harness.transport.deliver(registerDatagram({ deviceId: locked, sequence: 1 }), DEV, 40003);
    expect((await nthAnswer(harness, 40003, 1)).status).toBe(200);
  });
});
