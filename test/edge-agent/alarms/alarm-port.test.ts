import { afterEach, describe, expect, it } from "vitest";
import { createAlarmReporter } from "../../../edge-agent/alarms/alarm-reporter.ts";
import type { DeviceReport } from "../../../edge-agent/ports.ts";
import { COMMANDS } from "../../../edge-agent/signalling/catalogue.ts";
import {
  buildFields,
  childText,
  type FieldValue,
} from "../../../edge-agent/signalling/codec/index.ts";
import { AlarmEvent, type AlarmQueueMessage } from "../../../lib/contracts/alarms.ts";
import { decodeAsDevice, deviceRequestDatagram, registerDatagram } from "../helpers/devices.ts";
import { type Harness, startHarness } from "../helpers/harness.ts";
import { createMemoryTransport, type MemoryTransport } from "../helpers/memory-transport.ts";

const DEV = "10.1.1.1";

type AlarmValues = Partial<Record<keyof typeof COMMANDS.alarm.params, FieldValue>>;
const alarmDatagram = (sequence: number, values: AlarmValues) =>
  deviceRequestDatagram(
    COMMANDS.alarm.command,
    sequence,
    buildFields(COMMANDS.alarm.params, values),
  );

const responsesTo = (t: MemoryTransport, port: number) =>
  t.sent.filter((d) => d.port === port).map((d) => decodeAsDevice(d.bytes));

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

async function start(): Promise<{ h: Harness; alarm: MemoryTransport }> {
  const alarm = createMemoryTransport({ host: "127.0.0.1", port: 7332 });
  h = await startHarness({}, { alarmTransport: alarm });
  return { h, alarm };
}

describe("alarm port (ehome-2.0 §8 ALARM: UDP 7332, also accepted on 7660)", () => {
  it("answers 200 on the alarm socket echoing the Sequence and reports the alarm once per Sequence", async () => {
    const { h, alarm } = await start();
    h.transport.deliver(registerDatagram({ deviceId: "cam-1", sequence: 1 }), DEV, 40000);
    expect(h.agent.alarmAddress()).toEqual({ host: "127.0.0.1", port: 7332 });
    const bytes = alarmDatagram(500, { deviceId: "cam-1", alarmType: 1, picId: ["p-1"] });
    alarm.deliver(bytes, DEV, 41000);
    alarm.deliver(bytes, DEV, 41000);
    const answers = responsesTo(alarm, 41000);
    expect(answers).toHaveLength(2);
    for (const a of answers) {
      expect(a).toMatchObject({ kind: "response", status: 200 });
      expect(a.header.sequence).toBe(500);
    }
    // Nothing went out on the signalling socket for it.
    expect(h.transport.sent.filter((d) => d.port === 41000)).toHaveLength(0);
    expect(h.reports.filter((r) => r.kind === "alarm")).toHaveLength(1);
    expect(h.agent.metrics()).toMatchObject({
      alarm_reports: 1,
      duplicates: 1,
      alarm_port_datagrams: 2,
    });
  });

  it("refuses alarms from an unregistered device with 403 and counts them", async () => {
    const { h, alarm } = await start();
    alarm.deliver(alarmDatagram(7, { deviceId: "ghost", alarmType: 1 }), DEV, 41000);
    const [answer] = responsesTo(alarm, 41000);
    expect(answer).toMatchObject({ kind: "response", status: 403 });
    expect(h.reports).toHaveLength(0);
    expect(h.agent.metrics()).toMatchObject({ alarms_refused: 1 });
  });

  it("ignores (and counts) other messages on the alarm port", async () => {
    const { h, alarm } = await start();
    alarm.deliver(registerDatagram({ deviceId: "cam-2", sequence: 1 }), DEV, 41000);
    expect(alarm.sent).toHaveLength(0);
    expect(h.agent.sessions.get("cam-2")).toBeUndefined();
    expect(h.agent.metrics()).toMatchObject({ alarm_port_ignored: 1 });
  });
});

