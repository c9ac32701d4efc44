/**
 * Typed EHOME 2.0 (PPVSP XML) messages. The codec turns datagram bytes into these and back; it never
 * touches sockets, timers, logs or AWS (style rule 1).
 */

/** A parsed XML element: child element name → text, child element, or repeated children. */
export type XmlValue = string | XmlElement | XmlValue[];
export interface XmlElement {
  [name: string]: XmlValue;
}

/** The character encoding a datagram declared (and that we answer in). ehome-2.0 §1.3 */
export type WireEncoding = "GB2312" | "GBK" | "GB18030" | "UTF-8";

/** Envelope fields shared by every message. ehome-2.0 §1.2 */
export interface Header {
  /** `Version`, kept as a string (2.0 from devices, 2.5 from platforms). */
  version: string;
  /** `Sequence`: decimal, echoed in responses. ehome-2.0 §3.1 */
  sequence: number;
  /** `Method` when present (absent on device requests in 2.0 captures). */
  method?: string;
  /** Encoding the datagram was written in. */
  encoding: WireEncoding;
}

/** ehome-2.0 §2.1 */
export interface RegisterMessage {
  kind: "register";
  header: Header;
  deviceId: string;
  netUnitType?: string;
  firmwareVersion?: string;
  localIp?: string;
  localPort?: string;
  devType?: string;
  manufacture?: string;
  /** EHome 4.0 template fields (ehome-2.0 §2.1, B/C). */
  password?: string;
  serialNumber?: string;
  params: XmlElement;
}

/** ehome-2.0 §2.2 */
export interface KeepaliveMessage {
  kind: "keepalive";
  header: Header;
  deviceId: string;
}

/** ehome-2.0 §2.9: coordinates are kept raw here; converting them is the MESSAGE module's job. */
export interface GpsMessage {
  kind: "gps";
  header: Header;
  deviceId: string;
  retransFlag: string;
  params: XmlElement;
}

/** ehome-2.0 §8 (provisional ALARM). */
export interface AlarmMessage {
  kind: "alarm";
  header: Header;
  deviceId: string;
  retransFlag: string;
  picIds: string[];
  videoIds: string[];
  params: XmlElement;
}

/** Any other REQUEST a device sends (STATUS, UPGRADESTATUS, TRANSPARENT, or unknown ones). */
export interface DeviceRequestMessage {
  kind: "device-request";
  header: Header;
  /** Catalogue id when the command is known, else null. */
  commandId: string | null;
  command: string;
  deviceId: string | null;
  params: XmlElement;
}

/** A REQUEST the platform sends to a device (what the simulator decodes). */
export interface PlatformRequestMessage {
  kind: "platform-request";
  header: Header;
  commandId: string | null;
  command: string;
  params: XmlElement;
}

/** A RESPONSE in either direction. ehome-2.0 §1.2, §3.4 */
export interface ResponseMessage {
  kind: "response";
  header: Header;
  whichCommand: string;
  status: number;
  description: string;
  params: XmlElement;
}

export type Message =
  | RegisterMessage
  | KeepaliveMessage
  | GpsMessage
  | AlarmMessage
  | DeviceRequestMessage
  | PlatformRequestMessage
  | ResponseMessage;

export type MessageKind = Message["kind"];

/** Stable codes for everything the codec refuses. Listed in docs/errors.md (a test keeps it so). */
export const CODEC_ERROR_CODES = [
  "DATAGRAM_EMPTY",
  "DATAGRAM_TOO_LARGE",
  "MESSAGE_TOO_LARGE",
  "BAD_ENCODING",
  "DOCTYPE_REFUSED",
  "NESTING_TOO_DEEP",
  "MALFORMED_XML",
  "NOT_PPVSP",
  "BAD_COMMAND_TYPE",
  "BAD_SEQUENCE",
  "BAD_STATUS",
  "MISSING_FIELD",
  "UNENCODABLE",
] as const;

export type CodecErrorCode = (typeof CODEC_ERROR_CODES)[number];

export interface CodecError {
  code: CodecErrorCode;
  message: string;
}

export type DecodeResult = { ok: true; message: Message } | { ok: false; error: CodecError };
export type EncodeResult = { ok: true; bytes: Buffer } | { ok: false; error: CodecError };

/** What the platform or the simulator writes. Params keep insertion order on the wire. */
export interface OutboundRequest {
  kind: "request";
  version: string;
  sequence: number;
  method?: string | null;
  command: string;
  params?: XmlElement;
}

export interface OutboundResponse {
  kind: "response";
  version: string;
  sequence: number;
  method?: string | null;
  whichCommand: string;
  status: number;
  description: string;
  params?: XmlElement;
}

export type OutboundMessage = OutboundRequest | OutboundResponse;

export interface EncodeOptions {
  encoding?: WireEncoding;
  /** Refuse to produce datagrams larger than this (default 1500). ehome-2.0 §1.1 */
  maxBytes?: number;
}
