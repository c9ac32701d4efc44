import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BLOCKS, COMMANDS, DEFAULT_VIEW } from "../../../edge-agent/signalling/catalogue.ts";
import { childElement, childText, childTexts } from "../../../edge-agent/signalling/codec/index.ts";
import type { PlatformCommandId } from "../../../edge-agent/simulator/handlers/index.ts";
import { useHarness } from "./harness.ts";
import { MediaSink } from "./media-sink.ts";

const c = DEFAULT_VIEW.commands;
const CONFIG_XML = c.getDeviceConfig.reply.configXml!;

/** A valid request for every platform command (typed: a new catalogue command needs a sample). */
const SAMPLES: Record<PlatformCommandId, Record<string, unknown>> = {
  getDeviceConfig: { configCmd: "GetServerInfo", configParam1: 0 },
  setDeviceConfig: {
    configCmd: "SetPicPara",
    configParam1: 1,
    configXml: { [BLOCKS.picPara.block]: { [BLOCKS.picPara.fields.channelName]: "Gate" } },
  },
  getWorkStatus: {},
  queryRecordedFiles: {
    channel: 1,
    fileType: 255,
    startTime: "2024-05-01 00:00:00",
    stopTime: "2024-05-01 23:59:59",
    chunkSize: 8,
    startIdx: 0,
  },
  queryPictures: {
    channel: 1,
    picType: 255,
    startTime: "2024-05-01 00:00:00",
    stopTime: "2024-05-01 23:59:59",
    chunkSize: 8,
    startIdx: 0,
  },
  inviteStream: { channel: 1, channelType: "SUB", sinkIp: "127.0.0.1", sinkPort: 31000 },
  byeStream: { session: "12345" },
  playback: {
    channel: 1,
    fileName: "ch0001_00000000000000001",
    sinkIp: "127.0.0.1",
    sinkPort: 31002,
  },
  playbackControl: { session: "__session__", action: "PAUSE" },
  download: {
    channel: 1,
    fileName: "ch0001_00000000000000001",
    sinkIp: "127.0.0.1",
    sinkPort: 31004,
  },
  forceIFrame: { channel: 1, channelType: "MAIN" },
  inviteTalk: { channel: 1, audioFormat: "G711U", sinkIp: "127.0.0.1", sinkPort: 31006 },
  reboot: {},
  ptzControl: { channel: 1, ptzCmd: "LEFT", action: "Start", speed: 4 },
  ptzPresetControl: { channel: 1, ptzPresetCmd: "GOTO_PRESET", presetIndex: 1 },
  adjustTime: { timeZone: "+08:00", time: "2030-01-02 03:04:05" },
  manualSnap: {
    chan: 1,
    snapType: 0,
    sendTo: 1,
    resolution: "1920*1080",
    quality: 0,
    frequency: 1,
    picId: "p1",
  },
  uploadPic: { chan: 1, filename: "ch0001_00000000000000001", picId: "p2" },
  update: { url: "http://127.0.0.1/fw/abc", fileSize: 1000, version: "V5.6.0 build 200101" },
  transparent: { channel: 1, data: "aGVsbG8=" },
};

