/**
 * One block per message kind: decode what devices (or the platform) send, encode what we send, and
 * the round trip decode → encode → decode keeps every field. ehome-2.0 §1.2, §2.1–§2.9, §8.
 */
import { describe, expect, it } from "vitest";
import { BLOCKS, COMMANDS, ENVELOPE } from "../../../../edge-agent/signalling/catalogue.ts";
import {
  buildFields,
  childElement,
  childText,
  childTexts,
  type DecodeOptions,
  decode,
  encode,
  type Message,
  type OutboundMessage,
  type WireEncoding,
} from "../../../../edge-agent/signalling/codec/index.ts";
import * as fx from "../../../fixtures/datagrams/index.ts";

function decodeOk(bytes: Uint8Array, options: DecodeOptions = {}): Message {
  const result = decode(bytes, options);
  if (!result.ok) throw new Error(`expected ok, got ${result.error.code}: ${result.error.message}`);
  return result.message;
}

function encodeOk(message: OutboundMessage, encoding: WireEncoding = "UTF-8"): Buffer {
  const result = encode(message, { encoding });
  if (!result.ok) throw new Error(`expected ok, got ${result.error.code}: ${result.error.message}`);
  return result.bytes;
}

/** What the other side would write to reproduce a decoded message. */
function toOutbound(m: Message): OutboundMessage {
  const base = { version: m.header.version, sequence: m.header.sequence, method: m.header.method };
  switch (m.kind) {
    case "register":
      return { ...base, kind: "request", command: COMMANDS.register.command, params: m.params };
    case "keepalive":
      return {
        ...base,
        kind: "request",
        command: COMMANDS.keepalive.command,
        params: buildFields(COMMANDS.keepalive.params, { deviceId: m.deviceId }),
      };
    case "gps":
      return { ...base, kind: "request", command: COMMANDS.gps.command, params: m.params };
    case "alarm":
      return { ...base, kind: "request", command: COMMANDS.alarm.command, params: m.params };
    case "device-request":
    case "platform-request":
      return { ...base, kind: "request", command: m.command, params: m.params };
    case "response":
      return {
        ...base,
        kind: "response",
        whichCommand: m.whichCommand,
        status: m.status,
        description: m.description,
        params: m.params,
      };
  }
}

function expectRoundTrip(bytes: Uint8Array, options: DecodeOptions = {}): Message {
  const first = decodeOk(bytes, options);
  const again = decodeOk(encodeOk(toOutbound(first), first.header.encoding), options);
  expect(again).toEqual(first);
  return first;
}

