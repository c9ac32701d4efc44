import {
  type CatalogueView,
  type COMMANDS,
  DEFAULT_VIEW,
  ENVELOPE,
  REPEATABLE_ELEMENTS,
} from "../catalogue.ts";
import { decodeText } from "./text.ts";
import type { CodecError, DecodeResult, Header, Message, XmlElement } from "./types.ts";
import { parseXml } from "./xml-parse.ts";
import { childElement, childText, childTexts, readFields } from "./xml-tree.ts";

export const DEFAULT_MAX_INBOUND_BYTES = 8 * 1024;
export const DEFAULT_MAX_DEPTH = 12;

const repeatable: ReadonlySet<string> = new Set(REPEATABLE_ELEMENTS.map((n) => n.toLowerCase()));

export interface DecodeOptions {
  /** Refuse datagrams larger than this. Default 8 KiB. */
  maxBytes?: number;
  /** Refuse element nesting deeper than this. Default 12. */
  maxDepth?: number;
  /**
   * Which side is decoding. `platform` (the agent, default) reads every REQUEST as sent by a device;
   * `device` (the simulator) reads every REQUEST as sent by the platform.
   */
  role?: "platform" | "device";
  /** Catalogue (with a device's dialect applied) used to name commands and fields. */
  view?: CatalogueView;
}

function fail(code: CodecError["code"], message: string): DecodeResult {
  return { ok: false, error: { code, message } };
}

/** Datagram bytes → a typed message, or a typed error. Never throws. */
export function decode(bytes: Uint8Array, options: DecodeOptions = {}): DecodeResult {
  try {
    return decodeUnsafe(bytes, options);
  } catch (err) {
    // Belt and braces: a parser bug must not become an agent crash (architecture §6).
    return fail("MALFORMED_XML", `parser error: ${(err as Error).message}`);
  }
}

/** Strips trailing NUL padding and whitespace, and a leading byte-order mark. ehome-2.0 §1.3 */
function trimBytes(bytes: Uint8Array): Uint8Array {
  let end = bytes.length;
  while (end > 0) {
    const b = bytes[end - 1]!;
    if (b === 0 || b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09) end--;
    else break;
  }
  let start = 0;
  if (end >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) start = 3;
  return start === 0 && end === bytes.length ? bytes : bytes.subarray(start, end);
}

function decodeUnsafe(raw: Uint8Array, options: DecodeOptions): DecodeResult {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_INBOUND_BYTES;
  if (raw.length > maxBytes) {
    return fail("DATAGRAM_TOO_LARGE", `datagram of ${raw.length} bytes exceeds ${maxBytes}`);
  }
  const bytes = trimBytes(raw);
  if (bytes.length === 0) return fail("DATAGRAM_EMPTY", "empty datagram");

  const decoded = decodeText(bytes);
  if (!decoded.ok) return fail("BAD_ENCODING", "bytes are neither UTF-8 nor GB18030");
  const { text, encoding } = decoded;
  if (text.includes("\u0000")) return fail("MALFORMED_XML", "NUL inside the document");

  // style rule 3: one parser; no DOCTYPE, only predefined entities and character references,
  // every value a string (`0012` stays "0012").
  const parsed = parseXml(text, { maxDepth: options.maxDepth ?? DEFAULT_MAX_DEPTH, repeatable });
  if (!parsed.ok) return { ok: false, error: parsed.error };
  const doc = parsed.doc;
  const root = childElement(doc, ENVELOPE.root);
  if (!root || Object.keys(doc).length !== 1) {
    return fail("NOT_PPVSP", `root element is not ${ENVELOPE.root}`);
  }

  const seqText = childText(root, ENVELOPE.sequence);
  if (seqText === undefined) return fail("MISSING_FIELD", `${ENVELOPE.sequence} is missing`);
  if (!/^\d{1,10}$/.test(seqText) || Number(seqText) > 0xffffffff) {
    return fail("BAD_SEQUENCE", `${ENVELOPE.sequence} is not a 32-bit decimal number`);
  }
  const header: Header = {
    version: childText(root, ENVELOPE.version) ?? "",
    sequence: Number(seqText),
    encoding,
  };
  const method = childText(root, ENVELOPE.method);
  if (method) header.method = method;
  const params = childElement(root, ENVELOPE.params) ?? {};
  const commandType = (childText(root, ENVELOPE.commandType) ?? "").toUpperCase();
  const view = options.view ?? DEFAULT_VIEW;

  if (commandType === ENVELOPE.response) {
    const whichCommand = childText(root, ENVELOPE.whichCommand);
    if (!whichCommand) return fail("MISSING_FIELD", `${ENVELOPE.whichCommand} is missing`);
    const statusText = childText(root, ENVELOPE.status);
    if (statusText === undefined) return fail("MISSING_FIELD", `${ENVELOPE.status} is missing`);
    if (!/^\d{1,4}$/.test(statusText))
      return fail("BAD_STATUS", `${ENVELOPE.status} is not a code`);
    const message: Message = {
      kind: "response",
      header,
      whichCommand,
      status: Number(statusText),
      description: childText(root, ENVELOPE.description) ?? "",
      params,
    };
    return { ok: true, message };
  }
  if (commandType !== ENVELOPE.request) {
    return fail("BAD_COMMAND_TYPE", `${ENVELOPE.commandType} must be REQUEST or RESPONSE`);
  }

  const command = childText(root, ENVELOPE.command);
  if (!command) return fail("MISSING_FIELD", `${ENVELOPE.command} is missing`);
  const commandId = view.byWireName.get(command.toUpperCase()) ?? null;

  if (options.role === "device") {
    return { ok: true, message: { kind: "platform-request", header, commandId, command, params } };
  }
  return deviceRequest(header, command, commandId, params, view);
}

function deviceRequest(
  header: Header,
  command: string,
  commandId: string | null,
  params: XmlElement,
  view: CatalogueView,
): DecodeResult {
  const c = view.commands;
  const needId = (name: string): string | DecodeResult => {
    const id = childText(params, name);
    return id ? id : fail("MISSING_FIELD", `${command} without ${name}`);
  };
  switch (commandId) {
    case "register": {
      const f = readFields(params, c.register.params as typeof COMMANDS.register.params);
      if (!f.deviceId)
        return fail("MISSING_FIELD", `${command} without ${c.register.params.deviceId}`);
      return {
        ok: true,
        message: { kind: "register", header, ...f, deviceId: f.deviceId, params },
      };
    }
    case "keepalive": {
      const id = needId(c.keepalive.params.deviceId!);
      if (typeof id !== "string") return id;
      return { ok: true, message: { kind: "keepalive", header, deviceId: id } };
    }
    case "gps": {
      const id = needId(c.gps.params.deviceId!);
      if (typeof id !== "string") return id;
      const retransFlag = childText(params, c.gps.params.retransFlag!) ?? "0";
      return { ok: true, message: { kind: "gps", header, deviceId: id, retransFlag, params } };
    }
    case "alarm": {
      const p = c.alarm.params;
      const id = needId(p.deviceId!);
      if (typeof id !== "string") return id;
      return {
        ok: true,
        message: {
          kind: "alarm",
          header,
          deviceId: id,
          retransFlag: childText(params, p.retransFlag!) ?? "0",
          picIds: childTexts(params, p.picId!),
          videoIds: childTexts(params, p.videoId!),
          params,
        },
      };
    }
    default: {
      const deviceId = childText(params, c.register.params.deviceId!) ?? null;
      return {
        ok: true,
        message: { kind: "device-request", header, commandId, command, deviceId, params },
      };
    }
  }
}