describe("simulator answers platform commands", () => {
  const harness = useHarness();
  // The MEDIA commands push to SinkIP:SinkPort: give them a sink that accepts and drains.
  let sink: MediaSink;
  beforeAll(async () => {
    sink = await MediaSink.start();
    for (const s of [
      SAMPLES.inviteStream,
      SAMPLES.playback,
      SAMPLES.download,
      SAMPLES.inviteTalk,
    ]) {
      s.sinkPort = sink.port;
    }
  });
  afterAll(() => sink.close());

  async function online(options: Parameters<typeof harness>[0] = {}) {
    const h = await harness({
      devices: 4,
      encoding: "mixed",
      ptz: "mixed",
      upgradeMs: -1,
      ...options,
    });
    await h.sim.start();
    await h.sim.waitFor("all-online", 2000);
    return h;
  }

  it("every catalogue platform command is answered 200 with its WhichCommand and Sequence", async () => {
    const { platform, sim } = await online();
    // Index 2 is PTZ-capable and writes UTF-8; index 3 is PTZ-capable and writes GB2312.
    for (const d of [sim.devices[1]!, sim.devices[2]!]) {
      expect(d.profile.ptz).toBe(true);
      const opened = await platform.request(d.id, "inviteStream", SAMPLES.inviteStream);
      const session = childText(opened.params, c.inviteStream.reply.session!)!;
      const ids: PlatformCommandId[] = (Object.keys(SAMPLES) as PlatformCommandId[]).filter(
        (id) => id !== "reboot",
      );
      for (const id of [...ids, "reboot" as PlatformCommandId]) {
        const fields = { ...SAMPLES[id] };
        if (fields.session === "__session__") fields.session = session;
        const sequence = 9000 + ids.indexOf(id);
        const r = await platform.request(d.id, id, fields, { sequence });
        expect(r.whichCommand, id).toBe(COMMANDS[id].command);
        expect(r.header.sequence, id).toBe(sequence);
        expect(r.status, `${id}: ${r.description}`).toBe(200);
        // Device responses carry Version 2.0 and no Method (ehome-2.0 §1.2), in its own encoding.
        expect(r.header.version).toBe("2.0");
        expect(r.header.method).toBeUndefined();
        expect(r.header.encoding).toBe(d.encoding);
      }
      expect(d.state).toBe("rebooting");
    }
  });

  it("GetServerInfo returns SERVERINFO with the serial and channel counts (ehome-2.0 §2.3)", async () => {
    const { platform, sim } = await online({ channels: 4 });
    const d = sim.devices[0]!;
    const r = await platform.request(d.id, "getDeviceConfig", { configCmd: "GetServerInfo" });
    const info = childElement(childElement(r.params, CONFIG_XML), BLOCKS.serverInfo.block)!;
    const f = BLOCKS.serverInfo.fields;
    expect(childText(info, f.serialNumber)).toBe(d.profile.serialNumber);
    expect(d.profile.serialNumber).toMatch(/^DS-[0-9A-Z-]+\d{8}CCWR\d{9}$/);
    expect(childText(info, f.channelNumber)).toBe("4");
    expect(childText(info, f.channelAmount)).toBe("4");
    expect(childText(info, f.dvrType)).toBe(d.profile.devType);
    for (const name of Object.values(f)) expect(childText(info, name), name).toMatch(/\S/);
  });

  it("GetDevAbility returns a capability block that tells PTZ from fixed cameras", async () => {
    const { platform, sim } = await online();
    const ptzOf = async (i: number) => {
      const r = await platform.request(sim.devices[i]!.id, "getDeviceConfig", {
        configCmd: "GetDevAbility",
      });
      const block = childElement(childElement(r.params, CONFIG_XML), BLOCKS.devAbility.block);
      return childText(block, BLOCKS.devAbility.fields.ptz);
    };
    expect(await ptzOf(0)).toBe("false");
    expect(await ptzOf(1)).toBe("true");
  });

  it("work status lists a CH string per channel and counts stream clients (ehome-2.0 §2.4)", async () => {
    const { platform, sim } = await online({ channels: 3 });
    const d = sim.devices[0]!;
    const chStrings = async () => {
      const r = await platform.request(d.id, "getWorkStatus");
      const st = childElement(r.params, c.getWorkStatus.reply.deviceStatusXml!)!;
      const w = BLOCKS.workStatus.fields;
      expect(Number(childText(st, w.cpu))).toBeLessThanOrEqual(100);
      expect(childText(st, w.run)).toBe("0");
      expect(childTexts(childElement(st, w.diskStatus), w.disk)[0]).toMatch(/^1-\d+-\d+-0$/);
      return childTexts(childElement(st, w.channelStatus), w.channel);
    };
    const before = await chStrings();
    expect(before).toHaveLength(3);
    // channel-recording-signalLost-encoderError-bitrate-clients, NVR: -linked-online.
    for (const [i, s] of before.entries()) {
      expect(s).toMatch(new RegExp(`^${i + 1}-1-0-0-\\d+-0-1-1$`));
    }
    const opened = await platform.request(d.id, "inviteStream", {
      ...SAMPLES.inviteStream,
      channel: 2,
    });
    const session = childText(opened.params, c.inviteStream.reply.session!)!;
    expect(session).toMatch(/^\d+$/);
    expect((await chStrings())[1]).toMatch(/^2-1-0-0-\d+-1-1-1$/);
    const bye = await platform.request(d.id, "byeStream", { session });
    expect(childText(bye.params, c.byeStream.reply.session!)).toBe(session);
    expect((await chStrings())[1]).toMatch(/-0-1-1$/);
  });

  it("a SETDEVICECONFIG body is returned by the matching GETDEVICECONFIG, per channel", async () => {
    const { platform, sim } = await online({ channels: 2 });
    const d = sim.devices[0]!; // GB2312
    const body = {
      [BLOCKS.picPara.block]: {
        [BLOCKS.picPara.fields.channelName]: "大门",
        [BLOCKS.picPara.fields.isShowChanName]: "1",
      },
    };
    const set = await platform.request(d.id, "setDeviceConfig", {
      configCmd: "SetPicPara",
      configParam1: 2,
      configXml: body,
    });
    expect(set.status).toBe(200);
    const get2 = await platform.request(d.id, "getDeviceConfig", {
      configCmd: "GetPicPara",
      configParam1: 2,
    });
    expect(childElement(get2.params, CONFIG_XML)).toEqual(body);
    expect(d.storedConfig("GetPicPara", 2)).toEqual(body);
    // Channel 1 still has its factory default (a Chinese name on a GB2312 device).
    const get1 = await platform.request(d.id, "getDeviceConfig", {
      configCmd: "GetPicPara",
      configParam1: 1,
    });
    const block1 = childElement(childElement(get1.params, CONFIG_XML), BLOCKS.picPara.block);
    expect(childText(block1, BLOCKS.picPara.fields.channelName)).toBe("通道01");
  });

  it("a ConfigCmd never set and without a default is refused with a 4xx Status", async () => {
    const { platform, sim } = await online();
    const r = await platform.request(sim.devices[0]!.id, "getDeviceConfig", {
      configCmd: "GetMotionPara",
    });
    expect(r.status).toBeGreaterThanOrEqual(400);
    expect(r.status).toBeLessThan(500);
  });

  it("unknown commands, and device-side commands sent by the platform, get a non-200 Status", async () => {
    const { platform, sim } = await online();
    const d = sim.devices[0]!;
    const unknown = await platform.request(d.id, "SELFDESTRUCT", {});
    expect(unknown.whichCommand).toBe("SELFDESTRUCT");
    expect(unknown.status).not.toBe(200);
    const wrongWay = await platform.request(d.id, "register", {});
    expect(wrongWay.status).not.toBe(200);
    expect(sim.stats().unknownCommands).toBe(2);
  });

  it("a fixed camera answers PTZCONTROL 401 System Oper Faild. (ehome-2.0 §2.8, §3.4)", async () => {
    const { platform, sim } = await online();
    const fixed = sim.devices[0]!;
    expect(fixed.profile.ptz).toBe(false);
    const r = await platform.request(fixed.id, "ptzControl", SAMPLES.ptzControl);
    expect(r.status).toBe(401);
    expect(r.description).toBe("System Oper Faild.");
    expect(fixed.counters.ptzActions).toBe(0);
  });

  it("PTZ sent three times with one Sequence is answered three times and acted on once", async () => {
    const { platform, sim } = await online();
    const d = sim.devices[1]!;
    const seen: boolean[] = [];
    sim.on("command", (e) => seen.push(e.command.duplicate));
    await platform.request(d.id, "ptzControl", SAMPLES.ptzControl, { copies: 3, sequence: 777 });
    await platform.waitFor(
      () => platform.received.filter((r) => r.message?.kind === "response").length === 3,
    );
    expect(d.counters.ptzActions).toBe(1);
    expect(d.counters.commandDuplicates).toBe(2);
    expect(d.counters.commandsAnswered).toBe(3);
    expect(seen).toEqual([false, true, true]);
    expect(d.commands.map((x) => [x.sequence, x.duplicate, x.status])).toEqual([
      [777, false, 200],
      [777, true, 200],
      [777, true, 200],
    ]);
  });

  it("a repeated SETDEVICECONFIG Sequence is answered again but not applied again", async () => {
    const { platform, sim } = await online();
    const d = sim.devices[0]!;
    const first = { A: { Value: "first" } };
    const second = { A: { Value: "second" } };
    await platform.request(
      d.id,
      "setDeviceConfig",
      { configCmd: "SetX", configXml: first },
      {
        sequence: 42,
      },
    );
    const again = await platform.request(
      d.id,
      "setDeviceConfig",
      { configCmd: "SetX", configXml: second },
      { sequence: 42 },
    );
    expect(again.status).toBe(200);
    expect(d.storedConfig("GetX")).toEqual(first);
  });

  it("ADJUSTTIME sets the device clock", async () => {
    const { platform, sim } = await online();
    const d = sim.devices[0]!;
    await platform.request(d.id, "adjustTime", { time: "2030-01-02 03:04:05", timeZone: "+08:00" });
    expect(d.deviceTime()).toMatch(/^2030-01-02 03:04:0[5-9]$/);
    const bad = await platform.request(d.id, "adjustTime", { time: "yesterday" });
    expect(bad.status).toBe(400);
  });

  it("QUERYRECORDEDFILES pages hourly files with the seven tokens of ehome-2.0 §2.5", async () => {
    const { platform, sim } = await online();
    const d = sim.devices[0]!;
    const page = async (startIdx: number) => {
      const r = await platform.request(d.id, "queryRecordedFiles", {
        ...SAMPLES.queryRecordedFiles,
        startIdx,
      });
      return childTexts(r.params, c.queryRecordedFiles.reply.recordedFile!);
    };
    const first = await page(0);
    expect(first).toHaveLength(8);
    // One record file per hour, `recordSeconds` (default 60) long.
    expect(first[0]).toMatch(/^ch0001_\d+ 2024-05-01 00:00:00 2024-05-01 00:01:00 \d+ 0$/);
    expect(await page(16)).toHaveLength(8);
    expect(await page(20)).toHaveLength(4);
    expect(await page(24)).toHaveLength(0);
  });

  it("TRANSPARENT echoes its Data", async () => {
    const { platform, sim } = await online();
    const r = await platform.request(sim.devices[0]!.id, "transparent", SAMPLES.transparent);
    expect(childText(r.params, c.transparent.reply.data!)).toBe("aGVsbG8=");
  });

  it("an undecodable datagram from the platform is counted and not answered", async () => {
    const { platform, sim } = await online();
    const d = sim.devices[0]!;
    platform.sendRaw(d.id, Buffer.from("<PPVSPMessage><Sequence>1</Sequ"));
    await sim.waitFor(() => sim.stats().decodeErrors === 1, 1000);
    expect(sim.stats().commandsAnswered).toBe(0);
  });
});
