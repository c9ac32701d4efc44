/**
 * Lenient in (ehome-2.0 §1.3, §8 rule 3): what real devices put on the wire is accepted, and each
 * device is answered in the encoding it used.
 */
import { readFileSync } from "node:fs";
import iconv from "iconv-lite";
import { describe, expect, it } from "vitest";
import { COMMANDS, ENVELOPE } from "../../../../edge-agent/signalling/catalogue.ts";
import {
  buildFields,
  childText,
  type DecodeResult,
  decode,
  encode,
  type Message,
} from "../../../../edge-agent/signalling/codec/index.ts";
import * as fx from "../../../fixtures/datagrams/index.ts";

function decodeOk(bytes: Uint8Array): Message {
  const result: DecodeResult = decode(bytes);
  if (!result.ok) throw new Error(`expected ok, got ${result.error.code}: ${result.error.message}`);
  return result.message;
}

const keepalive = (declaration: string, deviceId = "cam-0001"): string =>
  `${declaration}<PPVSPMessage><Version>2.0</Version><Sequence>101</Sequence>` +
  `<CommandType>REQUEST</CommandType><Command>KEEPALIVE</Command>` +
  `<Params><DeviceID>${deviceId}</DeviceID></Params></PPVSPMessage>`;

describe("fixture files", () => {
  it("the committed .bin files are exactly what the fixture builders produce", () => {
    for (const f of fx.allFixtures()) {
      const onDisk = readFileSync(
        new URL(`../../../fixtures/datagrams/${f.name}.bin`, import.meta.url),
      );
      expect(onDisk.equals(f.bytes), `${f.name}.bin is stale: run write.ts`).toBe(true);
    }
  });
});

describe("encodings and declarations (§1.3)", () => {
  it("decodes GB2312 bytes with Chinese comments inside and between elements", () => {
    const bytes = fx.registerGb2312ChineseComments();
    // The fixture really is GB2312: its Chinese text is not valid UTF-8.
    expect(() => new TextDecoder("utf-8", { fatal: true }).decode(bytes)).toThrow();
    const m = decodeOk(bytes);
    expect(m).toMatchObject({ kind: "register", header: { encoding: "GB2312" }, deviceId: "0012" });
  });

  it.each([
    ["UTF - 8 with spaces", fx.keepaliveDeclUtfSpaces(), "UTF-8"],
    ['encoding = "UTF-8" with spaces around =', fx.keepaliveDeclSpacedEquals(), "UTF-8"],
    [
      'encoding="GB2312" ?> with a space before ?>',
      fx.keepaliveDeclGb2312SpaceBeforeClose(),
      "GB2312",
    ],
  ])("accepts the malformed declaration %s", (_label, bytes, encoding) => {
    expect(decodeOk(bytes)).toEqual({
      kind: "keepalive",
      header: { version: "2.0", sequence: 101, encoding },
      deviceId: "cam-0001",
    });
  });

  it.each([
    ["encoding='gbk'", "GBK"],
    ['encoding="gb18030"', "GB18030"],
    ['encoding="EUC-CN"', "GB2312"],
    ['encoding="utf_8"', "UTF-8"],
  ])("maps the declaration %s to %s", (attr, encoding) => {
    const m = decodeOk(Buffer.from(keepalive(`<?xml version="1.0" ${attr}?>`)));
    expect(m.header.encoding).toBe(encoding);
  });

  it("treats a datagram without declaration as UTF-8, and GB bytes without one as GB18030", () => {
    expect(decodeOk(Buffer.from(keepalive(""))).header.encoding).toBe("UTF-8");
    const gb = iconv.encode(keepalive("", "门口"), "gb18030");
    expect(decodeOk(gb)).toMatchObject({ header: { encoding: "GB18030" }, deviceId: "门口" });
  });

  it("tolerates a device declaring one family and writing the other", () => {
    const gbUnderUtf8 = iconv.encode(
      keepalive('<?xml version="1.0" encoding="UTF-8"?>', "门口"),
      "gb2312",
    );
    expect(decodeOk(gbUnderUtf8)).toMatchObject({
      header: { encoding: "GB18030" },
      deviceId: "门口",
    });
    // "中" is E4 B8 AD in UTF-8: GB18030 reads E4 B8 as a pair, then AD followed by "<" is not a
    // GB18030 sequence, so only UTF-8 can read these bytes.
    const utf8UnderGb = Buffer.from(keepalive('<?xml version="1.0" encoding="GB2312"?>', "中"));
    expect(decodeOk(utf8UnderGb)).toMatchObject({ header: { encoding: "UTF-8" }, deviceId: "中" });
  });

  it("strips a UTF-8 byte-order mark", () => {
    const bytes = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(keepalive(""))]);
    expect(decodeOk(bytes)).toMatchObject({ kind: "keepalive", deviceId: "cam-0001" });
  });
});

