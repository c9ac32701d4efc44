import { GetCommand, ScanCommand } from "@aws-sdk/lib-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDeviceDataReadRepository } from "../../../functions/api/device-data-repository.ts";
import {
  createDeviceDataHandler,
  createDeviceDataService,
  DEFAULT_DEVICE_DATA_CONFIG,
} from "../../../functions/device-data/handler.ts";
import { createDeviceDataRepository } from "../../../functions/device-data/repository.ts";
import type { AgentRecord } from "../../../lib/contracts/agent-messages.ts";
import type { CommandResult } from "../../../lib/contracts/commands.ts";
import type { DeviceDataMessage, PassthroughMessage } from "../../../lib/contracts/passthrough.ts";
import type { Position } from "../../../lib/contracts/positions.ts";
import { useLocalBackends } from "../../helpers/local-backends.ts";
import { type FunctionClients, functionClients, silentLogger, sqsEvent } from "../support.ts";
import { type ApiHarness, createApiHarness, deviceEvent } from "./harness.ts";

/**
 * GPS tracks, passthrough and capabilities (issue 8) on DynamoDB Local + fauxqs: the api function,
 * the device-data function fed as the device-data queue would, and the agent played by draining
 * its queue and answering through the command-results handler.
 */
const backends = useLocalBackends();
let api: ApiHarness;
let agent: AgentRecord;
let feed: (...messages: DeviceDataMessage[]) => Promise<void>;
let clients: FunctionClients;

const T0 = Date.parse("2026-11-24T00:00:00Z");

beforeAll(async () => {
  const { tables } = backends().resources;
  clients = functionClients(backends());
  const documentClient = clients.documentClient;
  const deviceData = createDeviceDataReadRepository(
    {
      positionsTable: tables.positions,
      passthroughTable: tables.passthrough,
      devicesTable: tables.devices,
    },
    { documentClient },
  );
  api = createApiHarness(backends(), { deviceData });
  const handler = createDeviceDataHandler({
    service: createDeviceDataService(DEFAULT_DEVICE_DATA_CONFIG, {
      repository: createDeviceDataRepository(
        {
          devicesTable: tables.devices,
          positionsTable: tables.positions,
          passthroughTable: tables.passthrough,
        },
        { documentClient: api.clients.documentClient },
      ),
    }),
    logger: silentLogger,
  });
  feed = async (...messages) => {
    const out = await handler(sqsEvent(...messages));
    if (out.batchItemFailures.length > 0) throw new Error("device-data rejected a message");
  };
  agent = await api.startAgent("agent-dd");
  await api.deviceEvents(
    deviceEvent("gps-1", 1, { type: "registered", address: "198.51.100.1:5000" }, "agent-dd"),
    deviceEvent("pt-1", 1, { type: "registered", address: "198.51.100.2:5000" }, "agent-dd"),
    deviceEvent("cap-1", 1, { type: "registered", address: "198.51.100.3:5000" }, "agent-dd"),
    deviceEvent("off-1", 1, { type: "registered", address: "198.51.100.4:5000" }, "agent-dd"),
    deviceEvent("off-1", 2, { type: "offline", reason: "keepalive-timeout" }, "agent-dd"),
  );
});
afterAll(() => {
  api?.close();
  clients?.close();
});

/** Fix `i` of a track heading north-east from 121.426653 E, 31.2 N, one per second. */
function fix(i: number, overrides: Partial<Position> = {}): Position {
  return {
    time: new Date(T0 + i * 1000).toISOString(),
    sequence: 1000 + i,
    longitude: Math.round((121.426653 + i * 1e-5) * 1e6) / 1e6,
    latitude: Math.round((31.2 + i * 1e-5) * 1e6) / 1e6,
    direction: 45,
    speedKmh: 36,
    satellites: 9,
    receivedAt: new Date(Date.now()).toISOString(),
    ...overrides,
  };
}

let eventCounter = 0;
function positions(deviceId: string, list: Position[]): DeviceDataMessage {
  return {
    type: "positions",
    eventId: `pos-${++eventCounter}`,
    agentId: "agent-dd",
    deviceId,
    positions: list,
  };
}

