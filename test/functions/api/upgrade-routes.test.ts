import { createHash, randomBytes } from "node:crypto";
import { HeadObjectCommand } from "@aws-sdk/client-s3";
import { DynamoDBDocumentClient, PutCommand } from "@aws-sdk/lib-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApp } from "../../../functions/api/app.ts";
import { createApiDepsFromEnv } from "../../../functions/api/handler.ts";
import { useLocalBackends } from "../../helpers/local-backends.ts";

/** Firmware store and campaign routes, composed from the environment as on Lambda. */

const backends = useLocalBackends();
let deps: ReturnType<typeof createApiDepsFromEnv>;
let app: ReturnType<typeof createApp>;

beforeAll(() => {
  deps = createApiDepsFromEnv(backends().env);
  app = createApp({ ...deps, logger: deps.logger.child({}) });
});
afterAll(() => deps?.close());

// biome-ignore lint/suspicious/noExplicitAny: tests navigate response JSON freely
type Json = any;
async function call(method: string, path: string, body?: unknown) {
  const res = await app.request(path, {
    method,
    ...(body === undefined
      ? {}
      : { body: JSON.stringify(body), headers: { "content-type": "application/json" } }),
  });
  return { status: res.status, body: (res.status === 204 ? undefined : await res.json()) as Json };
}

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

async function upload(url: string, bytes: Uint8Array) {
  const res = await fetch(url, { method: "PUT", body: bytes });
  expect(res.status).toBe(200);
}

async function putDevice(deviceId: string, fields: Record<string, unknown> = {}) {
  await DynamoDBDocumentClient.from(backends().clients.dynamodb).send(
    new PutCommand({
      TableName: backends().resources.tables.devices,
      Item: { deviceId, status: "online", firmwareVersion: "1.0", devType: "DS-X", ...fields },
    }),
  );
}

async function availableFirmware(version: string, bytes = randomBytes(4096)) {
  const created = await call("POST", "/firmware", {
    version,
    models: ["DS-X"],
    sha256: sha256(bytes),
    size: bytes.length,
  });
  expect(created.status).toBe(201);
  await upload(created.body.upload.url, bytes);
  const done = await call("POST", `/firmware/${created.body.firmware.firmwareId}/complete`);
  expect(done.status).toBe(200);
  return done.body;
}

describe("firmware store", () => {
  it("verifies size and SHA-256 after upload before the firmware is available (MD5 kept)", async () => {
    const bytes = randomBytes(100_000);
    const created = await call("POST", "/firmware", {
      version: "V5.5.0 build 200101",
      models: ["DS-X"],
      sha256: sha256(bytes).toUpperCase(),
      size: bytes.length,
    });
    expect(created.status).toBe(201);
    expect(created.body.firmware).toMatchObject({ state: "uploading", sha256: sha256(bytes) });
    const id = created.body.firmware.firmwareId;
    // Not uploaded yet: clear error, still uploading.
    const early = await call("POST", `/firmware/${id}/complete`);
    expect(early).toMatchObject({ status: 409, body: { code: "FIRMWARE_NOT_UPLOADED" } });
    await upload(created.body.upload.url, bytes);
    const done = await call("POST", `/firmware/${id}/complete`);
    expect(done.status).toBe(200);
    expect(done.body).toMatchObject({
      state: "available",
      md5: createHash("md5").update(bytes).digest("hex"),
    });
    // Idempotent.
    expect((await call("POST", `/firmware/${id}/complete`)).status).toBe(200);
    expect((await call("GET", `/firmware/${id}`)).body.state).toBe("available");
    const list = await call("GET", "/firmware");
    expect(list.body.items.map((f: Json) => f.firmwareId)).toContain(id);
  });

  it("rejects an upload whose SHA-256 differs: firmware rejected, object deleted, clear error", async () => {
    const bytes = randomBytes(2048);
    const created = await call("POST", "/firmware", {
      version: "2.0",
      models: [],
      sha256: sha256(randomBytes(16)),
      size: bytes.length,
    });
    const id = created.body.firmware.firmwareId;
    await upload(created.body.upload.url, bytes);
    const done = await call("POST", `/firmware/${id}/complete`);
    expect(done.status).toBe(422);
    expect(done.body).toMatchObject({
      code: "FIRMWARE_VERIFICATION_FAILED",
      details: { firmware: { state: "rejected" }, actual: { sha256: sha256(bytes) } },
    });
    expect((await call("GET", `/firmware/${id}`)).body.state).toBe("rejected");
    await expect(
      backends().clients.s3.send(
        new HeadObjectCommand({ Bucket: backends().resources.bucket, Key: `firmware/${id}.bin` }),
      ),
    ).rejects.toThrow();
    // A campaign over it is refused and nothing is created.
    await putDevice("rej-d1");
    const before = (await call("GET", "/upgrades")).body.items.length;
    const campaign = await call("POST", "/upgrades", {
      firmwareId: id,
      targets: { deviceIds: ["rej-d1"] },
      rollout: { maxPerMinute: 10, maxConcurrent: 5 },
    });
    expect(campaign).toMatchObject({ status: 409, body: { code: "FIRMWARE_NOT_AVAILABLE" } });
    expect((await call("GET", "/upgrades")).body.items.length).toBe(before);
  });

  it("rejects a wrong size and validates the declaration", async () => {
    const bytes = randomBytes(12);
    const created = await call("POST", "/firmware", {
      version: "2.1",
      models: [],
      sha256: sha256(bytes),
      size: 10,
    });
    // S3 refuses a body longer than the signed Content-Length; fauxqs stores it, so the
    // verification must catch it.
    await upload(created.body.upload.url, bytes);
    const done = await call("POST", `/firmware/${created.body.firmware.firmwareId}/complete`);
    expect(done).toMatchObject({
      status: 422,
      body: {
        code: "FIRMWARE_VERIFICATION_FAILED",
        message: "uploaded object is 12 bytes, declared 10",
        details: { expected: { size: 10 }, actual: { size: 12 } },
      },
    });
    const bad = await call("POST", "/firmware", {
      version: "x",
      models: [],
      sha256: "abc",
      size: 0,
    });
    expect(bad).toMatchObject({ status: 422, body: { code: "VALIDATION_FAILED" } });
  });
});

