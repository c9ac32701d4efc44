import { GetCommand } from "@aws-sdk/lib-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { verifyDevicePassword } from "../../../functions/shared/device-password.ts";
import type { DeviceItem } from "../../../functions/shared/items.ts";
import { useLocalBackends } from "../../helpers/local-backends.ts";
import { type ApiHarness, createApiHarness, deviceEvent, T0 } from "./harness.ts";

const backends = useLocalBackends();
let api: ApiHarness;

beforeAll(async () => {
  api = createApiHarness(backends());
  // A small fleet: three online (two models, two firmwares), two offline.
  const fleet = [
    ["fleet-1", "31", "V5.4.0", true],
    ["fleet-2", "31", "V5.5.0", true],
    ["fleet-3", "42", "V5.4.0", true],
    ["fleet-4", "31", "V5.4.0", false],
    ["fleet-5", "42", "V5.5.0", false],
  ] as const;
  for (const [deviceId, devType, firmwareVersion, online] of fleet) {
    await api.deviceEvents(
      deviceEvent(deviceId, 1, {
        type: "registered",
        address: "198.51.100.1:5000",
        devType,
        firmwareVersion,
      }),
      deviceEvent(deviceId, 2, {
        type: "device-info",
        serialNumber: `SN-${deviceId}`,
        channelCount: 1,
      }),
      ...(online
        ? []
        : [deviceEvent(deviceId, 3, { type: "offline", reason: "keepalive-timeout" })]),
    );
  }
});
afterAll(() => api?.close());

async function listAll(query: string, limit: number): Promise<string[]> {
  const ids: string[] = [];
  let cursor: string | undefined;
  for (let page = 0; page < 20; page++) {
    const sep = query ? "&" : "";
    const url = `/devices?${query}${sep}limit=${limit}${cursor ? `&cursor=${cursor}` : ""}`;
    const { status, body } = await api.request("GET", url);
    expect(status).toBe(200);
    expect(body.items.length).toBeLessThanOrEqual(limit);
    ids.push(...body.items.map((d: { deviceId: string }) => d.deviceId));
    cursor = body.nextCursor;
    if (!cursor) return ids.filter((id) => id.startsWith("fleet-")).sort();
  }
  throw new Error("pagination did not end");
}

describe("GET /devices", () => {
  it("pages through every device exactly once with an opaque cursor", async () => {
    expect(await listAll("", 2)).toEqual(["fleet-1", "fleet-2", "fleet-3", "fleet-4", "fleet-5"]);
  });

  it("filters by status (through the status index), model and firmware", async () => {
    expect(await listAll("status=online", 2)).toEqual(["fleet-1", "fleet-2", "fleet-3"]);
    expect(await listAll("status=offline", 1)).toEqual(["fleet-4", "fleet-5"]);
    expect(await listAll("model=31", 1)).toEqual(["fleet-1", "fleet-2", "fleet-4"]);
    expect(await listAll("status=online&firmware=V5.4.0", 1)).toEqual(["fleet-1", "fleet-3"]);
  });

  it("refuses a cursor taken from a listing with other filters", async () => {
    const first = await api.request("GET", "/devices?status=online&limit=1");
    const { status, body } = await api.request(
      "GET",
      `/devices?status=offline&limit=1&cursor=${first.body.nextCursor}`,
    );
    expect(status).toBe(422);
    expect(body).toMatchObject({
      code: "VALIDATION_FAILED",
      details: [{ in: "query", path: "cursor" }],
    });
  });

  it("answers 422 with field details for a bad query", async () => {
    const { status, body } = await api.request("GET", "/devices?limit=101&status=sleeping");
    expect(status).toBe(422);
    expect(body.details).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ in: "query", path: "limit" }),
        expect.objectContaining({ in: "query", path: "status" }),
      ]),
    );
  });
});

describe("GET /devices/{deviceId} and its presence history", () => {
  it("returns the registry view of a device", async () => {
    const { status, body } = await api.request("GET", "/devices/fleet-4");
    expect(status).toBe(200);
    expect(body).toMatchObject({
      deviceId: "fleet-4",
      status: "offline",
      offlineReason: "keepalive-timeout",
      devType: "31",
      firmwareVersion: "V5.4.0",
      serialNumber: "SN-fleet-4",
      channelCount: 1,
      provisioned: false,
      passwordRequired: false,
      labels: {},
    });
    expect(body).not.toHaveProperty("presenceSeq");
  });

  it("answers 404 DEVICE_NOT_FOUND for an unknown device", async () => {
    const { status, body } = await api.request("GET", "/devices/nope");
    expect(status).toBe(404);
    expect(body).toEqual({ code: "DEVICE_NOT_FOUND", message: "no device nope" });
  });

  it("lists presence transitions newest first, one page at a time", async () => {
    await api.deviceEvents(
      deviceEvent("fleet-4", 10, { type: "registered", address: "203.0.113.1:1" }),
    );
    const first = await api.request("GET", "/devices/fleet-4/presence?limit=2");
    expect(first.status).toBe(200);
    expect(first.body.items.map((e: { type: string }) => e.type)).toEqual([
      "registered",
      "offline",
    ]);
    expect(first.body.items[1]).toMatchObject({ status: "offline", reason: "keepalive-timeout" });
    const second = await api.request(
      "GET",
      `/devices/fleet-4/presence?limit=2&cursor=${first.body.nextCursor}`,
    );
    expect(second.body.items.map((e: { type: string }) => e.type)).toEqual(["registered"]);
    expect(second.body.nextCursor).toBeUndefined();
  });
});

