import { ENVELOPE } from "../catalogue.ts";
import { DEFAULT_MAX_DEPTH } from "./decode.ts";
import { encodeText } from "./text.ts";
import type {
  CodecError,
  EncodeOptions,
  EncodeResult,
  OutboundMessage,
  XmlValue,
} from "./types.ts";
import { RESERVED_NAMES, trimXml } from "./xml-parse.ts";

/** ehome-2.0 §1.1: the SDK sizes protocol messages at 1500 bytes. */
export const DEFAULT_MAX_OUTBOUND_BYTES = 1500;

const NAME = /^[A-Za-z_][A-Za-z0-9_.-]*$/;

/**
 * Characters XML 1.0 does not allow (C0 controls other than tab, LF and CR; U+FFFE/U+FFFF) and
 * unpaired surrogates, which UTF-8 encoding would silently turn into U+FFFD.
 */
const NOT_XML_CHAR =
  /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
/** Cheap first pass (a plain character class): only text that has a candidate pays for the above. */
const MAYBE_NOT_XML_CHAR = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uD800-\uDFFF\uFFFE\uFFFF]/;

/** ehome-2.0 §3.1: Sequence is a decimal counter; the decoder accepts 32-bit values. */
const MAX_SEQUENCE = 0xffffffff;
/** The decoder reads Status as one to four digits. */
const MAX_STATUS = 9999;

/** `\r` goes out as a reference: a raw CR would be read back as LF (XML 1.0 §2.11). */
function escapeText(s: string): string {
  if (!/[&<>\r]/.test(s)) return s;
  return s
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/\r/g, "&#13;");
}

class Refused extends Error {
  constructor(readonly error: CodecError) {
    super(error.message);
  }
}

function unencodable(message: string): Refused {
  return new Refused({ code: "UNENCODABLE", message });
}

/**
 * Writes one element. `depth` is the element's own nesting level (PPVSPMessage is 1, Params 2), so
 * the limit the decoder applies holds for what we send, and a cyclic object cannot recurse forever.
 */
function writeValue(name: string, value: XmlValue, depth: number, out: string[]): void {
  // Tolerate what JSON would: undefined/null are left out, numbers and booleans are written as text.
  if (value === undefined || value === null) return;
  if (!NAME.test(name) || RESERVED_NAMES.has(name)) {
    throw unencodable(`element name ${JSON.stringify(name)} is not valid XML`);
  }
  if (depth > DEFAULT_MAX_DEPTH) {
    throw new Refused({
      code: "NESTING_TOO_DEEP",
      message: `element nesting deeper than ${DEFAULT_MAX_DEPTH} levels is refused`,
    });
  }
  if (Array.isArray(value)) {
    for (const v of value) writeValue(name, v, depth, out);
    return;
  }
  if (typeof value !== "object") {
    const text = String(value);
    out.push(text === "" ? `<${name}></${name}>` : `<${name}>${escapeText(text)}</${name}>`);
    return;
  }
  out.push(`<${name}>`);
  for (const k of Object.keys(value)) writeValue(k, value[k]!, depth + 1, out);
  out.push(`</${name}>`);
}

function element(name: string, value: string | number): string {
  return `<${name}>${escapeText(String(value))}</${name}>`;
}

/** Envelope values the decoder would refuse; refusing them here keeps "what we send, we can read". */
function checkEnvelope(message: OutboundMessage): CodecError | undefined {
  const { sequence } = message;
  if (!Number.isInteger(sequence) || sequence < 0 || sequence > MAX_SEQUENCE) {
    return { code: "BAD_SEQUENCE", message: `Sequence ${sequence} is not a 32-bit counter` };
  }
  if (message.kind === "request") {
    if (typeof message.command !== "string" || trimXml(message.command) === "") {
      return { code: "MISSING_FIELD", message: `${ENVELOPE.command} is empty` };
    }
    return undefined;
  }
  if (typeof message.whichCommand !== "string" || trimXml(message.whichCommand) === "") {
    return { code: "MISSING_FIELD", message: `${ENVELOPE.whichCommand} is empty` };
  }
  const { status } = message;
  if (!Number.isInteger(status) || status < 0 || status > MAX_STATUS) {
    return { code: "BAD_STATUS", message: `Status ${status} is not a code` };
  }
  return undefined;
}

/**
 * A message → datagram bytes in the requested encoding (the one the device used; §1.3), with the
 * declaration naming it. Element order follows the captures (ehome-2.0 §1.2, §2.1, §2.2). Never
 * throws: whatever the decoder would refuse is refused here with the same code.
 */
export function encode(message: OutboundMessage, options: EncodeOptions = {}): EncodeResult {
  try {
    return encodeUnsafe(message, options);
  } catch (err) {
    if (err instanceof Refused) return { ok: false, error: err.error };
    // A getter or proxy in caller-supplied params threw: an encode error, not a crash.
    return { ok: false, error: { code: "UNENCODABLE", message: `cannot encode: ${String(err)}` } };
  }
}

function encodeUnsafe(message: OutboundMessage, options: EncodeOptions): EncodeResult {
  const encoding = options.encoding ?? "UTF-8";
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_OUTBOUND_BYTES;
  const envelopeError = checkEnvelope(message);
  if (envelopeError) return { ok: false, error: envelopeError };

  const out: string[] = [`<?xml version="1.0" encoding="${encoding}"?>\n<${ENVELOPE.root}>`];
  out.push(element(ENVELOPE.version, message.version));
  out.push(element(ENVELOPE.sequence, message.sequence));
  if (message.kind === "request") {
    out.push(element(ENVELOPE.commandType, ENVELOPE.request));
    if (message.method) out.push(element(ENVELOPE.method, message.method));
    out.push(element(ENVELOPE.command, message.command));
  } else {
    out.push(element(ENVELOPE.commandType, ENVELOPE.response));
    if (message.method) out.push(element(ENVELOPE.method, message.method));
    out.push(element(ENVELOPE.whichCommand, message.whichCommand));
    out.push(element(ENVELOPE.status, message.status));
    out.push(element(ENVELOPE.description, message.description));
  }
  const params = message.params;
  if (params !== undefined && params !== null) {
    if (typeof params !== "object" || Array.isArray(params)) {
      throw unencodable(`${ENVELOPE.params} must be an element`);
    }
    if (Object.keys(params).length === 0) out.push(`<${ENVELOPE.params}/>`);
    else writeValue(ENVELOPE.params, params, 2, out);
  }
  out.push(`</${ENVELOPE.root}>`);
  const text = out.join("");
  if (MAYBE_NOT_XML_CHAR.test(text) && NOT_XML_CHAR.test(text)) {
    throw unencodable("text holds a character XML 1.0 does not allow");
  }
  const bytes = encodeText(text, encoding);
  if (!bytes) throw unencodable(`text cannot be represented in ${encoding}`);
  if (bytes.length > maxBytes) {
    return {
      ok: false,
      error: {
        code: "MESSAGE_TOO_LARGE",
        message: `message of ${bytes.length} bytes exceeds ${maxBytes}`,
      },
    };
  }
  return { ok: true, bytes };
}