describe("campaign routes", () => {
  it("creates a campaign from a label filter, reports counts and pages devices; cancel; delete refused while in use", async () => {
    for (let i = 0; i < 5; i++) {
      await putDevice(`flt-d${i}`, { labels: { site: "north" } });
    }
    await putDevice("flt-other", { labels: { site: "south" } });
    await putDevice("flt-done", { labels: { site: "north" }, firmwareVersion: "3.0" });
    const fw = await availableFirmware("3.0");
    const created = await call("POST", "/upgrades", {
      firmwareId: fw.firmwareId,
      targets: { filter: { labels: { site: "north" } } },
      rollout: {
        maxPerMinute: 10,
        maxConcurrent: 5,
        ramp: { baseRate: 2, factor: 2, stepAfterSuccesses: 2 },
      },
      timeoutSeconds: 600,
      retries: { "timed-out": 1 },
      abort: [{ failureType: "any", thresholdPercent: 20, minExecuted: 10 }],
      maintenanceWindow: { start: "22:00", end: "04:00" },
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      state: "running",
      targetCount: 6,
      targetVersion: "3.0",
      currentRate: 2,
      counts: { queued: 5, skipped: 1 },
    });
    const id = created.body.campaignId;
    const page1 = await call("GET", `/upgrades/${id}/devices?limit=4`);
    expect(page1.body.items).toHaveLength(4);
    const page2 = await call(
      "GET",
      `/upgrades/${id}/devices?limit=4&cursor=${page1.body.nextCursor}`,
    );
    expect(page2.body.items).toHaveLength(2);
    expect(page2.body.nextCursor).toBeUndefined();
    expect(page2.body.items.find((e: Json) => e.deviceId === "flt-done")).toMatchObject({
      state: "skipped",
      bytesServed: 0,
    });

    const del = await call("DELETE", `/firmware/${fw.firmwareId}`);
    expect(del).toMatchObject({ status: 409, body: { code: "FIRMWARE_IN_USE" } });

    const canceled = await call("POST", `/upgrades/${id}/cancel`);
    expect(canceled.body).toMatchObject({ state: "canceled", counts: { canceled: 5, queued: 0 } });
    const again = await call("POST", `/upgrades/${id}/cancel`);
    expect(again).toMatchObject({ status: 409, body: { code: "CAMPAIGN_FINISHED" } });
    expect((await call("GET", "/upgrades/nope")).body.code).toBe("CAMPAIGN_NOT_FOUND");
  });

  it("refuses unknown devices and empty filters with nothing created", async () => {
    const fw = await availableFirmware("4.0");
    const missing = await call("POST", "/upgrades", {
      firmwareId: fw.firmwareId,
      targets: { deviceIds: ["nobody-1"] },
      rollout: { maxPerMinute: 10, maxConcurrent: 5 },
    });
    expect(missing).toMatchObject({
      status: 422,
      body: { code: "CAMPAIGN_NO_TARGETS", details: { missing: ["nobody-1"] } },
    });
    const empty = await call("POST", "/upgrades", {
      firmwareId: fw.firmwareId,
      targets: { filter: { model: "NO-SUCH-MODEL" } },
      rollout: { maxPerMinute: 10, maxConcurrent: 5 },
    });
    expect(empty.body.code).toBe("CAMPAIGN_NO_TARGETS");
    expect((await call("POST", "/upgrades", { firmwareId: "zz" })).status).toBe(422);
    // Not used by any campaign: deletable.
    expect((await call("DELETE", `/firmware/${fw.firmwareId}`)).status).toBe(204);
    expect((await call("GET", `/firmware/${fw.firmwareId}`)).body.code).toBe("FIRMWARE_NOT_FOUND");
  });
});
