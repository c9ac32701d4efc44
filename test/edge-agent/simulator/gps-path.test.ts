import { describe, expect, it } from "vitest";
import { advance, fixOf, startPathTrack } from "../../../edge-agent/simulator/gps.ts";
import { resolveOptions, SimulatorOptionsError } from "../../../edge-agent/simulator/options.ts";
import { seededRandom } from "../../../edge-agent/simulator/random.ts";
import { arcCentisecondsToDegrees } from "../../../lib/contracts/positions.ts";

const PATH = [
  [121.426653, 31.2],
  [121.43, 31.2],
  [121.43, 31.21],
] as const;

describe("simulator GPS along a path (ehome-2.0 §2.9 units)", () => {
  it("starts on the first waypoint: 121.426653 E goes out as 43713595 and reads back exactly", () => {
    const random = seededRandom(1);
    const fix = fixOf(startPathTrack(PATH, random), random);
    expect(fix).toMatchObject({ divisionEw: "E", longitude: 43_713_595, divisionNs: "N" });
    expect(arcCentisecondsToDegrees(fix.longitude, fix.divisionEw, "longitude")).toBe(121.426653);
  });

  it("drives along the segments, heading east then north, and turns back at the end", () => {
    const random = seededRandom(2);
    const track = startPathTrack(PATH, random);
    track.speedKmh = 36; // 10 m/s
    advance(track, 10, random); // 100 m east
    expect(track.lat).toBeCloseTo(31.2, 9);
    expect(track.lon).toBeGreaterThan(121.426653);
    expect(Math.round(track.heading)).toBe(90);
    for (let i = 0; i < 3; i++) advance(track, 10, random);
    // 400 m: past the corner (about 335 m east), now going north on the second leg.
    expect(track.lon).toBeCloseTo(121.43, 9);
    expect(Math.round(track.heading)).toBe(0);
    expect(track.lat).toBeGreaterThan(31.2);
    for (let i = 0; i < 11; i++) advance(track, 10, random);
    // 1.5 km: the end (1.11 km north of the corner) was reached; on the way back, south.
    expect(track.path?.step).toBe(-1);
    expect(Math.round(track.heading)).toBe(180);
    expect(track.lat).toBeLessThanOrEqual(31.21 + 1e-9);
    expect(track.lat).toBeGreaterThanOrEqual(31.2 - 1e-9);
  });

  it("refuses a path outside ±180 / ±90 or empty, and resolves the new options with defaults", () => {
    for (const bad of [[], [[181, 0]], [[0, 91]], [[0]]]) {
      expect(() =>
        resolveOptions({
          agent: { host: "127.0.0.1", port: 7660 },
          devices: 1,
          gpsPath: bad as unknown as [number, number][],
        }),
      ).toThrow(SimulatorOptionsError);
    }
    const o = resolveOptions({ agent: { host: "127.0.0.1", port: 7660 }, devices: 1 });
    expect(o).toMatchObject({
      gpsPath: undefined,
      gpsMaxReports: 0,
      gpsAnswerLossRate: 0,
      passthroughIntervalSeconds: 0,
    });
  });
});
