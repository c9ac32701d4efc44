import { afterEach, describe, expect, it } from "vitest";
import { COMMANDS } from "../../../../edge-agent/signalling/catalogue.ts";
import { buildFields } from "../../../../edge-agent/signalling/codec/index.ts";
import { deviceRequestDatagram, registerDatagram } from "../../helpers/devices.ts";
import { type Harness, startHarness } from "../../helpers/harness.ts";

const DEV = "10.1.1.1";
let h: Harness;
afterEach(() => h?.close());

describe("other device requests (ehome-2.0 §2.9: every device REQUEST is answered)", () => {
  it("a STATUS report is answered 200 once per Sequence and reported once", async () => {
    h = await startHarness();
    h.transport.deliver(registerDatagram({ deviceId: "cam-s", sequence: 1 }), DEV, 40001);
    const status = deviceRequestDatagram(
      COMMANDS.status.command,
      44,
      buildFields(COMMANDS.status.params, { deviceId: "cam-s", cpu: 12, mem: 40 }),
    );
    h.transport.deliver(status, DEV, 40001);
    h.transport.deliver(status, DEV, 40001);
    const answers = h
      .sentTo(40001)
      .filter((m) => m.kind === "response" && m.header.sequence === 44);
    expect(answers).toHaveLength(2);
    expect(answers[0]).toMatchObject({ status: 200, whichCommand: COMMANDS.status.command });
    expect(h.reports).toEqual([expect.objectContaining({ kind: "status", deviceId: "cam-s" })]);
  });

  it("an unknown command is answered 200 with its Sequence (acknowledged, counted, not acted on)", async () => {
    h = await startHarness();
    h.transport.deliver(registerDatagram({ deviceId: "cam-u", sequence: 1 }), DEV, 40002);
    h.transport.deliver(
      deviceRequestDatagram(
        "MYSTERYREPORT",
        45,
        buildFields(COMMANDS.status.params, { deviceId: "cam-u" }),
      ),
      DEV,
      40002,
    );
    expect(h.lastResponse(40002)).toMatchObject({ status: 200, whichCommand: "MYSTERYREPORT" });
    expect(h.lastResponse(40002).header.sequence).toBe(45);
    expect(h.agent.metrics().device_requests_unknown_command).toBe(1);
    expect(h.reports).toHaveLength(0);
  });

  it("a request without DeviceID is attributed by address; from an unknown address it gets 403", async () => {
    h = await startHarness();
    h.transport.deliver(registerDatagram({ deviceId: "cam-a", sequence: 1 }), DEV, 40003);
    h.transport.deliver(deviceRequestDatagram(COMMANDS.upgradeStatus.command, 46, {}), DEV, 40003);
    expect(h.lastResponse(40003).status).toBe(200);
    expect(h.reports).toEqual([
      expect.objectContaining({ kind: "upgradeStatus", deviceId: "cam-a" }),
    ]);
    h.transport.deliver(deviceRequestDatagram(COMMANDS.upgradeStatus.command, 47, {}), DEV, 40004);
    expect(h.lastResponse(40004).status).toBe(403);
  });

  it("an ALARM on the signalling port is answered 200 and reported once (ehome-2.0 §8)", async () => {
    h = await startHarness();
    h.transport.deliver(registerDatagram({ deviceId: "cam-al", sequence: 1 }), DEV, 40005);
    const alarm = deviceRequestDatagram(
      COMMANDS.alarm.command,
      48,
      buildFields(COMMANDS.alarm.params, { deviceId: "cam-al", alarmType: 3, picId: ["p-1"] }),
    );
    h.transport.deliver(alarm, DEV, 40005);
    h.transport.deliver(alarm, DEV, 40005);
    expect(
      h.sentTo(40005).filter((m) => m.kind === "response" && m.header.sequence === 48),
    ).toHaveLength(2);
    expect(h.reports).toEqual([expect.objectContaining({ kind: "alarm", sequence: 48 })]);
  });
});

describe("inbound limits", () => {
  it("refuses datagrams over EHOME_MAX_DATAGRAM_BYTES without answering, and counts them", async () => {
    h = await startHarness({ EHOME_MAX_DATAGRAM_BYTES: "1024" });
    h.transport.deliver(Buffer.alloc(2000, 0x41), DEV, 40006);
    h.transport.deliver(Buffer.from("not xml at all"), DEV, 40006);
    expect(h.transport.sent).toHaveLength(0);
    expect(h.agent.metrics()).toMatchObject({ datagrams_oversize: 1, decode_errors: 1 });
  });
});
