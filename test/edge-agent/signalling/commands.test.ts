import { afterEach, describe, expect, it, vi } from "vitest";
import { BLOCKS, COMMANDS } from "../../../edge-agent/signalling/catalogue.ts";
import {
  childElement,
  childText,
  type XmlElement,
} from "../../../edge-agent/signalling/codec/index.ts";
import { deviceLocalTime } from "../../../edge-agent/signalling/commands.ts";
import { CommandResult } from "../../../lib/contracts/commands.ts";
import { registerDatagram, responseDatagram } from "../helpers/devices.ts";
import { type Harness, startHarness } from "../helpers/harness.ts";

const DEV = "10.1.1.1";
let h: Harness;
afterEach(async () => {
  await h?.close();
  vi.useRealTimers();
});

async function online(env: Record<string, string> = {}) {
  h = await startHarness(env);
  h.transport.deliver(registerDatagram({ deviceId: "cam-1", sequence: 1 }), DEV, 40001);
}

const cmd = (type: string, params: Record<string, unknown> = {}) => ({
  commandId: `c-${type}`,
  deviceId: "cam-1",
  type: type as "reboot",
  params,
  deadline: Date.now() + 60_000,
});

/** Answers the last request sent to the device with `status` and `params`. */
function answer(status = 200, params?: XmlElement) {
  const req = h.requestsTo(40001).at(-1)!;
  h.transport.deliver(
    responseDatagram(req.header.sequence, req.command, status, params),
    DEV,
    40001,
  );
  return req;
}

const tick = () => new Promise((r) => setImmediate(r));