describe("layout quirks", () => {
  it("strips trailing whitespace and NUL padding (a 1,024-byte firmware buffer)", () => {
    const bytes = fx.keepaliveNulPadded();
    expect(bytes.length).toBe(1024);
    expect(bytes[bytes.length - 1]).toBe(0);
    expect(decodeOk(bytes)).toMatchObject({ kind: "keepalive", deviceId: "cam-0001" });
  });

  it("accepts comments between elements and inside text", () => {
    const xml =
      "<!-- a --><PPVSPMessage><!-- b --><Version>2.0</Version><!-- c --><Sequence>1</Sequence>" +
      "<CommandType>REQUEST</CommandType><Command><!-- d -->KEEPALIVE</Command>" +
      "<Params><DeviceID>00<!-- e -->12</DeviceID></Params></PPVSPMessage><!-- f -->";
    expect(decodeOk(Buffer.from(xml))).toMatchObject({ kind: "keepalive", deviceId: "0012" });
  });

  it("keeps DeviceID 0012 a string (parseTagValue off)", () => {
    const m = decodeOk(fx.keepaliveGb2312());
    expect(m).toMatchObject({ deviceId: "0012" });
    if (m.kind !== "keepalive") throw new Error("kind");
    expect(typeof m.deviceId).toBe("string");
    expect(typeof m.header.version).toBe("string");
  });

  it("matches element names case-insensitively (VideoID = VideoId, deviceid = DeviceID)", () => {
    expect(decodeOk(fx.alarmGb2312MixedCase())).toMatchObject({
      deviceId: "0012",
      picIds: ["pic-001", "pic-002"],
      videoIds: ["vid-001"],
    });
    const lower = keepalive("")
      .replace(/CommandType>/g, "commandtype>")
      .replace(/DeviceID>/g, "deviceID>");
    expect(decodeOk(Buffer.from(lower))).toMatchObject({ kind: "keepalive", deviceId: "cam-0001" });
  });

  it("accepts a REGISTER with only DeviceID (every optional element missing)", () => {
    const bytes = encode({
      kind: "request",
      version: ENVELOPE.deviceVersion,
      sequence: 1,
      command: COMMANDS.register.command,
      params: buildFields(COMMANDS.register.params, { deviceId: "bare" }),
    });
    if (!bytes.ok) throw new Error(bytes.error.code);
    expect(decodeOk(bytes.bytes)).toEqual({
      kind: "register",
      header: { version: "2.0", sequence: 1, encoding: "UTF-8" },
      deviceId: "bare",
      params: { DeviceID: "bare" },
    });
  });

  it("accepts the 1,120-byte REGISTER that FreeEhome drops (peers.md)", () => {
    const bytes = fx.register1120Bytes();
    expect(bytes.length).toBe(1120);
    expect(decodeOk(bytes)).toMatchObject({
      kind: "register",
      deviceId: "warehouse-dock-07-camera-north",
    });
  });

  it("accepts attributes, CDATA and entity references inside values", () => {
    const xml = keepalive("").replace(
      "<DeviceID>cam-0001</DeviceID>",
      '<DeviceID type="text">a&amp;b<![CDATA[<c>]]></DeviceID>',
    );
    expect(decodeOk(Buffer.from(xml))).toMatchObject({ deviceId: "a&b<c>" });
  });
});

