/**
 * Exact out (ehome-2.0 §8 rule 3): the datagrams the agent sends in §2.1–§2.4, built only from the
 * catalogue and `encode`, compared byte for byte with the protocol document's examples (same element
 * order, same values; our encoder writes no whitespace between elements).
 */
import { describe, expect, it } from "vitest";
import {
  COMMANDS,
  CONFIG_CMD,
  DEFAULT_VIEW,
  ENVELOPE,
} from "../../../../edge-agent/signalling/catalogue.ts";
import {
  buildFields,
  encode,
  type OutboundMessage,
  type WireEncoding,
} from "../../../../edge-agent/signalling/codec/index.ts";

const c = DEFAULT_VIEW.commands;

function bytesOf(message: OutboundMessage, encoding: WireEncoding): Buffer {
  const result = encode(message, { encoding });
  if (!result.ok) throw new Error(`${result.error.code}: ${result.error.message}`);
  return result.bytes;
}

function expectBytes(actual: Buffer, expected: string): void {
  // Compare as text for a readable diff, then as bytes (the expected text is ASCII).
  expect(actual.toString("latin1")).toBe(expected);
  expect(actual.equals(Buffer.from(expected, "latin1"))).toBe(true);
}

describe("§2.1 REGISTER response", () => {
  const response = (sequence: number): OutboundMessage => ({
    kind: "response",
    version: ENVELOPE.platformVersion,
    sequence,
    method: c.register.method,
    whichCommand: c.register.command,
    status: 200,
    description: "OK",
    params: buildFields(COMMANDS.register.reply, {
      keepAliveSeconds: 15,
      alarmServerIp: "203.0.113.10",
      alarmServerPort: 7332,
      alarmServerType: 0,
      ntpServerIp: "203.0.113.10",
      ntpServerPort: 123,
      ntpInterval: 3600,
      pictureServer: "203.0.113.10",
      pictureServerPort: 10002,
      pictureServerType: 2,
      blackListAddr: "",
      blackListName: "",
      blackListPort: 0,
      blackListUser: "",
      blackListPassword: "",
      registerServerIp: "",
      registerServerPort: 0,
    }),
  });

  const params =
    "<Params><KeepAliveSeconds>15</KeepAliveSeconds><AlarmServerIP>203.0.113.10</AlarmServerIP>" +
    "<AlarmServerPort>7332</AlarmServerPort><AlarmServerType>0</AlarmServerType>" +
    "<NTPServerIP>203.0.113.10</NTPServerIP><NTPServerPort>123</NTPServerPort>" +
    "<NTPInterval>3600</NTPInterval><PictureServer>203.0.113.10</PictureServer>" +
    "<PictureServerPort>10002</PictureServerPort><PictureServerType>2</PictureServerType>" +
    "<BlackListAddr></BlackListAddr><BlackListName></BlackListName>" +
    "<BlackListPort>0</BlackListPort><BlackListUser></BlackListUser>" +
    "<BlackListPassword></BlackListPassword><RegisterServerIP></RegisterServerIP>" +
    "<RegisterServerPort>0</RegisterServerPort></Params>";

  it("matches the example byte for byte in GB2312", () => {
    expectBytes(
      bytesOf(response(100), "GB2312"),
      '<?xml version="1.0" encoding="GB2312"?>\n' +
        "<PPVSPMessage><Version>2.5</Version><Sequence>100</Sequence>" +
        "<CommandType>RESPONSE</CommandType><Method>REGISTER</Method>" +
        "<WhichCommand>REGISTER</WhichCommand><Status>200</Status><Description>OK</Description>" +
        params +
        "</PPVSPMessage>",
    );
  });

  it("differs only in the declaration for a UTF-8 device", () => {
    expectBytes(
      bytesOf(response(21910), "UTF-8"),
      '<?xml version="1.0" encoding="UTF-8"?>\n' +
        "<PPVSPMessage><Version>2.5</Version><Sequence>21910</Sequence>" +
        "<CommandType>RESPONSE</CommandType><Method>REGISTER</Method>" +
        "<WhichCommand>REGISTER</WhichCommand><Status>200</Status><Description>OK</Description>" +
        params +
        "</PPVSPMessage>",
    );
  });
});

