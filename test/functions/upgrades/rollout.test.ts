import { describe, expect, it } from "vitest";
import {
  currentRate,
  etaSeconds,
  insideWindow,
  refill,
} from "../../../functions/upgrades/rollout.ts";

const at = (hh: number, mm: number) => Date.UTC(2026, 0, 5, hh, mm);

describe("rollout arithmetic", () => {
  it("ramps baseRate × factor^⌊succeeded / step⌋, capped at maxPerMinute", () => {
    const rollout = {
      maxPerMinute: 50,
      maxConcurrent: 10,
      ramp: { baseRate: 5, factor: 2, stepAfterSuccesses: 10 },
    };
    expect([0, 9, 10, 20, 30, 40, 1000].map((s) => currentRate(rollout, s))).toEqual([
      5, 5, 10, 20, 40, 50, 50,
    ]);
    expect(currentRate({ maxPerMinute: 7, maxConcurrent: 1 }, 0)).toBe(7);
  });

  it("refills the bucket at the rate, capped at one minute of dispatches", () => {
    const start = { tokens: 0, refilledAt: 0 };
    expect(refill(start, 60, 10_000).tokens).toBeCloseTo(10);
    expect(refill(start, 60, 10 * 60_000).tokens).toBe(60);
    expect(refill(start, 0.5, 10 * 60_000).tokens).toBe(1);
    // A clock that goes backwards adds nothing.
    expect(refill({ tokens: 3, refilledAt: 5000 }, 60, 1000)).toEqual({
      tokens: 3,
      refilledAt: 5000,
    });
  });

  it("opens the maintenance window in UTC, wrapping midnight", () => {
    const night = { start: "22:00", end: "04:00" };
    expect(insideWindow(night, at(23, 30))).toBe(true);
    expect(insideWindow(night, at(3, 59))).toBe(true);
    expect(insideWindow(night, at(4, 0))).toBe(false);
    expect(insideWindow(night, at(12, 0))).toBe(false);
    expect(insideWindow({ start: "09:00", end: "17:00" }, at(9, 0))).toBe(true);
    expect(insideWindow({ start: "09:00", end: "17:00" }, at(17, 0))).toBe(false);
    expect(insideWindow(undefined, at(12, 0))).toBe(true);
  });

  it("estimates the time to dispatch the queued devices", () => {
    expect(etaSeconds(120, 60)).toBe(120);
    expect(etaSeconds(0, 60)).toBeUndefined();
  });
});