async function agentAnswers(answer: (commandId: string, type: string) => Partial<CommandResult>) {
  for (let i = 0; i < 200; i++) {
    const [message] = await api.drainAgentQueue(agent);
    if (message?.kind === "command") {
      const result: CommandResult = {
        commandId: message.commandId,
        deviceId: message.deviceId,
        agentId: "agent-dd",
        state: "succeeded",
        at: new Date().toISOString(),
        ...answer(message.commandId, message.type),
      };
      await api.commandResult(result);
      return message;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error("no command reached the agent");
}

describe("GPS: positions stored by the device-data function, read by the API", () => {
  it("a 1,000-point track with resent copies comes back ordered and de-duplicated, across pages and as GeoJSON", async () => {
    const all = Array.from({ length: 1000 }, (_, i) => fix(i));
    // Shuffled batches of 100, and every 10th fix sent again as a RetransFlag 1 copy, some in
    // the same message and some in a later one (a redelivered or resent report).
    const shuffled = [...all].sort(
      (a, b) => ((a.sequence * 7919) % 1000) - ((b.sequence * 7919) % 1000),
    );
    const copies = all.filter((_, i) => i % 10 === 0).map((p) => ({ ...p, retransmitted: true }));
    for (let i = 0; i < shuffled.length; i += 90) {
      const batch = [...shuffled.slice(i, i + 90), ...copies.slice(i / 9, i / 9 + 10)];
      await feed(positions("gps-1", batch));
    }
    await feed(positions("gps-1", copies.slice(0, 50)));

    const { tables } = backends().resources;
    const stored = await api.clients.documentClient.send(
      new ScanCommand({ TableName: tables.positions, Select: "COUNT" }),
    );
    expect(stored.Count).toBe(1000);

    const seen: Position[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const qs = new URLSearchParams({ limit: "300", ...(cursor ? { cursor } : {}) });
      const page = await api.request("GET", `/devices/gps-1/track?${qs}`);
      expect(page.status).toBe(200);
      seen.push(...page.body.positions);
      cursor = page.body.nextCursor;
      pages++;
    } while (cursor);
    expect(pages).toBeGreaterThanOrEqual(4);
    expect(seen.map((p) => p.sequence)).toEqual(all.map((p) => p.sequence));
    expect(seen.map((p) => p.time)).toEqual(all.map((p) => p.time));
    expect(seen[0]).toMatchObject({ longitude: 121.426653, latitude: 31.2, speedKmh: 36 });

    const window = await api.request(
      "GET",
      `/devices/gps-1/track?start=${new Date(T0 + 100_000).toISOString()}&end=${new Date(T0 + 109_000).toISOString()}&format=geojson`,
    );
    expect(window.status).toBe(200);
    expect(window.body.type).toBe("Feature");
    expect(window.body.geometry.type).toBe("LineString");
    expect(window.body.geometry.coordinates).toHaveLength(10);
    expect(window.body.geometry.coordinates[0]).toEqual([all[100]!.longitude, all[100]!.latitude]);
    expect(window.body.properties.times[9]).toBe(all[109]!.time);
  });

  it("keeps the newest fix on the device record, never moving it back in time", async () => {
    const latest = await api.request("GET", "/devices/gps-1/position");
    expect(latest.status).toBe(200);
    expect(latest.body.position).toMatchObject({ sequence: 1999, time: fix(999).time });
    // An older fix arriving late does not replace it.
    await feed(positions("gps-1", [fix(5, { sequence: 1, time: fix(5).time })]));
    const after = await api.request("GET", "/devices/gps-1/position");
    expect(after.body.position.sequence).toBe(1999);
    const record = await api.clients.documentClient.send(
      new GetCommand({
        TableName: backends().resources.tables.devices,
        Key: { deviceId: "gps-1" },
      }),
    );
    expect(record.Item?.positionAt).toBe(fix(999).time);
    const device = await api.request("GET", "/devices/gps-1");
    expect(device.body).toMatchObject({
      positionAt: fix(999).time,
      position: { sequence: 1999, longitude: fix(999).longitude },
    });
    expect(device.body.position.positionKey).toBeUndefined();
  });

  it("answers null before a device's first fix; 404 for an unknown device; 422 for bad ranges and cursors", async () => {
    expect((await api.request("GET", "/devices/pt-1/position")).body).toEqual({
      deviceId: "pt-1",
      position: null,
    });
    for (const path of ["/devices/ghost/position", "/devices/ghost/track"]) {
      const r = await api.request("GET", path);
      expect(r.status, path).toBe(404);
      expect(r.body.code).toBe("DEVICE_NOT_FOUND");
    }
    for (const qs of ["start=yesterday", "limit=0", "limit=1001", "format=kml", "cursor=abc"]) {
      const r = await api.request("GET", `/devices/gps-1/track?${qs}`);
      expect(r.status, qs).toBe(422);
      expect(r.body.code).toBe("VALIDATION_FAILED");
    }
  });
});

describe("passthrough (TRANSPARENT) both directions", () => {
  it("POST ?wait sends a passthrough command and returns the device's reply data", async () => {
    const data = Buffer.from("AT+STATUS\r\n").toString("base64");
    const [response, command] = await Promise.all([
      api.request("POST", "/devices/pt-1/passthrough?wait=10", { channel: 2, data }),
      agentAnswers(() => ({
        result: { channel: 2, data: Buffer.from("OK\r\n").toString("base64") },
      })),
    ]);
    expect(command).toMatchObject({ type: "passthrough", params: { channel: 2, data } });
    expect(response.status).toBe(200);
    expect(response.body).toMatchObject({ type: "passthrough", state: "succeeded" });
    expect(Buffer.from(response.body.result.data, "base64").toString()).toBe("OK\r\n");
  });

  it("lists what the device sent, oldest first, strictly after `since`", async () => {
    const base = Date.now() - 60_000;
    const message = (i: number): PassthroughMessage => ({
      type: "passthrough",
      eventId: `pt-${i}`,
      agentId: "agent-dd",
      deviceId: "pt-1",
      sequence: 50 + i,
      channel: 1,
      data: Buffer.from(`reading ${i}`).toString("base64"),
      receivedAt: new Date(base + i * 1000).toISOString(),
    });
    await feed(message(2), message(0), message(1), message(1));
    const all = await api.request("GET", "/devices/pt-1/passthrough");
    expect(all.status).toBe(200);
    expect(all.body.messages.map((m: { sequence: number }) => m.sequence)).toEqual([50, 51, 52]);
    expect(Buffer.from(all.body.messages[0].data, "base64").toString()).toBe("reading 0");
    const since = await api.request(
      "GET",
      `/devices/pt-1/passthrough?since=${encodeURIComponent(message(0).receivedAt)}`,
    );
    expect(since.body.messages.map((m: { sequence: number }) => m.sequence)).toEqual([51, 52]);
  });

  it("refuses a wrong channel, oversize data, bad base64 and an unknown device before anything is recorded or sent", async () => {
    await api.drainAgentQueue(agent);
    const before = await api.clients.documentClient.send(
      new ScanCommand({ TableName: backends().resources.tables.commands, Select: "COUNT" }),
    );
    const ok = Buffer.from("x").toString("base64");
    const cases: [string, unknown, number, string][] = [
      ["/devices/pt-1/passthrough", { channel: 0, data: ok }, 422, "VALIDATION_FAILED"],
      ["/devices/pt-1/passthrough", { channel: 257, data: ok }, 422, "VALIDATION_FAILED"],
      ["/devices/pt-1/passthrough", { channel: "1", data: ok }, 422, "VALIDATION_FAILED"],
      [
        "/devices/pt-1/passthrough",
        { channel: 1, data: Buffer.alloc(1025).toString("base64") },
        422,
        "VALIDATION_FAILED",
      ],
      [
        "/devices/pt-1/passthrough",
        { channel: 1, data: "%%not-base64%%" },
        422,
        "VALIDATION_FAILED",
      ],
      ["/devices/pt-1/passthrough", { channel: 1 }, 422, "VALIDATION_FAILED"],
      ["/devices/ghost/passthrough", { channel: 1, data: ok }, 404, "DEVICE_NOT_FOUND"],
    ];
    for (const [path, body, status, code] of cases) {
      const r = await api.request("POST", path, body);
      expect(r.status, JSON.stringify(body).slice(0, 60)).toBe(status);
      expect(r.body.code).toBe(code);
    }
    expect((await api.request("GET", "/devices/ghost/passthrough")).status).toBe(404);
    expect((await api.request("GET", "/devices/pt-1/passthrough?since=soon")).status).toBe(422);
    const after = await api.clients.documentClient.send(
      new ScanCommand({ TableName: backends().resources.tables.commands, Select: "COUNT" }),
    );
    expect(after.Count).toBe(before.Count);
    expect(await api.drainAgentQueue(agent)).toEqual([]);
  });

  it("an offline device gets 409 DEVICE_OFFLINE", async () => {
    const r = await api.request("POST", "/devices/off-1/passthrough", {
      channel: 1,
      data: Buffer.from("x").toString("base64"),
    });
    expect(r.status).toBe(409);
    expect(r.body.code).toBe("DEVICE_OFFLINE");
  });
});

describe("capabilities (GetDevAbility): cached on the device record, refreshed on demand", () => {
  const answer = (channels: number) => ({
    result: {
      abilities: { channelNumber: channels, ptz: true },
      configXml: { DEVABILITY: { ChannelNumber: String(channels), PTZ: "true" } },
    },
  });

  it("asks the device the first time, then answers from the cache until ?refresh=true", async () => {
    const [first, command] = await Promise.all([
      api.request("GET", "/devices/cap-1/capabilities"),
      agentAnswers(() => answer(4)),
    ]);
    expect(command.type).toBe("capabilities");
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({
      source: "device",
      capabilities: { abilities: { channelNumber: 4, ptz: true } },
    });
    const fetchedAt = first.body.fetchedAt;
    expect(typeof fetchedAt).toBe("string");

    const cached = await api.request("GET", "/devices/cap-1/capabilities");
    expect(cached.body).toMatchObject({ source: "cache", fetchedAt });
    expect(await api.drainAgentQueue(agent)).toEqual([]);

    const [refreshed] = await Promise.all([
      api.request("GET", "/devices/cap-1/capabilities?refresh=true"),
      agentAnswers(() => answer(8)),
    ]);
    expect(refreshed.body).toMatchObject({
      source: "device",
      capabilities: { abilities: { channelNumber: 8 } },
    });
    expect(refreshed.body.fetchedAt >= fetchedAt).toBe(true);
    expect(
      (await api.request("GET", "/devices/cap-1/capabilities")).body.capabilities.abilities,
    ).toMatchObject({ channelNumber: 8 });
  });

  it("a fetch still running is 202 with its command; the next read caches its result", async () => {
    const pending = await api.request("GET", "/devices/cap-1/capabilities?refresh=true&wait=0");
    expect(pending.status).toBe(202);
    expect(pending.body).toMatchObject({
      source: "pending",
      capabilities: { abilities: { channelNumber: 8 } },
    });
    await agentAnswers(() => answer(16));
    const later = await api.request("GET", "/devices/cap-1/capabilities");
    expect(later.status).toBe(200);
    expect(later.body.capabilities.abilities.channelNumber).toBe(16);
  });

  it("unknown device 404, offline device 409, bad query 422", async () => {
    expect((await api.request("GET", "/devices/ghost/capabilities")).status).toBe(404);
    const offline = await api.request("GET", "/devices/off-1/capabilities");
    expect(offline.status).toBe(409);
    expect(offline.body.code).toBe("DEVICE_OFFLINE");
    expect((await api.request("GET", "/devices/cap-1/capabilities?refresh=yes")).status).toBe(422);
    expect((await api.request("GET", "/devices/cap-1/capabilities?wait=99")).status).toBe(422);
  });
});