describe("XML details", () => {
  const withId = (inner: string): Buffer =>
    Buffer.from(
      keepalive("").replace("<DeviceID>cam-0001</DeviceID>", `<DeviceID>${inner}</DeviceID>`),
    );

  it("decodes the predefined entities and character references, and keeps unknown entities", () => {
    expect(decodeOk(withId("&lt;&gt;&amp;&quot;&apos;"))).toMatchObject({ deviceId: "<>&\"'" });
    expect(decodeOk(withId("&#65;&#x4E2D;&#x1F600;"))).toMatchObject({ deviceId: "A中😀" });
    expect(decodeOk(withId("a&nbsp;b & c"))).toMatchObject({ deviceId: "a&nbsp;b & c" });
  });

  it("trims XML whitespace around values after decoding, but not U+3000 or NBSP", () => {
    expect(decodeOk(withId(" \r\n\t cam-1 \n"))).toMatchObject({ deviceId: "cam-1" });
    expect(decodeOk(withId("&#32;cam-2&#x20;"))).toMatchObject({ deviceId: "cam-2" });
    expect(decodeOk(withId("\u3000门\u00a0"))).toMatchObject({ deviceId: "\u3000门\u00a0" });
  });

  it("reads CR LF and lone CR as LF (XML 1.0 §2.11), and a CR reference as CR", () => {
    const m = decodeOk(Buffer.from(fx.gpsUtf8().toString().replace("车辆定位", "a\r\nb\rc&#13;d")));
    if (m.kind !== "gps") throw new Error("kind");
    expect(childText(m.params, COMMANDS.gps.params.remark)).toBe("a\nb\nc\rd");
  });

  it("keeps the text of an element that also has children under #text", () => {
    const m = decodeOk(
      Buffer.from(keepalive("").replace("<Params>", "<Params>loose<Extra>1</Extra> text")),
    );
    if (m.kind !== "keepalive") throw new Error("kind");
    expect(m.deviceId).toBe("cam-0001");
    const again = decode(
      Buffer.from(fx.statusNoDeclaration().toString().replace("<Params>", "<Params>loose")),
    );
    expect(again.ok && again.message.kind === "device-request" && again.message.params).toEqual({
      "#text": "loose",
      DeviceID: "cam-0001",
      CPU: "12",
      Mem: "40",
      Temperature: "41",
    });
  });

  it("makes repeated elements lists, and catalogue-repeatable ones lists even when single", () => {
    const xml = fx
      .statusNoDeclaration()
      .toString()
      .replace("<CPU>12</CPU>", "<CPU>1</CPU><CPU>2</CPU><PicID>p</PicID>");
    const m = decodeOk(Buffer.from(xml));
    if (m.kind !== "device-request") throw new Error("kind");
    expect(m.params).toMatchObject({ CPU: ["1", "2"], PicID: ["p"] });
  });
});

describe("answering in kind (§1.3)", () => {
  it("answers a GB2312 request with GB2312 bytes that decode back to the same Chinese text", () => {
    const request = decodeOk(fx.registerGb2312ChineseComments());
    expect(request.header.encoding).toBe("GB2312");
    const description = "注册成功，欢迎";
    const reply = encode(
      {
        kind: "response",
        version: ENVELOPE.platformVersion,
        sequence: request.header.sequence,
        method: COMMANDS.register.method,
        whichCommand: COMMANDS.register.command,
        status: 200,
        description,
        params: buildFields(COMMANDS.register.reply, { keepAliveSeconds: 15 }),
      },
      { encoding: request.header.encoding },
    );
    if (!reply.ok) throw new Error(reply.error.code);
    const text = iconv.decode(reply.bytes, "gb2312");
    expect(text.startsWith('<?xml version="1.0" encoding="GB2312"?>')).toBe(true);
    expect(reply.bytes.includes(iconv.encode(description, "gb2312"))).toBe(true);
    expect(reply.bytes.includes(Buffer.from(description, "utf8"))).toBe(false);
    const back = decodeOk(reply.bytes);
    expect(back).toMatchObject({
      kind: "response",
      header: { encoding: "GB2312", sequence: 21910 },
      description,
    });
  });

  it("answers a UTF-8 device in UTF-8", () => {
    const request = decodeOk(fx.gpsUtf8());
    const reply = encode(
      {
        kind: "response",
        version: ENVELOPE.platformVersion,
        sequence: request.header.sequence,
        whichCommand: COMMANDS.gps.command,
        status: 200,
        description: "已收到",
        params: buildFields(COMMANDS.gps.reply, { retransFlag: "1" }),
      },
      { encoding: request.header.encoding },
    );
    if (!reply.ok) throw new Error(reply.error.code);
    expect(reply.bytes.includes(Buffer.from("已收到", "utf8"))).toBe(true);
    const back = decodeOk(reply.bytes);
    expect(back).toMatchObject({ header: { encoding: "UTF-8" }, description: "已收到" });
    if (back.kind !== "response") throw new Error("kind");
    expect(childText(back.params, COMMANDS.gps.reply.retransFlag)).toBe("1");
  });
});