describe("§2.2 KEEPALIVE responses", () => {
  it("answers a known device 200 with Method CONTROL and no Params", () => {
    expectBytes(
      bytesOf(
        {
          kind: "response",
          version: ENVELOPE.platformVersion,
          sequence: 101,
          method: c.keepalive.method,
          whichCommand: c.keepalive.command,
          status: 200,
          description: "OK",
        },
        "GB2312",
      ),
      '<?xml version="1.0" encoding="GB2312"?>\n' +
        "<PPVSPMessage><Version>2.5</Version><Sequence>101</Sequence>" +
        "<CommandType>RESPONSE</CommandType><Method>CONTROL</Method>" +
        "<WhichCommand>KEEPALIVE</WhichCommand><Status>200</Status>" +
        "<Description>OK</Description></PPVSPMessage>",
    );
  });

  it("answers an unknown device 403 with Method REGISTER so that it re-registers (§3.4)", () => {
    // FreeEhome fills Description with OK on the 403 (§3.4) and devices re-register on it.
    expectBytes(
      bytesOf(
        {
          kind: "response",
          version: ENVELOPE.platformVersion,
          sequence: 102,
          method: c.register.method,
          whichCommand: c.keepalive.command,
          status: 403,
          description: "OK",
        },
        "GB2312",
      ),
      '<?xml version="1.0" encoding="GB2312"?>\n' +
        "<PPVSPMessage><Version>2.5</Version><Sequence>102</Sequence>" +
        "<CommandType>RESPONSE</CommandType><Method>REGISTER</Method>" +
        "<WhichCommand>KEEPALIVE</WhichCommand><Status>403</Status>" +
        "<Description>OK</Description></PPVSPMessage>",
    );
  });
});

describe("§2.3 GETDEVICECONFIG request", () => {
  it("asks GetServerInfo with ConfigParam1..4 = 0, Method before Command", () => {
    expectBytes(
      bytesOf(
        {
          kind: "request",
          version: ENVELOPE.platformVersion,
          sequence: 2002,
          method: c.getDeviceConfig.method,
          command: c.getDeviceConfig.command,
          params: buildFields(COMMANDS.getDeviceConfig.params, {
            configCmd: CONFIG_CMD.getServerInfo,
            configParam1: 0,
            configParam2: 0,
            configParam3: 0,
            configParam4: 0,
          }),
        },
        "GB2312",
      ),
      '<?xml version="1.0" encoding="GB2312"?>\n' +
        "<PPVSPMessage><Version>2.5</Version><Sequence>2002</Sequence>" +
        "<CommandType>REQUEST</CommandType><Method>PARAM</Method>" +
        "<Command>GETDEVICECONFIG</Command><Params><ConfigCmd>GetServerInfo</ConfigCmd>" +
        "<ConfigParam1>0</ConfigParam1><ConfigParam2>0</ConfigParam2>" +
        "<ConfigParam3>0</ConfigParam3><ConfigParam4>0</ConfigParam4></Params></PPVSPMessage>",
    );
  });
});

describe("§2.4 GETDEVICEWORKSTATUS request", () => {
  const request = (params?: OutboundMessage["params"]): OutboundMessage => ({
    kind: "request",
    version: ENVELOPE.platformVersion,
    sequence: 2004,
    method: c.getWorkStatus.method,
    command: c.getWorkStatus.command,
    params,
  });
  const head =
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    "<PPVSPMessage><Version>2.5</Version><Sequence>2004</Sequence>" +
    "<CommandType>REQUEST</CommandType><Method>QUERY</Method>" +
    "<Command>GETDEVICEWORKSTATUS</Command>";

  it("sends empty Params as <Params/> when built from the catalogue's (empty) field map", () => {
    const params = buildFields(COMMANDS.getWorkStatus.params, {});
    expectBytes(bytesOf(request(params), "UTF-8"), `${head}<Params/></PPVSPMessage>`);
  });

  it("leaves Params out when none are given", () => {
    expectBytes(bytesOf(request(), "UTF-8"), `${head}</PPVSPMessage>`);
  });
});