describe("REGISTER (ehome-2.0 §2.1)", () => {
  it("decodes the GB2312 capture with Chinese comments into a register message", () => {
    const m = decodeOk(fx.registerGb2312ChineseComments());
    expect(m).toMatchObject({
      kind: "register",
      header: { version: "2.0", sequence: 21910, encoding: "GB2312" },
      deviceId: "0012",
      netUnitType: "PU",
      firmwareVersion: "V5.4.5 build 170302",
      localIp: "192.168.1.64",
      localPort: "9486",
      devType: "31",
      manufacture: "0",
    });
    if (m.kind !== "register") throw new Error("kind");
    expect(m.header.method).toBeUndefined();
    expect(m.password).toBeUndefined();
    // Unknown elements stay available in params, Chinese text intact.
    expect(childText(m.params, "DeviceName")).toBe("前门摄像机");
  });

  it("reads the EHome 4.0 fields (Password, SerialNumber, Method)", () => {
    const m = decodeOk(fx.register1120Bytes());
    expect(m).toMatchObject({
      kind: "register",
      header: { version: "4.0", method: COMMANDS.register.method },
      deviceId: "warehouse-dock-07-camera-north",
      password: "0f6c1a5e6b1d2f3a4b5c6d7e8f901234",
      serialNumber: "DS-2CD2143G0-I20190101AACHC12345678",
    });
  });

  it("encodes a device REGISTER in the capture's element order", () => {
    const bytes = encodeOk(
      {
        kind: "request",
        version: ENVELOPE.deviceVersion,
        sequence: 100,
        command: COMMANDS.register.command,
        params: buildFields(COMMANDS.register.params, {
          netUnitType: "PU",
          deviceId: "cam-0001",
          firmwareVersion: "V5.5.0 build 180101",
          localIp: "10.0.0.20",
          localPort: 40000,
          devType: 31,
          manufacture: 0,
        }),
      },
      "GB2312",
    );
    expect(bytes.toString("latin1")).toBe(
      '<?xml version="1.0" encoding="GB2312"?>\n' +
        "<PPVSPMessage><Version>2.0</Version><Sequence>100</Sequence>" +
        "<CommandType>REQUEST</CommandType><Command>REGISTER</Command><Params>" +
        "<NetUnitType>PU</NetUnitType><DeviceID>cam-0001</DeviceID>" +
        "<FirmwareVersion>V5.5.0 build 180101</FirmwareVersion><LocalIP>10.0.0.20</LocalIP>" +
        "<LocalPort>40000</LocalPort><DevType>31</DevType><Manufacture>0</Manufacture>" +
        "</Params></PPVSPMessage>",
    );
    expect(decodeOk(bytes)).toMatchObject({ kind: "register", deviceId: "cam-0001" });
  });

  it("round-trips the GB2312 and the 1,120-byte REGISTER", () => {
    expectRoundTrip(fx.registerGb2312ChineseComments());
    expectRoundTrip(fx.register1120Bytes());
  });
});

describe("KEEPALIVE (ehome-2.0 §2.2)", () => {
  it("decodes to the device id alone, Sequence continuing the device counter", () => {
    expect(decodeOk(fx.keepaliveGb2312())).toEqual({
      kind: "keepalive",
      header: { version: "2.0", sequence: 21911, encoding: "GB2312" },
      deviceId: "0012",
    });
  });

  it("encodes a device KEEPALIVE and round-trips it", () => {
    const bytes = encodeOk({
      kind: "request",
      version: ENVELOPE.deviceVersion,
      sequence: 101,
      command: COMMANDS.keepalive.command,
      params: buildFields(COMMANDS.keepalive.params, { deviceId: "cam-0001" }),
    });
    expect(bytes.toString("latin1")).toBe(
      '<?xml version="1.0" encoding="UTF-8"?>\n<PPVSPMessage><Version>2.0</Version>' +
        "<Sequence>101</Sequence><CommandType>REQUEST</CommandType><Command>KEEPALIVE</Command>" +
        "<Params><DeviceID>cam-0001</DeviceID></Params></PPVSPMessage>",
    );
    expectRoundTrip(bytes);
    expectRoundTrip(fx.keepaliveGb2312());
  });
});

describe("GPS (ehome-2.0 §2.9)", () => {
  it("decodes the report, keeping coordinates raw and RetransFlag for the echo", () => {
    const m = decodeOk(fx.gpsUtf8());
    expect(m).toMatchObject({
      kind: "gps",
      header: { sequence: 5021, encoding: "UTF-8" },
      deviceId: "bus-0042",
      retransFlag: "1",
    });
    if (m.kind !== "gps") throw new Error("kind");
    expect(childText(m.params, COMMANDS.gps.params.longitude)).toBe("41868000");
    expect(childText(m.params, COMMANDS.gps.params.remark)).toBe("车辆定位");
  });

  it("defaults RetransFlag to 0 when a device leaves it out", () => {
    const bytes = encodeOk({
      kind: "request",
      version: ENVELOPE.deviceVersion,
      sequence: 1,
      command: COMMANDS.gps.command,
      params: buildFields(COMMANDS.gps.params, { deviceId: "bus-1", latitude: 1 }),
    });
    expect(decodeOk(bytes)).toMatchObject({ kind: "gps", deviceId: "bus-1", retransFlag: "0" });
  });

  it("round-trips", () => {
    expectRoundTrip(fx.gpsUtf8());
  });
});

