import { afterEach, describe, expect, it, vi } from "vitest";
import { createDeviceDataReporter, positionOf } from "../../../edge-agent/device-data/reporter.ts";
import type { DeviceReport } from "../../../edge-agent/ports.ts";
import { COMMANDS, DEFAULT_VIEW } from "../../../edge-agent/signalling/catalogue.ts";
import { buildFields, childText } from "../../../edge-agent/signalling/codec/index.ts";
import { CommandResult } from "../../../lib/contracts/commands.ts";
import { DeviceDataMessage, type PassthroughMessage } from "../../../lib/contracts/passthrough.ts";
import type { PositionsMessage } from "../../../lib/contracts/positions.ts";
import {
  deviceRequestDatagram,
  gpsDatagram,
  registerDatagram,
  responseDatagram,
} from "../helpers/devices.ts";
import { type Harness, startHarness } from "../helpers/harness.ts";

/**
 * The agent's side of GPS (ehome-2.0 §2.9) and passthrough (§8 TRANSPARENT): GPS Params become
 * positions in signed decimal degrees, batched per device; device TRANSPARENT messages become
 * passthrough messages; the passthrough and capabilities commands go out and parse the answers.
 */

const RECEIVED = Date.parse("2026-11-24T08:00:00Z");

function gpsReport(sequence: number, fields: Record<string, string | number>): DeviceReport {
  return {
    kind: "gps",
    deviceId: "bus-1",
    sequence,
    address: "192.0.2.1:5000",
    params: buildFields(COMMANDS.gps.params, {
      deviceId: "bus-1",
      time: "2026-11-24 16:00:00",
      timeZone: "+08:00",
      divisionEw: "E",
      longitude: 43_713_595,
      divisionNs: "N",
      latitude: 11_232_000,
      direction: 90,
      speed: 3_600_000,
      satellites: 9,
      precision: 1,
      height: 12,
      retransFlag: 0,
      ...fields,
    }),
    receivedAt: RECEIVED,
  };
}

describe("GPS Params → Position (ehome-2.0 §2.9)", () => {
  it("converts the FE fixture to 121.426653° E, Speed cm/h to km/h, Time + TimeZone to UTC", () => {
    expect(positionOf(gpsReport(7, {}), DEFAULT_VIEW)).toEqual({
      time: "2026-11-24T08:00:00.000Z",
      localTime: "2026-11-24 16:00:00",
      timeZone: "+08:00",
      sequence: 7,
      longitude: 121.426653,
      latitude: 31.2,
      direction: 90,
      speedKmh: 36,
      satellites: 9,
      precision: 1,
      height: 12,
      receivedAt: "2026-11-24T08:00:00.000Z",
    });
  });

  it("signs W and S negative, marks RetransFlag 1, and falls back to the receive time", () => {
    const p = positionOf(
      gpsReport(8, { divisionEw: "W", divisionNs: "S", retransFlag: 1, time: "garbage" }),
      DEFAULT_VIEW,
    );
    expect(p).toMatchObject({
      longitude: -121.426653,
      latitude: -31.2,
      retransmitted: true,
      time: "2026-11-24T08:00:00.000Z",
    });
    expect(positionOf(gpsReport(9, { divisionEw: "X" }), DEFAULT_VIEW)).toBeUndefined();
  });
});

describe("batching to the device-data queue", () => {
  afterEach(() => vi.useRealTimers());

  it("sends one message per device after the linger, or at once when full; same Time+Sequence once", () => {
    vi.useFakeTimers();
    const sent: DeviceDataMessage[] = [];
    const next: DeviceReport[] = [];
    const r = createDeviceDataReporter(
      { agentId: "agent-1", lingerMs: 500, maxPositions: 3 },
      {
        sink: { emit: (m) => void sent.push(DeviceDataMessage.parse(m)) },
        next: { report: (x) => void next.push(x) },
      },
    );
    r.report(gpsReport(1, {}));
    r.report(gpsReport(1, { retransFlag: 1 }));
    r.report({ ...gpsReport(2, {}), deviceId: "bus-2" });
    r.report({ ...gpsReport(3, {}), kind: "status" });
    expect(sent).toEqual([]);
    expect(next.map((x) => x.kind)).toEqual(["status"]);
    vi.advanceTimersByTime(500);
    expect(sent.map((m) => [m.deviceId, (m as PositionsMessage).positions.length])).toEqual([
      ["bus-1", 1],
      ["bus-2", 1],
    ]);
    for (let s = 10; s < 13; s++) r.report(gpsReport(s, {}));
    expect(sent).toHaveLength(3);
    expect((sent[2] as PositionsMessage).positions.map((p) => p.sequence)).toEqual([10, 11, 12]);
    r.report(gpsReport(20, {}));
    r.close();
    r.close();
    expect(sent).toHaveLength(4);
    expect(r.counters()).toMatchObject({ positions: 6, duplicates: 1, positionMessages: 4 });
  });

  it("turns a device TRANSPARENT into a passthrough message", () => {
    const sent: DeviceDataMessage[] = [];
    const r = createDeviceDataReporter(
      { agentId: "agent-1" },
      { sink: { emit: (m) => void sent.push(DeviceDataMessage.parse(m)) } },
    );
    r.report({
      kind: "transparent",
      deviceId: "bus-1",
      sequence: 44,
      address: "192.0.2.1:5000",
      params: buildFields(COMMANDS.transparent.params, {
        deviceId: "bus-1",
        channel: 2,
        data: "AQID",
      }),
      receivedAt: RECEIVED,
    });
    r.close();
    expect(sent).toEqual([
      expect.objectContaining({
        type: "passthrough",
        deviceId: "bus-1",
        sequence: 44,
        channel: 2,
        data: "AQID",
        receivedAt: "2026-11-24T08:00:00.000Z",
      } satisfies Partial<PassthroughMessage>),
    ]);
  });
});

