import { afterEach, describe, expect, it } from "vitest";
import { BLOCKS, COMMANDS, CONFIG_CMD } from "../../../edge-agent/signalling/catalogue.ts";
import { childText } from "../../../edge-agent/signalling/codec/index.ts";
import { registerDatagram, responseDatagram } from "../helpers/devices.ts";
import { type Harness, startHarness } from "../helpers/harness.ts";

const DEV = "10.1.1.1";
let h: Harness;
afterEach(() => h?.close());
const tick = () => new Promise((r) => setImmediate(r));

describe("learning a device after registration (ehome-2.0 §2.1, §2.3, §2.4)", () => {
  it("asks GetServerInfo then GETDEVICEWORKSTATUS, keeps the result on the session and emits device-info", async () => {
    h = await startHarness({ EHOME_LEARN_DEVICES: "true" });
    h.transport.deliver(registerDatagram({ deviceId: "nvr-1", sequence: 1 }), DEV, 40001);

    const first = h.requestsTo(40001).at(-1)!;
    expect(first.command).toBe(COMMANDS.getDeviceConfig.command);
    expect(childText(first.params, COMMANDS.getDeviceConfig.params.configCmd)).toBe(
      CONFIG_CMD.getServerInfo,
    );
    const si = BLOCKS.serverInfo.fields;
    h.transport.deliver(
      responseDatagram(first.header.sequence, first.command, 200, {
        [COMMANDS.getDeviceConfig.reply.configXml]: {
          [BLOCKS.serverInfo.block]: {
            [si.channelNumber]: "0",
            [si.channelAmount]: "8",
            [si.serialNumber]: "DS-7608NI0120240101",
            [si.alarmInPortNum]: "4",
            [si.alarmOutPortNum]: "1",
            [si.diskNumber]: "1",
          },
        },
      }),
      DEV,
      40001,
    );
    await tick();
    const second = h.requestsTo(40001).at(-1)!;
    expect(second.command).toBe(COMMANDS.getWorkStatus.command);
    const ws = BLOCKS.workStatus.fields;
    h.transport.deliver(
      responseDatagram(second.header.sequence, second.command, 200, {
        [BLOCKS.workStatus.block]: {
          [ws.run]: "0",
          [ws.channelStatus]: { [ws.channel]: ["1-1-0-0-1024-0-1-1", "2-0-0-0-0-0-1-0"] },
        },
      }),
      DEV,
      40001,
    );
    await tick();

    const info = h.eventsOf("device-info", "nvr-1");
    expect(info).toEqual([
      expect.objectContaining({
        serialNumber: "DS-7608NI0120240101",
        channelCount: 8,
        alarmInCount: 4,
        alarmOutCount: 1,
        diskCount: 1,
        channels: [
          { channel: 1, recording: true, signalLost: false, online: true },
          { channel: 2, recording: false, signalLost: false, online: false },
        ],
      }),
    ]);
    expect(h.agent.sessions.get("nvr-1")?.info).toMatchObject({
      serialNumber: "DS-7608NI0120240101",
      channelCount: 8,
    });
  });

  it("a device that answers neither request is counted as a learn failure and emits no device-info", async () => {
    h = await startHarness({ EHOME_LEARN_DEVICES: "true" });
    h.transport.deliver(registerDatagram({ deviceId: "cam-x", sequence: 1 }), DEV, 40002);
    const a = h.requestsTo(40002).at(-1)!;
    h.transport.deliver(responseDatagram(a.header.sequence, a.command, 500), DEV, 40002);
    await tick();
    const b = h.requestsTo(40002).at(-1)!;
    h.transport.deliver(responseDatagram(b.header.sequence, b.command, 500), DEV, 40002);
    await tick();
    expect(h.eventsOf("device-info")).toHaveLength(0);
    expect(h.agent.metrics().learn_failures).toBe(1);
  });
});
