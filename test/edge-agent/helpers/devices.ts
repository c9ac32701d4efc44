import { COMMANDS, ENVELOPE } from "../../../edge-agent/signalling/catalogue.ts";
import {
  buildFields,
  decode,
  encode,
  type FieldValue,
  type Message,
  type WireEncoding,
  type XmlElement,
} from "../../../edge-agent/signalling/codec/index.ts";

/** Device-side datagrams built with the codec and the catalogue (no element name spelled here). */

function request(
  command: string,
  sequence: number,
  params: XmlElement,
  encoding: WireEncoding = "GB2312",
): Buffer {
  const r = encode(
    { kind: "request", version: ENVELOPE.deviceVersion, sequence, command, params },
    { encoding, maxBytes: 65_000 },
  );
  if (!r.ok) throw new Error(r.error.message);
  return r.bytes;
}

export interface RegisterOptions {
  deviceId: string;
  sequence: number;
  encoding?: WireEncoding;
  firmwareVersion?: string;
  devType?: string;
  password?: string;
  localIp?: string;
}

export function registerDatagram(o: RegisterOptions): Buffer {
  const values: Partial<Record<keyof typeof COMMANDS.register.params, FieldValue>> = {
    netUnitType: "PU",
    deviceId: o.deviceId,
    firmwareVersion: o.firmwareVersion ?? "V5.5.0 build 180101",
    localIp: o.localIp ?? "10.0.0.20",
    localPort: 40000,
    devType: o.devType ?? "31",
    manufacture: 0,
    password: o.password,
  };
  return request(
    COMMANDS.register.command,
    o.sequence,
    buildFields(COMMANDS.register.params, values),
    o.encoding,
  );
}

export function keepaliveDatagram(
  deviceId: string,
  sequence: number,
  encoding?: WireEncoding,
  command: string = COMMANDS.keepalive.command,
): Buffer {
  return request(command, sequence, buildFields(COMMANDS.keepalive.params, { deviceId }), encoding);
}

export function gpsDatagram(
  deviceId: string,
  sequence: number,
  retransFlag: string,
  encoding?: WireEncoding,
): Buffer {
  return request(
    COMMANDS.gps.command,
    sequence,
    buildFields(COMMANDS.gps.params, {
      deviceId,
      time: "2024-05-01 10:00:00",
      divisionEw: "E",
      longitude: 41_000_000,
      divisionNs: "N",
      latitude: 14_000_000,
      retransFlag,
      needsResponse: 1,
    }),
    encoding,
  );
}

export function deviceRequestDatagram(
  command: string,
  sequence: number,
  params: XmlElement,
  encoding?: WireEncoding,
): Buffer {
  return request(command, sequence, params, encoding);
}

export function responseDatagram(
  sequence: number,
  whichCommand: string,
  status = 200,
  params?: XmlElement,
  description = status === 200 ? "OK" : "System Oper Faild.",
  encoding: WireEncoding = "GB2312",
): Buffer {
  const r = encode(
    {
      kind: "response",
      version: ENVELOPE.deviceVersion,
      sequence,
      whichCommand,
      status,
      description,
      params,
    },
    { encoding, maxBytes: 65_000 },
  );
  if (!r.ok) throw new Error(r.error.message);
  return r.bytes;
}

/** Decodes what the agent sent, as a device would. */
export function decodeAsDevice(bytes: Uint8Array): Message {
  const r = decode(bytes, { role: "device" });
  if (!r.ok) throw new Error(`agent sent an undecodable datagram: ${r.error.message}`);
  return r.message;
}