describe("ports configured as 0 are announced as bound (ehome-2.0 §2.1 REGISTER reply)", () => {
  it("AlarmServerPort is the bound alarm port, PictureServerPort the bound HTTP port", async () => {
    const alarm = createMemoryTransport({ host: "127.0.0.1", port: 45678 });
    h = await startHarness(
      { EHOME_ALARM_PORT: "0", EHOME_HTTP_PORT: "0" },
      { alarmTransport: alarm },
    );
    h.agent.httpPortBound(4321);
    h.transport.deliver(registerDatagram({ deviceId: "cam-p", sequence: 1 }), DEV, 40000);
    const reply = h.lastResponse(40000);
    const f = COMMANDS.register.reply;
    expect(childText(reply.params, f.alarmServerPort)).toBe("45678");
    expect(childText(reply.params, f.pictureServerPort)).toBe("4321");
  });
});

describe("alarm reporter (report → AlarmEvent)", () => {
  const report = (sequence: number, values: AlarmValues): DeviceReport => ({
    kind: "alarm",
    deviceId: "cam-1",
    sequence,
    address: "10.1.1.1:41000",
    params: buildFields(COMMANDS.alarm.params, values),
    receivedAt: Date.parse("2026-01-02T03:04:05.000Z"),
  });

  const setup = () => {
    const sent: AlarmQueueMessage[] = [];
    const others: DeviceReport[] = [];
    let n = 0;
    const reporter = createAlarmReporter(
      { agentId: "agent-a" },
      {
        sink: { emit: (e) => void sent.push(e) },
        next: { report: (r) => void others.push(r) },
        uuid: () => `e-${++n}`,
      },
    );
    return { reporter, sent, others };
  };

  it("carries every §8 field, the media ids in order without repeats, and satisfies the contract", () => {
    const { reporter, sent } = setup();
    reporter.report(
      report(9, {
        deviceId: "cam-1",
        alarmType: 3,
        alarmAction: 1,
        videoChannel: 2,
        alarmInChannel: 4,
        diskNumber: 0,
        alarmTime: "2026-01-02 11:04:05",
        timeDiffH: 8,
        timeDiffM: 0,
        remark: "door",
        retransFlag: 0,
        picId: ["p-1", "p-2", "p-1"],
        videoId: ["v-1"],
      }),
    );
    expect(sent).toHaveLength(1);
    expect(AlarmEvent.parse(sent[0])).toEqual({
      type: "alarm",
      eventId: "e-1",
      agentId: "agent-a",
      deviceId: "cam-1",
      sequence: 9,
      receivedAt: "2026-01-02T03:04:05.000Z",
      alarmType: 3,
      alarmAction: "stop",
      videoChannel: 2,
      alarmInChannel: 4,
      diskNumber: 0,
      alarmTime: "2026-01-02 11:04:05",
      timeDiffH: 8,
      timeDiffM: 0,
      remark: "door",
      picIds: ["p-1", "p-2"],
      videoIds: ["v-1"],
      retransmitted: false,
    });
  });

  it("records a RetransFlag 1 copy under a new Sequence once; a first-seen retransmission is kept", () => {
    const { reporter, sent } = setup();
    const values = {
      deviceId: "cam-1",
      alarmType: 1,
      alarmTime: "2026-01-02 11:00:00",
      picId: ["a"],
    };
    reporter.report(report(1, { ...values, retransFlag: 0 }));
    reporter.report(report(2, { ...values, retransFlag: 1 }));
    reporter.report(report(3, { ...values, alarmTime: "2026-01-02 11:00:09", retransFlag: 1 }));
    expect(sent.map((e) => (e.type === "alarm" ? e.sequence : -1))).toEqual([1, 3]);
    expect(reporter.counters()).toMatchObject({ alarms: 2, retransmittedDuplicates: 1 });
  });

  it("counts alarms without an AlarmType and passes other reports on", () => {
    const { reporter, sent, others } = setup();
    reporter.report(report(1, { deviceId: "cam-1" }));
    reporter.report({ ...report(2, {}), kind: "gps" });
    expect(sent).toHaveLength(0);
    expect(others.map((r) => r.kind)).toEqual(["gps"]);
    expect(reporter.counters().invalid).toBe(1);
  });
});
