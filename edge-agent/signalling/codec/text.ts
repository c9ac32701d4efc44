import iconv from "iconv-lite";
import type { WireEncoding } from "./types.ts";

// ehome-2.0 §1.3: EHome 2.0 firmware declares GB2312; some devices declare UTF-8; declarations can be
// malformed (`UTF - 8`, `encoding = "UTF-8"`). GB2312 and GBK are decoded with the GB18030 decoder,
// a strict superset of both.

const utf8 = new TextDecoder("utf-8", { fatal: true });
// Fatal: bytes that are not GB18030 (a lone lead byte, 0xFF) are refused as BAD_ENCODING instead of
// becoming U+FFFD that would then be acted on.
const gb18030 = new TextDecoder("gb18030", { fatal: true });

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
 * Bytes → string. The declared family (UTF-8, or the GB family) is tried first and the other one
 * second, because devices that declare one and write the other exist (§1.3); with no (or an unknown)
 * declaration UTF-8 goes first. The answer goes back in the encoding that worked: the declared one
 * for the GB family, GB18030 when GB bytes came under a UTF-8 or missing declaration.
 */
export function decodeText(bytes: Uint8Array): DecodedText {
  const declared = sniffEncoding(bytes);
  if (isAscii(bytes)) {
    return { ok: true, text: Buffer.from(bytes).toString("latin1"), encoding: declared ?? "UTF-8" };
  }
  const gbDeclared = declared !== undefined && declared !== "UTF-8";
  if (gbDeclared) {
    const text = tryDecode(gb18030, bytes);
    if (text !== undefined) return { ok: true, text, encoding: declared };
  }
  const text8 = tryDecode(utf8, bytes);
  if (text8 !== undefined) return { ok: true, text: text8, encoding: "UTF-8" };
  if (!gbDeclared) {
    const text = tryDecode(gb18030, bytes);
    if (text !== undefined) return { ok: true, text, encoding: "GB18030" };
  }
  return { ok: false };
}

function tryDecode(
  decoder: InstanceType<typeof TextDecoder>,
  bytes: Uint8Array,
): string | undefined {
  try {
    return decoder.decode(bytes);
  } catch {
    return undefined;
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

/**
 * GB2312 proper is EUC-CN: ASCII plus byte pairs with lead 0xA1–0xF7 and trail 0xA1–0xFE. iconv-lite
 * (like WHATWG) treats the label as GBK, which would let GBK-only characters (and `€` as 0x80) reach
 * a device that declared GB2312; this refuses them instead.
 */
function isEucCn(bytes: Uint8Array): boolean {
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    if (b < 0x80) continue;
    const t = bytes[i + 1];
    if (b < 0xa1 || b > 0xf7 || t === undefined || t < 0xa1 || t > 0xfe) return false;
    i++;
  }
  return true;
}

/** String → bytes in the given encoding; undefined when a character cannot be represented. */
export function encodeText(text: string, encoding: WireEncoding): Buffer | undefined {
  if (isAsciiString(text)) return Buffer.from(text, "latin1");
  if (encoding === "UTF-8") return Buffer.from(text, "utf8");
  const bytes = iconv.encode(text, ICONV_NAME[encoding]);
  // iconv-lite substitutes '?' for what the code page lacks; detect that by a round trip.
  if (tryDecode(gb18030, bytes) !== text) return undefined;
  if (encoding === "GB2312" && !isEucCn(bytes)) return undefined;
  return bytes;
}
