import { ENVELOPE } from "../catalogue.ts";
import { encodeText } from "./text.ts";
import type {
  EncodeOptions,
  EncodeResult,
  OutboundMessage,
  XmlElement,
  XmlValue,
} from "./types.ts";

/** ehome-2.0 §1.1: the SDK sizes protocol messages at 1500 bytes. */
export const DEFAULT_MAX_OUTBOUND_BYTES = 1500;

const NAME = /^[A-Za-z_][A-Za-z0-9_.-]*$/;

function escapeText(s: string): string {
  if (!/[&<>]/.test(s)) return s;
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

class Unencodable extends Error {}

function writeValue(name: string, value: XmlValue, out: string[]): void {
  if (!NAME.test(name))
    throw new Unencodable(`element name ${JSON.stringify(name)} is not valid XML`);
  if (Array.isArray(value)) {
    for (const v of value) writeValue(name, v, out);
    return;
  }
  if (typeof value === "string") {
    out.push(value === "" ? `<${name}></${name}>` : `<${name}>${escapeText(value)}</${name}>`);
    return;
  }
  out.push(`<${name}>`);
  writeChildren(value, out);
  out.push(`</${name}>`);
}

function writeChildren(el: XmlElement, out: string[]): void {
  for (const k of Object.keys(el)) writeValue(k, el[k]!, out);
}

function element(name: string, value: string | number): string {
  return `<${name}>${escapeText(String(value))}</${name}>`;
}

/**
 * A message → datagram bytes in the requested encoding (the one the device used; §1.3), with the
 * declaration naming it. Element order follows the captures (ehome-2.0 §1.2, §2.1, §2.2).
 */
export function encode(message: OutboundMessage, options: EncodeOptions = {}): EncodeResult {
  const encoding = options.encoding ?? "UTF-8";
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_OUTBOUND_BYTES;
  const out: string[] = [`<?xml version="1.0" encoding="${encoding}"?>\n<${ENVELOPE.root}>`];
  out.push(element(ENVELOPE.version, message.version));
  out.push(element(ENVELOPE.sequence, message.sequence));
  try {
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
    if (message.params !== undefined) {
      if (Object.keys(message.params).length === 0) out.push(`<${ENVELOPE.params}/>`);
      else writeValue(ENVELOPE.params, message.params, out);
    }
  } catch (err) {
    if (err instanceof Unencodable)
      return { ok: false, error: { code: "UNENCODABLE", message: err.message } };
    throw err;
  }
  out.push(`</${ENVELOPE.root}>`);
  const bytes = encodeText(out.join(""), encoding);
  if (!bytes) {
    return {
      ok: false,
      error: { code: "UNENCODABLE", message: `text cannot be represented in ${encoding}` },
    };
  }
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