describe("through the agent: GPS answered and reported once; TRANSPARENT and capabilities commands", () => {
  const DEV = "10.1.1.1";
  let h: Harness;
  afterEach(async () => h?.close());
  const tick = () => new Promise((r) => setImmediate(r));

  it("reports a GPS copy resent with RetransFlag 1 (same Sequence) once", async () => {
    h = await startHarness();
    h.transport.deliver(registerDatagram({ deviceId: "cam-1", sequence: 1 }), DEV, 40001);
    h.transport.deliver(gpsDatagram("cam-1", 5, "0"), DEV, 40001);
    h.transport.deliver(gpsDatagram("cam-1", 5, "1"), DEV, 40001);
    await tick();
    expect(h.reports.filter((r) => r.kind === "gps").map((r) => r.sequence)).toEqual([5]);
    // Both copies answered, RetransFlag echoed (ehome-2.0 §2.9).
    const answers = h
      .sentTo(40001)
      .filter((m) => m.kind === "response" && m.whichCommand === COMMANDS.gps.command);
    expect(answers).toHaveLength(2);
    expect(
      answers.map((m) =>
        m.kind === "response" ? childText(m.params, COMMANDS.gps.reply.retransFlag) : "",
      ),
    ).toEqual(["0", "1"]);
  });

  it("a device TRANSPARENT is answered 200 and reported as `transparent`", async () => {
    h = await startHarness();
    h.transport.deliver(registerDatagram({ deviceId: "cam-1", sequence: 1 }), DEV, 40001);
    h.transport.deliver(
      deviceRequestDatagram(
        COMMANDS.transparent.command,
        9,
        buildFields(COMMANDS.transparent.params, { deviceId: "cam-1", channel: 1, data: "AQID" }),
      ),
      DEV,
      40001,
    );
    await tick();
    expect(h.reports.find((r) => r.kind === "transparent")?.sequence).toBe(9);
  });

  it("passthrough sends TRANSPARENT with Channel and Data and returns the reply Data; capabilities parses GetDevAbility", async () => {
    h = await startHarness();
    h.transport.deliver(registerDatagram({ deviceId: "cam-1", sequence: 1 }), DEV, 40001);
    const cmd = (type: string, params: Record<string, unknown>) => ({
      commandId: `c-${type}`,
      deviceId: "cam-1",
      type: type as "passthrough",
      params,
      deadline: Date.now() + 60_000,
    });
    const p = h.agent.commands.execute(cmd("passthrough", { channel: 3, data: "AQID" }));
    await tick();
    const req = h.requestsTo(40001).at(-1)!;
    expect(req.command).toBe(COMMANDS.transparent.command);
    expect(childText(req.params, COMMANDS.transparent.params.channel)).toBe("3");
    expect(childText(req.params, COMMANDS.transparent.params.data)).toBe("AQID");
    h.transport.deliver(
      responseDatagram(req.header.sequence, req.command, 200, {
        [COMMANDS.transparent.reply.data]: "BAUG",
      }),
      DEV,
      40001,
    );
    expect(CommandResult.parse(await p)).toMatchObject({
      state: "succeeded",
      result: { channel: 3, data: "BAUG" },
    });

    const c = h.agent.commands.execute(cmd("capabilities", {}));
    await tick();
    const ask = h.requestsTo(40001).at(-1)!;
    expect(childText(ask.params, COMMANDS.getDeviceConfig.params.configCmd)).toBe("GetDevAbility");
    h.transport.deliver(
      responseDatagram(ask.header.sequence, ask.command, 200, {
        [COMMANDS.getDeviceConfig.reply.configXml]: {
          DEVABILITY: { ChannelNumber: "4", PTZ: "true", LinkMode: "TCP,UDP" },
        },
      }),
      DEV,
      40001,
    );
    expect((await c).result).toEqual({
      abilities: { channelNumber: 4, ptz: true, linkMode: "TCP,UDP" },
      configXml: { DEVABILITY: { ChannelNumber: "4", PTZ: "true", LinkMode: "TCP,UDP" } },
    });
  });
});