describe("ALARM (ehome-2.0 §8, provisional)", () => {
  it("decodes repeated PicID and VideoId whatever their case", () => {
    const m = decodeOk(fx.alarmGb2312MixedCase());
    expect(m).toMatchObject({
      kind: "alarm",
      header: { sequence: 777, encoding: "GB2312", method: COMMANDS.alarm.method },
      deviceId: "0012",
      retransFlag: "0",
      picIds: ["pic-001", "pic-002"],
      videoIds: ["vid-001"],
    });
    if (m.kind !== "alarm") throw new Error("kind");
    expect(childText(m.params, COMMANDS.alarm.params.remark)).toBe("仓库门口移动侦测");
  });

  it("accepts an alarm with every optional element missing", () => {
    expect(decodeOk(fx.alarmMinimal())).toEqual({
      kind: "alarm",
      header: { version: "2.0", sequence: 778, encoding: "UTF-8" },
      deviceId: "cam-0001",
      retransFlag: "0",
      picIds: [],
      videoIds: [],
      params: { DeviceID: "cam-0001" },
    });
  });

  it("encodes the simulator's alarm with pictures and round-trips it", () => {
    const bytes = encodeOk({
      kind: "request",
      version: ENVELOPE.deviceVersion,
      sequence: 9,
      method: COMMANDS.alarm.method,
      command: COMMANDS.alarm.command,
      params: buildFields(COMMANDS.alarm.params, {
        deviceId: "cam-9",
        alarmType: 3,
        picId: ["p1", "p2", "p3"],
        videoId: ["v1"],
      }),
    });
    expect(decodeOk(bytes)).toMatchObject({ picIds: ["p1", "p2", "p3"], videoIds: ["v1"] });
    expectRoundTrip(bytes);
    expectRoundTrip(fx.alarmGb2312MixedCase());
  });
});

describe("other device requests", () => {
  it("decodes STATUS as a device-request with its catalogue id", () => {
    expect(decodeOk(fx.statusNoDeclaration())).toMatchObject({
      kind: "device-request",
      commandId: "status",
      command: COMMANDS.status.command,
      deviceId: "cam-0001",
    });
  });

  it("keeps an uncatalogued command as a device-request with commandId null", () => {
    const m = decodeOk(fx.unknownDeviceCommand());
    expect(m).toMatchObject({ kind: "device-request", commandId: null, deviceId: "cam-0001" });
    if (m.kind !== "device-request") throw new Error("kind");
    expect(m.command).toBe("FACESNAPREPORT");
  });

  it("round-trips", () => {
    expectRoundTrip(fx.statusNoDeclaration());
    expectRoundTrip(fx.unknownDeviceCommand());
  });
});

describe("platform requests, as the simulator decodes them (role device)", () => {
  const asDevice = { role: "device" } as const;

  it("decodes INVITESTREAM and a GETDEVICECONFIG whose Method comes first (§1.2)", () => {
    expect(decodeOk(fx.platformInviteStream(), asDevice)).toMatchObject({
      kind: "platform-request",
      header: { version: "2.5", sequence: 3012, method: "MEDIA" },
      commandId: "inviteStream",
      params: { Channel: "1", ChannelType: "SUB", SinkIP: "203.0.113.10", SinkPort: "31000" },
    });
    expect(decodeOk(fx.platformGetConfigMethodFirst(), asDevice)).toMatchObject({
      kind: "platform-request",
      header: { sequence: 2002, method: COMMANDS.getDeviceConfig.method },
      commandId: "getDeviceConfig",
    });
  });

  it("encodes every catalogued platform command so that the simulator decodes it back", () => {
    for (const [id, entry] of Object.entries(COMMANDS)) {
      if (entry.direction !== "platform") continue;
      const values = Object.fromEntries(Object.keys(entry.params).map((k) => [k, `v-${k}`]));
      const out: OutboundMessage = {
        kind: "request",
        version: ENVELOPE.platformVersion,
        sequence: 4000,
        method: entry.method,
        command: entry.command,
        params: buildFields(entry.params, values),
      };
      const m = decodeOk(encodeOk(out, "GB2312"), asDevice);
      expect(m).toMatchObject({ kind: "platform-request", commandId: id, command: entry.command });
      if (m.kind !== "platform-request") throw new Error("kind");
      for (const [key, name] of Object.entries(entry.params)) {
        expect(childText(m.params, name)).toBe(`v-${key}`);
      }
    }
  });

  it("round-trips", () => {
    expectRoundTrip(fx.platformInviteStream(), asDevice);
    expectRoundTrip(fx.platformGetConfigMethodFirst(), asDevice);
  });
});

