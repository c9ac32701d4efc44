import { describe, expect, it } from "vitest";
import { DEFAULT_VIEW } from "../../../edge-agent/signalling/catalogue.ts";
import {
  createSessionStore,
  type DeviceSession,
  formatAddress,
  isDuplicate,
  newSession,
  RECENT_SEQUENCES,
  takeSequence,
} from "../../../edge-agent/signalling/sessions.ts";

const make = (deviceId: string, now: number, port = 40000, host = "10.0.0.1") =>
  newSession({
    deviceId,
    host,
    port,
    encoding: "GB2312",
    view: DEFAULT_VIEW,
    protocolVersion: "2.0",
    firmwareVersion: "V5.5.0 build 180101",
    devType: "31",
    netUnitType: "PU",
    now,
    firstSequence: 123456,
  });

describe("session store", () => {
  it("expires on a lazy timing wheel: keepalives only write lastSeen; silence past the timeout expires", () => {
    let now = 1_000_000;
    const expired: string[] = [];
    const store = createSessionStore({
      timeoutMs: 90_000,
      tickMs: 1000,
      now: () => now,
      onExpire: (s) => expired.push(s.deviceId),
    });
    const a = make("a", now, 1);
    const b = make("b", now, 2);
    store.add(a);
    store.add(b);
    for (let t = 0; t < 300; t++) {
      now += 1000;
      if (t % 15 === 0) a.lastSeen = now; // a keeps talking
      store.sweep();
    }
    expect(expired).toEqual(["b"]);
    expect(store.get("a")).toBe(a);
    expect(store.get("b")).toBeUndefined();
    expect(store.byAddress("10.0.0.1", 2)).toBeUndefined();
    expect(b.closed).toBe(true);
  });

  it("expires no earlier than the deadline and at most two ticks after it", () => {
    let now = 5_000_123;
    let expiredAt = 0;
    const store = createSessionStore({
      timeoutMs: 10_000,
      tickMs: 1000,
      now: () => now,
      onExpire: () => (expiredAt = now),
    });
    store.add(make("x", now));
    const deadline = now + 10_000;
    while (!expiredAt) {
      now += 100;
      if (now % 1000 < 100) store.sweep();
    }
    expect(expiredAt).toBeGreaterThanOrEqual(deadline);
    expect(expiredAt - deadline).toBeLessThanOrEqual(2000);
  });

  it("replacing a session closes the old one and moves the address index", () => {
    const store = createSessionStore({ timeoutMs: 1000, onExpire: () => {} });
    const old = make("d", 0, 1000);
    store.add(old);
    const fresh = make("d", 0, 2000);
    expect(store.add(fresh)).toBe(old);
    expect(old.closed).toBe(true);
    expect(store.byAddress("10.0.0.1", 1000)).toBeUndefined();
    expect(store.byAddress("10.0.0.1", 2000)).toBe(fresh);
    store.move(fresh, "10.0.0.2", 3000);
    expect(store.byAddress("10.0.0.1", 2000)).toBeUndefined();
    expect(store.byAddress("10.0.0.2", 3000)).toBe(fresh);
    expect(store.remove(old)).toBe(false);
    expect(store.size).toBe(1);
  });

  it("remembers the last few device Sequences for de-duplication", () => {
    const s = make("r", 0);
    expect(isDuplicate(s, 5)).toBe(false);
    expect(isDuplicate(s, 5)).toBe(true);
    for (let i = 0; i < RECENT_SEQUENCES; i++) isDuplicate(s, 100 + i);
    expect(isDuplicate(s, 5)).toBe(false); // pushed out of the ring
  });

  it("platform Sequences advance and wrap below 2^31 (ehome-2.0 §3.2)", () => {
    const s: DeviceSession = make("w", 0);
    s.nextSequence = 2 ** 31 - 1;
    expect(takeSequence(s)).toBe(2 ** 31 - 1);
    expect(takeSequence(s)).toBe(0);
  });

  it("formats IPv6 addresses with brackets", () => {
    expect(formatAddress("::1", 7660)).toBe("[::1]:7660");
    expect(formatAddress("10.0.0.1", 7660)).toBe("10.0.0.1:7660");
  });

  it("holds 100k sessions in well under 2 KiB each", () => {
    const store = createSessionStore({ timeoutMs: 90_000, onExpire: () => {} });
    const n = 100_000;
    const before = process.memoryUsage().heapUsed;
    for (let i = 0; i < n; i++) {
      // Fresh strings per session, as the decoder produces them for real devices.
      const s = make(
        `device-${i}-${"x".repeat(8)}`,
        Date.now(),
        10_000 + (i % 50_000),
        `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`,
      );
      s.firmwareVersion = `V5.5.${i % 10} build 180101`;
      isDuplicate(s, i);
      store.add(s);
    }
    const perSession = (process.memoryUsage().heapUsed - before) / n;
    expect(store.size).toBe(n);
    // Includes garbage not yet collected, so this is an upper bound.
    expect(perSession).toBeLessThan(2048);
    store.close();
  });
});
