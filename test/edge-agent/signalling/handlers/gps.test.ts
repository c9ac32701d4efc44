import { afterEach, describe, expect, it } from "vitest";
import { COMMANDS } from "../../../../edge-agent/signalling/catalogue.ts";
import { childText } from "../../../../edge-agent/signalling/codec/index.ts";
import { gpsDatagram, registerDatagram } from "../../helpers/devices.ts";
import { type Harness, startHarness } from "../../helpers/harness.ts";

const DEV = "10.1.1.1";
let h: Harness;
afterEach(() => h?.close());

describe("GPS (ehome-2.0 §2.9)", () => {
  it("answers 200 echoing RetransFlag and the Sequence, and reports it", async () => {
    h = await startHarness();
    h.transport.deliver(
      registerDatagram({ deviceId: "bus-1", sequence: 1, encoding: "UTF-8" }),
      DEV,
      40001,
    );
    h.transport.deliver(gpsDatagram("bus-1", 5021, "0", "UTF-8"), DEV, 40001);
    const r = h.lastResponse(40001);
    expect(r).toMatchObject({ status: 200, whichCommand: COMMANDS.gps.command });
    expect(r.header.sequence).toBe(5021);
    expect(r.header.encoding).toBe("UTF-8");
    expect(childText(r.params, COMMANDS.gps.reply.retransFlag)).toBe("0");
    expect(h.reports).toEqual([
      expect.objectContaining({
        kind: "gps",
        deviceId: "bus-1",
        sequence: 5021,
        address: `${DEV}:40001`,
      }),
    ]);
  });

  it("a resent GPS report (same DeviceID + Sequence, RetransFlag 1) is answered again but reported once", async () => {
    h = await startHarness();
    h.transport.deliver(registerDatagram({ deviceId: "bus-2", sequence: 1 }), DEV, 40002);
    h.transport.deliver(gpsDatagram("bus-2", 600, "0"), DEV, 40002);
    h.transport.deliver(gpsDatagram("bus-2", 600, "1"), DEV, 40002);
    const answers = h
      .sentTo(40002)
      .filter((m) => m.kind === "response" && m.header.sequence === 600);
    expect(answers).toHaveLength(2);
    expect(childText(h.lastResponse(40002).params, COMMANDS.gps.reply.retransFlag)).toBe("1");
    expect(h.reports).toHaveLength(1);
    expect(h.agent.metrics()).toMatchObject({ gps_reports: 1, duplicates: 1 });
  });

  it("a GPS report from an unregistered device gets 403 with Method REGISTER", async () => {
    h = await startHarness();
    h.transport.deliver(gpsDatagram("bus-x", 9, "0"), DEV, 40003);
    expect(h.lastResponse(40003)).toMatchObject({ status: 403 });
    expect(h.lastResponse(40003).header.method).toBe(COMMANDS.register.method);
    expect(h.reports).toHaveLength(0);
  });
});