describe("provisioning", () => {
  async function rawDevice(deviceId: string): Promise<DeviceItem | undefined> {
    const out = await api.clients.documentClient.send(
      new GetCommand({ TableName: backends().resources.tables.devices, Key: { deviceId } }),
    );
    return out.Item as DeviceItem | undefined;
  }

  it("PUT creates, then replaces; stores only a scrypt hash; tells every live agent", async () => {
    const a = await api.startAgent("prov-a");
    const b = await api.startAgent("prov-b");
    const gone = await api.startAgent("prov-gone", -10);

    const created = await api.request("PUT", "/devices/new-cam", {
      allowed: true,
      password: "12345abc",
      labels: { site: "depot-3" },
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      deviceId: "new-cam",
      status: "never-seen",
      provisioned: true,
      passwordRequired: true,
      labels: { site: "depot-3" },
    });
    expect(JSON.stringify(created.body)).not.toContain("scrypt");
    const stored = await rawDevice("new-cam");
    expect(stored?.passwordHash).toMatch(/^scrypt\$/);
    await expect(verifyDevicePassword("12345abc", stored!.passwordHash!)).resolves.toBe(true);

    const note = { kind: "provisioning-changed", deviceId: "new-cam" };
    expect(await api.drainAgentQueue(a)).toEqual([note]);
    expect(await api.drainAgentQueue(b)).toEqual([note]);
    expect(await api.drainAgentQueue(gone)).toEqual([]);

    const replaced = await api.request("PUT", "/devices/new-cam", { allowed: false });
    expect(replaced.status).toBe(200);
    expect(replaced.body).toMatchObject({
      provisioned: false,
      passwordRequired: false,
      labels: {},
    });
    expect((await rawDevice("new-cam"))?.passwordHash).toBeUndefined();
  });

  it("PUT keeps what the registry knows about a registered device", async () => {
    const { status, body } = await api.request("PUT", "/devices/fleet-1", { allowed: true });
    expect(status).toBe(200);
    expect(body).toMatchObject({ status: "online", serialNumber: "SN-fleet-1", provisioned: true });
  });

  it("DELETE deprovisions: 204, then 404, agents told, and late events cannot resurrect it", async () => {
    const agent = await api.startAgent("del-a");
    await api.deviceEvents(
      deviceEvent("doomed", 1, { type: "registered", address: "198.51.100.9:1" }),
    );
    expect((await api.request("PUT", "/devices/doomed", { allowed: true })).status).toBe(200);
    await api.drainAgentQueue(agent);

    const deleted = await api.request("DELETE", "/devices/doomed");
    expect(deleted.status).toBe(204);
    expect(await api.drainAgentQueue(agent)).toEqual([
      { kind: "provisioning-changed", deviceId: "doomed" },
    ]);
    // The agent drops the session and reports it; a coalesced last-seen was already in flight.
    await api.deviceEvents(
      deviceEvent("doomed", 2, { type: "offline", reason: "deprovisioned" }),
      deviceEvent("doomed", 3, { type: "last-seen", lastSeen: new Date(T0 + 3000).toISOString() }),
    );
    expect((await api.request("GET", "/devices/doomed")).status).toBe(404);
    const ids = await listAll("", 100);
    expect(ids).not.toContain("doomed");
    expect((await api.request("DELETE", "/devices/doomed")).body.code).toBe("DEVICE_NOT_FOUND");
    // The device's record holds nothing but the tombstone: no provisioning, so REGISTER is refused.
    expect(await rawDevice("doomed")).toEqual({
      deviceId: "doomed",
      deletedAt: expect.any(String),
    });
  });

  it("answers 422 with field details for an invalid provisioning body", async () => {
    const { status, body } = await api.request("PUT", "/devices/x", {
      allowed: "yes",
      password: "p".repeat(33),
      labels: { "bad key": "v" },
      extra: 1,
    });
    expect(status).toBe(422);
    expect(body.code).toBe("VALIDATION_FAILED");
    const paths = body.details.map((d: { path: string }) => d.path);
    expect(paths).toEqual(expect.arrayContaining(["allowed", "password", "labels.bad key"]));
  });
});
