import { afterEach, describe, expect, it, vi } from "vitest";
import { COMMANDS } from "../../../../edge-agent/signalling/catalogue.ts";
import { keepaliveDatagram, registerDatagram } from "../../helpers/devices.ts";
import { type Harness, startHarness } from "../../helpers/harness.ts";

const DEV = "10.1.1.1";
let h: Harness;
afterEach(async () => {
  await h?.close();
  vi.useRealTimers();
});

describe("KEEPALIVE (ehome-2.0 §2.2)", () => {
  it("answers 200 with Method CONTROL and the Sequence echoed", async () => {
    h = await startHarness();
    h.transport.deliver(registerDatagram({ deviceId: "cam-1", sequence: 21910 }), DEV, 40001);
    h.transport.deliver(keepaliveDatagram("cam-1", 21911), DEV, 40001);
    const r = h.lastResponse(40001);
    expect(r).toMatchObject({ status: 200, whichCommand: COMMANDS.keepalive.command });
    expect(r.header).toMatchObject({ sequence: 21911, method: COMMANDS.keepalive.method });
    expect(h.agent.metrics().keepalives).toBe(1);
  });

  it("answers a keepalive from an unknown device with 403 and Method REGISTER so it re-registers", async () => {
    h = await startHarness();
    h.transport.deliver(keepaliveDatagram("ghost", 77), DEV, 40002);
    const r = h.lastResponse(40002);
    expect(r.status).toBe(403);
    expect(r.header).toMatchObject({ sequence: 77, method: COMMANDS.register.method });
    expect(r.whichCommand).toBe(COMMANDS.keepalive.command);
    expect(h.agent.sessions.size).toBe(0);
    expect(h.agent.metrics().keepalives_unknown).toBe(1);
  });

  it("follows a NAT rebinding: a keepalive from a new address moves the session and emits address-changed", async () => {
    h = await startHarness();
    h.transport.deliver(registerDatagram({ deviceId: "cam-n", sequence: 1 }), DEV, 40003);
    h.transport.deliver(keepaliveDatagram("cam-n", 2), DEV, 40999);
    expect(h.lastResponse(40999).status).toBe(200);
    expect(h.agent.sessions.get("cam-n")).toMatchObject({ host: DEV, port: 40999 });
    expect(h.eventsOf("address-changed", "cam-n")).toEqual([
      expect.objectContaining({ address: `${DEV}:40999`, previousAddress: `${DEV}:40003` }),
    ]);
  });

  it("marks a silent device offline after KeepAliveSeconds × missed with reason keepalive-timeout", async () => {
    vi.useFakeTimers();
    h = await startHarness({ EHOME_KEEPALIVE_SECONDS: "15", EHOME_OFFLINE_AFTER_MISSED: "6" });
    h.transport.deliver(registerDatagram({ deviceId: "cam-q", sequence: 1 }), DEV, 40004);
    h.transport.deliver(registerDatagram({ deviceId: "cam-live", sequence: 1 }), DEV, 40005);

    // cam-live keeps talking every 15 s; cam-q stays silent.
    for (let t = 15; t < 90; t += 15) {
      vi.advanceTimersByTime(15_000);
      h.transport.deliver(keepaliveDatagram("cam-live", 1 + t), DEV, 40005);
    }
    expect(h.agent.sessions.get("cam-q")).toBeDefined(); // 75 s of silence: not yet
    vi.advanceTimersByTime(16_000); // 91 s
    expect(h.agent.sessions.get("cam-q")).toBeUndefined();
    expect(h.eventsOf("offline", "cam-q")).toEqual([
      expect.objectContaining({ type: "offline", reason: "keepalive-timeout" }),
    ]);
    expect(h.agent.sessions.get("cam-live")).toBeDefined();
    expect(h.eventsOf("offline", "cam-live")).toHaveLength(0);
    expect(h.agent.metrics().sessions_expired).toBe(1);

    // After expiry, its keepalive gets 403 → it re-registers and is online again.
    h.transport.deliver(keepaliveDatagram("cam-q", 50), DEV, 40004);
    expect(h.lastResponse(40004).status).toBe(403);
    h.transport.deliver(registerDatagram({ deviceId: "cam-q", sequence: 51 }), DEV, 40004);
    expect(h.lastResponse(40004).status).toBe(200);
    expect(h.eventsOf("online", "cam-q")).toHaveLength(2);
  });
});