describe("responses (ehome-2.0 §1.2, §3.4)", () => {
  it("decodes the GetServerInfo answer through ConfigXML/SERVERINFO (§2.3)", () => {
    const m = decodeOk(fx.responseServerInfoGb2312());
    expect(m).toMatchObject({
      kind: "response",
      header: { sequence: 2002, encoding: "GB2312" },
      whichCommand: COMMANDS.getDeviceConfig.command,
      status: 200,
      description: "OK",
    });
    if (m.kind !== "response") throw new Error("kind");
    const info = childElement(
      childElement(m.params, COMMANDS.getDeviceConfig.reply.configXml),
      "SERVERINFO",
    );
    expect(childText(info, "SerialNumber")).toBe("DS-2CD4085F-AP20170302CCCH123456789");
    expect(childText(info, "ChannelNumber")).toBe("1");
  });

  it("decodes work status channels as a list even when there is one disk (§2.4)", () => {
    const m = decodeOk(fx.responseWorkStatus());
    if (m.kind !== "response") throw new Error("kind");
    const status = childElement(m.params, COMMANDS.getWorkStatus.reply.deviceStatusXml);
    expect(childTexts(childElement(status, "CHStatus"), "CH")).toEqual([
      "1-1-0-0-2048-1-1-1",
      "2-0-1-0-0-0-1-0",
    ]);
    expect(childTexts(childElement(status, "DSKStatus"), "DSK")).toEqual(["1-953869-512000-0"]);
  });

  it("keeps a device error's Status and Description (401, typo included)", () => {
    expect(decodeOk(fx.responsePtz401())).toEqual({
      kind: "response",
      header: { version: "2.0", sequence: 3020, encoding: "GB2312" },
      whichCommand: COMMANDS.ptzControl.command,
      status: 401,
      description: "System Oper Faild.",
      params: {},
    });
  });

  it("decodes the simulator's GetServerInfo answer as the agent reads it (role platform)", () => {
    const { serverInfo } = BLOCKS;
    const bytes = encodeOk({
      kind: "response",
      version: ENVELOPE.deviceVersion,
      sequence: 2002,
      whichCommand: COMMANDS.getDeviceConfig.command,
      status: 200,
      description: "OK",
      params: buildFields(COMMANDS.getDeviceConfig.reply, {
        configXml: {
          [serverInfo.block]: buildFields(serverInfo.fields, {
            serialNumber: "SN1",
            channelNumber: 4,
          }),
        },
      }),
    });
    const m = decodeOk(bytes);
    expect(m).toMatchObject({ kind: "response", whichCommand: COMMANDS.getDeviceConfig.command });
    if (m.kind !== "response") throw new Error("kind");
    const block = childElement(
      childElement(m.params, COMMANDS.getDeviceConfig.reply.configXml),
      serverInfo.block,
    );
    expect(childText(block, serverInfo.fields.serialNumber)).toBe("SN1");
    expect(childText(block, serverInfo.fields.channelNumber)).toBe("4");
  });

  it("round-trips", () => {
    expectRoundTrip(fx.responseServerInfoGb2312());
    expectRoundTrip(fx.responseWorkStatus());
    expectRoundTrip(fx.responsePtz401());
  });
});
