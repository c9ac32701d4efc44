import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { alarmIdFor } from "../../../functions/alarms/model.ts";
import type { AlarmEvent } from "../../../lib/contracts/alarms.ts";
import { useLocalBackends } from "../../helpers/local-backends.ts";
import { alarmEvent, pictureEvent, videoEvent } from "../alarms/fixtures.ts";
import { type ApiHarness, createApiHarness, deviceEvent, type Json } from "./harness.ts";

const backends = useLocalBackends();
let api: ApiHarness;
// Recent enough that the alarm with missing media is still inside its 120 s deadline.
const BASE = Date.now() - 30_000;
const at = (seconds: number) => new Date(BASE + seconds * 1000).toISOString();

/** 14 alarms: cam-x at even seconds, cam-y at odd; every third is type 3; some with media. */
const alarms: AlarmEvent[] = Array.from({ length: 14 }, (_, i) =>
  alarmEvent(
    i % 2 === 0 ? "cam-x" : "cam-y",
    100 + i,
    i === 4 ? { picIds: ["p-4a", "p-4b"], videoIds: ["v-4"] } : {},
    {
      receivedAt: at(i),
      alarmType: i % 3 === 0 ? 3 : 1,
      alarmTime: `2026-11-24 05:00:${String(i).padStart(2, "0")}`,
    },
  ),
);
const idOf = (e: AlarmEvent) => alarmIdFor(e.deviceId, e.sequence, e.alarmTime);
const newestFirst = (events: AlarmEvent[]) => [...events].reverse().map(idOf);

beforeAll(async () => {
  api = createApiHarness(backends());
  await api.deviceEvents(
    deviceEvent("cam-x", 1, { type: "registered", address: "198.51.100.1:5000" }),
    deviceEvent("cam-y", 1, { type: "registered", address: "198.51.100.2:5000" }),
  );
  await api.alarmEvents(...alarms);
  await api.alarmEvents(pictureEvent("cam-x", "p-4a"), videoEvent("cam-x", "v-4"));
});
afterAll(() => api?.close());

/** Follows `nextCursor` from `path` and returns every alarm id, in order. */
async function all(path: string): Promise<string[]> {
  const ids: string[] = [];
  let cursor: string | undefined;
  for (let page = 0; page < 50; page++) {
    const sep = path.includes("?") ? "&" : "?";
    const url = cursor ? `${path}${sep}cursor=${encodeURIComponent(cursor)}` : path;
    const { status, body } = await api.request("GET", url);
    expect(status, url).toBe(200);
    ids.push(...body.items.map((a: Json) => a.alarmId));
    cursor = body.nextCursor;
    if (!cursor) return ids;
  }
  throw new Error("too many pages");
}

describe("GET /alarms", () => {
  it("lists every alarm newest first across pages, each once", async () => {
    const first = await api.request("GET", "/alarms?limit=5");
    expect(first.body.items).toHaveLength(5);
    expect(first.body.nextCursor).toBeTypeOf("string");
    expect(await all("/alarms?limit=5")).toEqual(newestFirst(alarms));
  });

  it("filters by device, type, state and time range, and the filters combine", async () => {
    expect(await all("/alarms?deviceId=cam-y&limit=3")).toEqual(
      newestFirst(alarms.filter((a) => a.deviceId === "cam-y")),
    );
    expect(await all("/alarms?type=3&limit=2")).toEqual(
      newestFirst(alarms.filter((a) => a.alarmType === 3)),
    );
    expect(await all(`/alarms?from=${at(3)}&to=${at(8)}&limit=4`)).toEqual(
      newestFirst(alarms.slice(3, 9)),
    );
    expect(await all(`/alarms?deviceId=cam-x&type=3&from=${at(1)}`)).toEqual(
      newestFirst(alarms.filter((a, i) => i >= 1 && a.deviceId === "cam-x" && a.alarmType === 3)),
    );
    expect(await all("/alarms?state=open")).toEqual([idOf(alarms[4]!)]);
    expect(await all("/alarms?state=complete&limit=4")).toEqual(
      newestFirst(alarms.filter((_, i) => i !== 4)),
    );
  });

  it("lists media without URLs", async () => {
    const { body } = await api.request("GET", "/alarms?deviceId=cam-x&state=open");
    const [item] = body.items;
    expect(item.pictures[0]).toMatchObject({ picId: "p-4a", attached: true });
    expect(item.pictures[0].url).toBeUndefined();
  });

  it("refuses a cursor of another listing or filter, and bad filters (422)", async () => {
    const { body } = await api.request("GET", "/alarms?limit=2");
    const other = await api.request("GET", `/alarms?type=1&limit=2&cursor=${body.nextCursor}`);
    expect(other.status).toBe(422);
    const bad = await api.request("GET", "/alarms?state=closed&from=yesterday");
    expect(bad.status).toBe(422);
    expect(bad.body.details.map((d: Json) => d.path).sort()).toEqual(["from", "state"]);
  });
});

describe("GET /devices/{deviceId}/alarms", () => {
  it("lists one device's alarms newest first, with the same filters", async () => {
    expect(await all("/devices/cam-x/alarms?limit=3")).toEqual(
      newestFirst(alarms.filter((a) => a.deviceId === "cam-x")),
    );
    expect(await all("/devices/cam-x/alarms?type=3")).toEqual(
      newestFirst(alarms.filter((a) => a.deviceId === "cam-x" && a.alarmType === 3)),
    );
  });

  it("answers 404 DEVICE_NOT_FOUND for an unknown device", async () => {
    const { status, body } = await api.request("GET", "/devices/nobody/alarms");
    expect(status).toBe(404);
    expect(body.code).toBe("DEVICE_NOT_FOUND");
  });
});

describe("GET /alarms/{alarmId}", () => {
  it("returns the alarm with a presigned URL for each attached picture and video, and the missing ids", async () => {
    const { status, body } = await api.request("GET", `/alarms/${idOf(alarms[4]!)}`);
    expect(status).toBe(200);
    expect(body).toMatchObject({
      deviceId: "cam-x",
      sequence: 104,
      alarmType: 1,
      alarmAction: "start",
      state: "open",
      missing: { picIds: ["p-4b"], videoIds: [] },
    });
    const [a, b] = body.pictures;
    expect(a).toMatchObject({ picId: "p-4a", attached: true, contentType: "image/jpeg" });
    expect(new URL(a.url).searchParams.get("response-content-type")).toBe("image/jpeg");
    expect(new URL(a.url).searchParams.get("X-Amz-Expires")).toBe("900");
    expect(b).toEqual({ picId: "p-4b", attached: false });
    const [v] = body.videos;
    expect(new URL(v.url).searchParams.get("response-content-type")).toBe("video/mp2p");
  });

  it("reports partial once the deadline has passed, before the sweep writes it, and lists it under state=partial", async () => {
    const id = idOf(alarms[4]!);
    api.clock.advance(3 * 3600_000);
    try {
      expect((await api.request("GET", `/alarms/${id}`)).body.state).toBe("partial");
      expect(await all("/alarms?state=partial")).toEqual([id]);
      expect(await all("/alarms?state=open")).toEqual([]);
      await api.sweep();
      expect((await api.request("GET", `/alarms/${id}`)).body).toMatchObject({
        state: "partial",
        partialAt: expect.any(String),
      });
    } finally {
      api.clock.advance(-3 * 3600_000);
    }
  });

  it("answers 404 ALARM_NOT_FOUND for an unknown id", async () => {
    const { status, body } = await api.request("GET", "/alarms/al-0");
    expect(status).toBe(404);
    expect(body.code).toBe("ALARM_NOT_FOUND");
  });
});
