import { describe, expect, it } from "vitest";
import {
  createDeviceDataHandler,
  createDeviceDataService,
  DEFAULT_DEVICE_DATA_CONFIG,
  deviceDataConfigFromEnv,
} from "../../../functions/device-data/handler.ts";
import type { PassthroughItem, PositionItem } from "../../../functions/device-data/items.ts";
import type { DeviceDataRepository } from "../../../functions/device-data/repository.ts";
import { ConfigError } from "../../../functions/shared/env.ts";
import type { Position } from "../../../lib/contracts/positions.ts";
import { silentLogger, sqsEvent } from "../support.ts";

/** The device-data function against an in-memory repository (tables: test/functions/api). */
function memoryRepository() {
  const positions = new Map<string, PositionItem>();
  const latest: { deviceId: string; position: Position }[] = [];
  const passthrough: PassthroughItem[] = [];
  let failNext = false;
  const repository: DeviceDataRepository = {
    async putPositions(items) {
      if (failNext) {
        failNext = false;
        throw new Error("throttled");
      }
      const keys = new Set(items.map((i) => i.at));
      expect(keys.size).toBe(items.length); // BatchWriteItem refuses repeated keys
      for (const item of items) positions.set(`${item.deviceId}|${item.at}`, item);
    },
    async setLatestPosition(deviceId, position) {
      latest.push({ deviceId, position });
      return true;
    },
    async putPassthrough(item) {
      passthrough.push(item);
    },
  };
  return { repository, positions, latest, passthrough, fail: () => (failNext = true) };
}

const NOW = Date.parse("2026-11-24T08:00:00Z");
const fix = (sequence: number, second: number, extra: Partial<Position> = {}): Position => ({
  time: new Date(NOW + second * 1000).toISOString(),
  sequence,
  longitude: 121.426653,
  latitude: 31.2,
  receivedAt: new Date(NOW).toISOString(),
  ...extra,
});
const message = (positions: Position[]) => ({
  type: "positions",
  eventId: "e-1",
  agentId: "agent-1",
  deviceId: "bus-1",
  positions,
});

describe("device-data function", () => {
  it("stores each fix once (RetransFlag copies share time#sequence), newest on the device record, with a TTL", async () => {
    const m = memoryRepository();
    const handler = createDeviceDataHandler({
      service: createDeviceDataService(DEFAULT_DEVICE_DATA_CONFIG, {
        repository: m.repository,
        now: () => NOW,
      }),
      logger: silentLogger,
    });
    const out = await handler(
      sqsEvent(
        message([fix(2, 1), fix(1, 0), fix(2, 1, { retransmitted: true }), fix(3, 1)]),
        message([fix(1, 0, { retransmitted: true })]),
      ),
    );
    expect(out.batchItemFailures).toEqual([]);
    expect([...m.positions.keys()].sort()).toEqual([
      "bus-1|2026-11-24T08:00:00.000Z#0000000001",
      "bus-1|2026-11-24T08:00:01.000Z#0000000002",
      "bus-1|2026-11-24T08:00:01.000Z#0000000003",
    ]);
    const stored = m.positions.get("bus-1|2026-11-24T08:00:01.000Z#0000000002")!;
    expect(stored.retransmitted).toBeUndefined();
    expect(stored.expiresAt).toBe(NOW / 1000 + DEFAULT_DEVICE_DATA_CONFIG.positionsTtlSeconds);
    expect(m.latest[0]).toMatchObject({ deviceId: "bus-1", position: { sequence: 3 } });
    expect(m.latest[0]!.position).not.toHaveProperty("at");
  });

  it("never puts a fix dated more than a day ahead on the device record", async () => {
    const m = memoryRepository();
    const service = createDeviceDataService(DEFAULT_DEVICE_DATA_CONFIG, {
      repository: m.repository,
      now: () => NOW,
    });
    const r = await service.applyPositions(
      message([fix(9, 3 * 86_400)]) as Parameters<typeof service.applyPositions>[0],
    );
    expect(r).toMatchObject({ stored: 1, latestMoved: false });
    expect(m.latest).toEqual([]);
  });

  it("returns a storage failure and a poison record as batch item failures, the others applied", async () => {
    const m = memoryRepository();
    const handler = createDeviceDataHandler({
      service: createDeviceDataService(DEFAULT_DEVICE_DATA_CONFIG, { repository: m.repository }),
      logger: silentLogger,
    });
    m.fail();
    const event = sqsEvent(
      message([fix(1, 0)]),
      "{not json",
      { type: "positions", deviceId: "bus-2", positions: [] },
      {
        type: "passthrough",
        eventId: "p-1",
        agentId: "agent-1",
        deviceId: "bus-3",
        sequence: 4,
        channel: 1,
        data: "AQID",
        receivedAt: new Date(NOW).toISOString(),
      },
    );
    const out = await handler(event);
    expect(out.batchItemFailures.map((f) => f.itemIdentifier)).toEqual(
      event.Records.slice(0, 3).map((r) => r.messageId),
    );
    expect(m.passthrough).toEqual([
      expect.objectContaining({ deviceId: "bus-3", at: "2026-11-24T08:00:00.000Z#0000000004" }),
    ]);
  });

  it("reads POSITIONS_TTL_DAYS and PASSTHROUGH_TTL_DAYS, refusing nonsense", () => {
    expect(deviceDataConfigFromEnv({ POSITIONS_TTL_DAYS: "90" }).positionsTtlSeconds).toBe(
      90 * 86_400,
    );
    expect(() => deviceDataConfigFromEnv({ PASSTHROUGH_TTL_DAYS: "0" })).toThrow(ConfigError);
    expect(() => deviceDataConfigFromEnv({ POSITIONS_TTL_DAYS: "a week" })).toThrow(ConfigError);
  });
});
