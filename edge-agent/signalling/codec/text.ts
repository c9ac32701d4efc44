import iconv from "iconv-lite";
import type { WireEncoding } from "./types.ts";

// ehome-2.0 §1.3: EHome 2.0 firmware declares GB2312; some devices declare UTF-8; declarations can be
// malformed (`UTF - 8`, `encoding = "UTF-8"`). GB2312 and GBK are decoded with the GB18030 decoder,
// a strict superset of both.

const utf8 = new TextDecoder("utf-8", { fatal: true });
const gb18030 = new TextDecoder("gb18030");

const DECLARATION_WINDOW = 256;
const ENCODING_ATTR =
  /encoding\s*=\s*["']?\s*([A-Za-z0-9_\- ]{1,32}?)\s*["']?\s*(?:\?>|standalone|$)/i;

/** Maps a declared encoding label (after removing spaces, dashes and underscores) to ours. */
export function normaliseEncodingLabel(label: string): WireEncoding | undefined {
  const k = label.replace(/[\s_-]/g, "").toUpperCase();
  switch (k) {
    case "UTF8":
      return "UTF-8";
    case "GB2312":
    case "EUCCN":
    case "CP936":
    case "HZGB2312":
      return "GB2312";
    case "GBK":
      return "GBK";
    case "GB18030":
      return "GB18030";
    default:
      return undefined;
  }
}

/** Reads the encoding named in an XML declaration at the start of the datagram. */
export function sniffEncoding(bytes: Uint8Array): WireEncoding | undefined {
  const n = Math.min(bytes.length, DECLARATION_WINDOW);
  let head = "";
  for (let i = 0; i < n; i++) {
    const b = bytes[i]!;
    if (b === 0x3e /* > */) {
      head += ">";
      break;
    }
    head += String.fromCharCode(b);
  }
  if (!/<\?xml/i.test(head)) return undefined;
  const m = ENCODING_ATTR.exec(head);
  return m?.[1] ? normaliseEncodingLabel(m[1]) : undefined;
}

function isAscii(bytes: Uint8Array): boolean {
  for (let i = 0; i < bytes.length; i++) if (bytes[i]! > 0x7f) return false;
  return true;
}

export type DecodedText = { ok: true; text: string; encoding: WireEncoding } | { ok: false };

/**
 * Bytes → string. With no (or an unknown) declaration: UTF-8 if the bytes are valid UTF-8, else
 * GB18030, and the answer goes back in the encoding that worked.
 */
export function decodeText(bytes: Uint8Array): DecodedText {
  const declared = sniffEncoding(bytes);
  if (isAscii(bytes)) {
    return { ok: true, text: Buffer.from(bytes).toString("latin1"), encoding: declared ?? "UTF-8" };
  }
  if (declared === undefined || declared === "UTF-8") {
    try {
      return { ok: true, text: utf8.decode(bytes), encoding: "UTF-8" };
    } catch {
      // A device that declares UTF-8 but writes GB bytes is common enough to tolerate.
    }
  }
  try {
    const text = gb18030.decode(bytes);
    return { ok: true, text, encoding: declared && declared !== "UTF-8" ? declared : "GB18030" };
  } catch {
    return { ok: false };
  }
}

const ICONV_NAME: Record<WireEncoding, string> = {
  "UTF-8": "utf8",
  GB2312: "gb2312",
  GBK: "gbk",
  GB18030: "gb18030",
};

export function isAsciiString(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return false;
  return true;
}

/** String → bytes in the given encoding; undefined when a character cannot be represented. */
export function encodeText(text: string, encoding: WireEncoding): Buffer | undefined {
  if (isAsciiString(text)) return Buffer.from(text, "latin1");
  if (encoding === "UTF-8") return Buffer.from(text, "utf8");
  const bytes = iconv.encode(text, ICONV_NAME[encoding]);
  // iconv-lite substitutes '?' for what the code page lacks; detect that by a round trip.
  if (gb18030.decode(bytes) !== text) return undefined;
  return bytes;
}
