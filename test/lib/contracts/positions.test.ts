import { describe, expect, it } from "vitest";
import {
  base64Bytes,
  MAX_PASSTHROUGH_BYTES,
  PassthroughParams,
} from "../../../lib/contracts/passthrough.ts";
import {
  arcCentisecondsToDegrees,
  deviceTimeToEpoch,
  parseZoneOffset,
  positionSortKey,
} from "../../../lib/contracts/positions.ts";

describe("ehome-2.0 §2.9 GPS coordinates: 1/100 arc-second → signed decimal degrees", () => {
  it("converts the FE capture's longitude 43713595 E to 121.426653°", () => {
    expect(arcCentisecondsToDegrees(43_713_595, "E", "longitude")).toBe(121.426653);
  });

  it("makes W and S negative, E and N positive", () => {
    // 30°15'36.00" = 30×360000 + 15×6000 + 36×100
    const value = 30 * 360_000 + 15 * 6000 + 3600;
    expect(arcCentisecondsToDegrees(value, "N", "latitude")).toBe(30.26);
    expect(arcCentisecondsToDegrees(value, "S", "latitude")).toBe(-30.26);
    expect(arcCentisecondsToDegrees(value, "w", "longitude")).toBe(-30.26);
    expect(arcCentisecondsToDegrees("0", "W", "longitude")).toBe(0);
  });

  it("refuses a wrong hemisphere letter, a non-integer, and values beyond 180° / 90°", () => {
    expect(arcCentisecondsToDegrees(100, "N", "longitude")).toBeUndefined();
    expect(arcCentisecondsToDegrees("12.5", "E", "longitude")).toBeUndefined();
    expect(arcCentisecondsToDegrees(180 * 360_000 + 1, "E", "longitude")).toBeUndefined();
    expect(arcCentisecondsToDegrees(90 * 360_000 + 1, "N", "latitude")).toBeUndefined();
  });
});

describe("GPS Time with TimeZone → UTC instant", () => {
  it("reads the device's local time in its zone", () => {
    const t = deviceTimeToEpoch("2026-11-24 16:30:05", "+08:00");
    expect(t).toEqual({ epochMs: Date.parse("2026-11-24T08:30:05Z"), zoneKnown: true });
    expect(deviceTimeToEpoch("2026-11-24 03:00:00", "-0530")?.epochMs).toBe(
      Date.parse("2026-11-24T08:30:00Z"),
    );
  });

  it("reads the time as UTC when the zone is missing or unreadable, and refuses impossible dates", () => {
    expect(deviceTimeToEpoch("2026-11-24 08:00:00", undefined)).toEqual({
      epochMs: Date.parse("2026-11-24T08:00:00Z"),
      zoneKnown: false,
    });
    expect(deviceTimeToEpoch("2026-02-31 08:00:00", "+08:00")).toBeUndefined();
    expect(parseZoneOffset("GMT+08:00")).toBe(480);
    expect(parseZoneOffset("+15:00")).toBeUndefined();
  });

  it("sorts stored positions by time, then Sequence", () => {
    const keys = [
      positionSortKey("2026-11-24T08:00:01.000Z", 2),
      positionSortKey("2026-11-24T08:00:00.000Z", 10),
      positionSortKey("2026-11-24T08:00:00.000Z", 9),
    ].sort();
    expect(keys).toEqual([
      "2026-11-24T08:00:00.000Z#0000000009",
      "2026-11-24T08:00:00.000Z#0000000010",
      "2026-11-24T08:00:01.000Z#0000000002",
    ]);
  });
});

describe("ehome-2.0 §8 TRANSPARENT params: base64 Data of at most 1024 bytes", () => {
  const data = (bytes: number) => Buffer.alloc(bytes, 7).toString("base64");

  it("accepts 1-1024 decoded bytes on channels 1-256", () => {
    expect(PassthroughParams.safeParse({ channel: 1, data: data(1) }).success).toBe(true);
    expect(
      PassthroughParams.safeParse({ channel: 256, data: data(MAX_PASSTHROUGH_BYTES) }).success,
    ).toBe(true);
    expect(base64Bytes(data(1024))).toBe(1024);
  });

  it("refuses 1025 bytes, bad base64, empty data, channel 0 and unknown fields", () => {
    for (const bad of [
      { channel: 1, data: data(MAX_PASSTHROUGH_BYTES + 1) },
      { channel: 1, data: "not base64!" },
      { channel: 1, data: "QUJD=" },
      { channel: 1, data: "" },
      { channel: 0, data: data(3) },
      { channel: 1, data: data(3), extra: true },
    ]) {
      expect(PassthroughParams.safeParse(bad).success, JSON.stringify(bad).slice(0, 40)).toBe(
        false,
      );
    }
  });
});