describe("executing contract commands (issue 2 item 6)", () => {
  it("work-status: GETDEVICEWORKSTATUS parsed into run/cpu/mem/disks/channels", async () => {
    await online();
    const f = BLOCKS.workStatus.fields;
    const p = h.agent.commands.execute(cmd("work-status"));
    await tick();
    const req = answer(200, {
      [COMMANDS.getWorkStatus.reply.deviceStatusXml]: {
        [f.run]: "0",
        [f.cpu]: "12",
        [f.mem]: "40",
        [f.diskStatus]: { [f.disk]: ["1-1000000-2000-0"] },
        [f.channelStatus]: { [f.channel]: ["1-1-0-0-2048-1", "2-0-1-0-0-0-1-0"] },
      },
    });
    expect(req.header.method).toBe(COMMANDS.getWorkStatus.method);
    const r = CommandResult.parse(await p);
    expect(r).toMatchObject({
      commandId: "c-work-status",
      deviceId: "cam-1",
      agentId: "agent-test",
      state: "succeeded",
    });
    expect(r.result).toEqual({
      run: 0,
      cpu: 12,
      mem: 40,
      disks: [{ disk: 1, capacityMb: 1000000, freeMb: 2000, state: 0 }],
      channels: [
        {
          channel: 1,
          recording: true,
          signalLost: false,
          encoderError: false,
          bitrateKbps: 2048,
          clientCount: 1,
        },
        {
          channel: 2,
          recording: false,
          signalLost: true,
          encoderError: false,
          bitrateKbps: 0,
          clientCount: 0,
          linked: true,
          online: false,
        },
      ],
    });
  });

  it("get-config: GETDEVICECONFIG with ConfigCmd and ConfigParam1..4, returning the ConfigXML object", async () => {
    await online();
    const p = h.agent.commands.execute(
      cmd("get-config", { configCmd: "GetPicPara", configParam1: 1 }),
    );
    await tick();
    const body = { PICPARA: { ChannelName: "Gate" } };
    const req = answer(200, { [COMMANDS.getDeviceConfig.reply.configXml]: body });
    const pk = COMMANDS.getDeviceConfig.params;
    expect(childText(req.params, pk.configCmd)).toBe("GetPicPara");
    expect(childText(req.params, pk.configParam1)).toBe("1");
    expect(childText(req.params, pk.configParam4)).toBe("0");
    expect(await p).toMatchObject({ state: "succeeded", result: body });
  });

  it("set-config: SETDEVICECONFIG carries the body inside ConfigXML", async () => {
    await online();
    const config = { PICPARA: { ChannelName: "Door", IsShowChanName: "1" } };
    const p = h.agent.commands.execute(cmd("set-config", { configCmd: "SetPicPara", config }));
    await tick();
    const req = answer();
    expect(req.command).toBe(COMMANDS.setDeviceConfig.command);
    expect(childElement(req.params, COMMANDS.setDeviceConfig.params.configXml)).toEqual(config);
    expect(await p).toMatchObject({ state: "succeeded" });
  });

  it("ptz: PTZCONTROL sent three times; a 401 answer becomes failed with Status and Description", async () => {
    await online();
    const before = h.transport.sent.length;
    const p = h.agent.commands.execute(cmd("ptz", { channel: 1, command: "UP", action: "start" }));
    await tick();
    expect(h.transport.sent.length - before).toBe(3);
    const req = answer(401);
    const k = COMMANDS.ptzControl.params;
    expect(childText(req.params, k.ptzCmd)).toBe("UP");
    expect(childText(req.params, k.action)).toBe("Start");
    expect(childText(req.params, k.speed)).toBe("4");
    expect(CommandResult.parse(await p)).toMatchObject({
      state: "failed",
      error: { code: "DEVICE_ERROR", status: 401, message: "System Oper Faild." },
    });
  });

  it("time-sync: ADJUSTTIME with TimeZone and the device-local time", async () => {
    await online();
    const p = h.agent.commands.execute(
      cmd("time-sync", { timeZone: "+08:00", time: "2024-05-01 12:00:00" }),
    );
    await tick();
    const req = answer();
    expect(childText(req.params, COMMANDS.adjustTime.params.time)).toBe("2024-05-01 12:00:00");
    expect(childText(req.params, COMMANDS.adjustTime.params.timeZone)).toBe("+08:00");
    expect(await p).toMatchObject({ state: "succeeded" });
    expect(deviceLocalTime(Date.UTC(2024, 0, 1, 23, 30, 0), "+08:00")).toBe("2024-01-02 07:30:00");
    expect(deviceLocalTime(Date.UTC(2024, 0, 1, 3, 0, 0), "-05:30")).toBe("2023-12-31 21:30:00");
  });

  it("reboot: REBOOT with Method CONTROL", async () => {
    await online();
    const p = h.agent.commands.execute(cmd("reboot"));
    await tick();
    const req = answer();
    expect(req.command).toBe(COMMANDS.reboot.command);
    expect(req.header.method).toBe(COMMANDS.reboot.method);
    expect(await p).toMatchObject({ state: "succeeded" });
  });

  it("maps timeout to timed-out, an unknown device to device-offline, bad params to failed", async () => {
    vi.useFakeTimers();
    await online();
    const p = h.agent.commands.execute(cmd("reboot"));
    await vi.advanceTimersByTimeAsync(5000);
    expect(CommandResult.parse(await p)).toMatchObject({ state: "timed-out" });

    const off = await h.agent.commands.execute({ ...cmd("reboot"), deviceId: "nobody" });
    expect(CommandResult.parse(off)).toMatchObject({
      state: "device-offline",
      error: { code: "DEVICE_OFFLINE" },
    });

    const bad = await h.agent.commands.execute(
      cmd("ptz", { channel: 0, command: "SPIN", action: "start" }),
    );
    expect(CommandResult.parse(bad)).toMatchObject({
      state: "failed",
      error: { code: "VALIDATION_FAILED" },
    });

    const late = await h.agent.commands.execute({ ...cmd("reboot"), deadline: Date.now() - 1 });
    expect(late).toMatchObject({ state: "timed-out", error: { code: "DEADLINE_PASSED" } });
  });
});
