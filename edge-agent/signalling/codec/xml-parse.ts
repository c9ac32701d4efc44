import type { CodecError, XmlElement, XmlValue } from "./types.ts";

/**
 * The one XML parser of the codec (style rule 3): a single linear pass that checks the structure
 * and builds the tree. It replaces a generic parser that cost ~10 µs of a 15 µs KEEPALIVE decode
 * and had its own quirks (`&#0;` dropped after trimming, other character references kept raw).
 *
 * Refused: DOCTYPE and entity declarations (DOCTYPE_REFUSED), nesting deeper than `maxDepth`
 * (NESTING_TOO_DEEP), unbalanced or mismatched tags, a second root, text outside the root (FreeEhome
 * answers a KEEPALIVE followed by 60 KB of junk; we do not; peers.md), bad character references and
 * element names that would shadow Object.prototype members (MALFORMED_XML).
 *
 * The tree: attributes ignored; text values trimmed of XML whitespace after entity decoding (so
 * `0012` stays the string "0012"); comments and processing instructions skipped (text around a
 * comment joins up); CDATA taken literally; an element with child elements is an object, with any
 * text of its own under `#text`; a repeated child becomes an array, and names in `repeatable`
 * (lower-cased) are always arrays. Line ends are normalised to LF as XML requires.
 */

export interface ParseOptions {
  maxDepth: number;
  /** Lower-cased names of elements that always decode as arrays. */
  repeatable: ReadonlySet<string>;
}

export type ParseResult = { ok: true; doc: XmlElement } | { ok: false; error: CodecError };

/**
 * Element names refused because they would shadow Object.prototype members of the plain objects we
 * build (a `toString` child would break `${params}`); encode refuses them too.
 */
export const RESERVED_NAMES: ReadonlySet<string> = new Set([
  "__proto__",
  "constructor",
  "prototype",
  "hasOwnProperty",
  "isPrototypeOf",
  "propertyIsEnumerable",
  "toString",
  "toLocaleString",
  "valueOf",
  "__defineGetter__",
  "__defineSetter__",
  "__lookupGetter__",
  "__lookupSetter__",
]);

const TEXT_KEY = "#text";

interface Frame {
  name: string;
  /** Child elements, created on the first child. */
  children: XmlElement | undefined;
  /** Text pieces of this element (already entity-decoded). */
  text: string;
}

const LT = 0x3c;
const GT = 0x3e;
const SLASH = 0x2f;
const BANG = 0x21;
const QUESTION = 0x3f;

function isXmlSpace(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x09 || c === 0x0d;
}

/** Trims XML whitespace only (not U+3000 or NBSP, which are content). */
export function trimXml(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && isXmlSpace(s.charCodeAt(a))) a++;
  while (b > a && isXmlSpace(s.charCodeAt(b - 1))) b--;
  return a === 0 && b === s.length ? s : s.slice(a, b);
}

function malformed(message: string): ParseResult {
  return { ok: false, error: { code: "MALFORMED_XML", message } };
}

export function parseXml(input: string, options: ParseOptions): ParseResult {
  // XML 1.0 §2.11: CR LF and lone CR are read as LF.
  const xml = input.includes("\r") ? input.replace(/\r\n?/g, "\n") : input;
  const { maxDepth, repeatable } = options;
  const stack: Frame[] = [];
  let doc: XmlElement | undefined;
  let i = 0;
  const n = xml.length;

  while (i < n) {
    const lt = xml.indexOf("<", i);
    const textEnd = lt === -1 ? n : lt;
    if (textEnd > i) {
      const top = stack[stack.length - 1];
      if (top === undefined) {
        for (let j = i; j < textEnd; j++) {
          if (!isXmlSpace(xml.charCodeAt(j))) return malformed("text outside the root element");
        }
      } else {
        const text = decodeEntities(xml, i, textEnd);
        if (text === undefined) return malformed("invalid character reference");
        top.text += text;
      }
    }
    if (lt === -1) break;
    const next = xml.charCodeAt(lt + 1);

    if (next === BANG) {
      if (xml.startsWith("<!--", lt)) {
        const end = xml.indexOf("-->", lt + 4);
        if (end === -1) return malformed("unterminated comment");
        i = end + 3;
        continue;
      }
      if (xml.startsWith("<![CDATA[", lt)) {
        const top = stack[stack.length - 1];
        if (top === undefined) return malformed("CDATA outside the root element");
        const end = xml.indexOf("]]>", lt + 9);
        if (end === -1) return malformed("unterminated CDATA");
        top.text += xml.slice(lt + 9, end);
        i = end + 3;
        continue;
      }
      return {
        ok: false,
        error: { code: "DOCTYPE_REFUSED", message: "DOCTYPE and entity declarations are refused" },
      };
    }
    if (next === QUESTION) {
      const end = xml.indexOf("?>", lt + 2);
      if (end === -1) return malformed("unterminated processing instruction");
      i = end + 2;
      continue;
    }

    const gt = tagEnd(xml, lt + 1);
    if (gt === -1) return malformed("unterminated tag");

    if (next === SLASH) {
      const name = trimXml(xml.slice(lt + 2, gt));
      const frame = stack.pop();
      if (frame === undefined || frame.name !== name) {
        return malformed(`closing tag </${name}> does not match <${frame?.name ?? ""}>`);
      }
      const value = frameValue(frame);
      const parent = stack[stack.length - 1];
      if (parent === undefined) doc = { [frame.name]: value };
      else addChild(parent, frame.name, value, repeatable);
      i = gt + 1;
      continue;
    }

    let e = lt + 1;
    while (e < gt) {
      const c = xml.charCodeAt(e);
      if (isXmlSpace(c) || c === SLASH) break;
      e++;
    }
    if (e === lt + 1) return malformed("tag without a name");
    const name = xml.slice(lt + 1, e);
    if (RESERVED_NAMES.has(name)) return malformed(`reserved element name <${name}>`);
    const selfClosing = xml.charCodeAt(gt - 1) === SLASH;
    const parent = stack[stack.length - 1];
    if (parent === undefined && doc !== undefined) return malformed("more than one root element");
    if (selfClosing) {
      if (parent === undefined) doc = { [name]: "" };
      else addChild(parent, name, "", repeatable);
    } else {
      stack.push({ name, children: undefined, text: "" });
      if (stack.length > maxDepth) {
        return {
          ok: false,
          error: {
            code: "NESTING_TOO_DEEP",
            message: `element nesting deeper than ${maxDepth} levels is refused`,
          },
        };
      }
    }
    i = gt + 1;
  }
  if (stack.length > 0) return malformed(`unclosed element <${stack[stack.length - 1]!.name}>`);
  if (doc === undefined) return malformed("no root element");
  return { ok: true, doc };
}

function frameValue(frame: Frame): XmlValue {
  const text = trimXml(frame.text);
  if (frame.children === undefined) return text;
  if (text !== "") frame.children[TEXT_KEY] = text;
  return frame.children;
}

function addChild(
  parent: Frame,
  name: string,
  value: XmlValue,
  repeatable: ReadonlySet<string>,
): void {
  parent.children ??= {};
  const children = parent.children;
  const existing = children[name];
  if (existing === undefined) {
    children[name] = repeatable.has(name.toLowerCase()) ? [value] : value;
  } else if (Array.isArray(existing)) {
    existing.push(value);
  } else {
    children[name] = [existing, value];
  }
}

/** Index of the `>` that ends the tag starting at `from`, skipping quoted attribute values. */
function tagEnd(xml: string, from: number): number {
  let quote = 0;
  for (let j = from; j < xml.length; j++) {
    const c = xml.charCodeAt(j);
    if (quote) {
      if (c === quote) quote = 0;
    } else if (c === 0x22 || c === 0x27) {
      quote = c;
    } else if (c === GT) {
      return j;
    } else if (c === LT) {
      return -1;
    }
  }
  return -1;
}

function named(ref: string): string | undefined {
  switch (ref) {
    case "lt":
      return "<";
    case "gt":
      return ">";
    case "amp":
      return "&";
    case "quot":
      return '"';
    case "apos":
      return "'";
    default:
      return undefined;
  }
}

/**
 * Text with the five predefined entities and character references decoded. An unknown entity or a
 * stray `&` is kept as written (lenient in, §8 rule 3); a reference to a character XML forbids
 * (NUL, a surrogate, U+FFFE…) makes the document malformed (undefined).
 */
function decodeEntities(xml: string, from: number, to: number): string | undefined {
  let amp = xml.indexOf("&", from);
  if (amp === -1 || amp >= to) return xml.slice(from, to);
  let out = "";
  let last = from;
  while (amp !== -1 && amp < to) {
    const semi = xml.indexOf(";", amp + 1);
    if (semi === -1 || semi >= to || semi - amp > 12) {
      amp = xml.indexOf("&", amp + 1);
      continue;
    }
    const ref = xml.slice(amp + 1, semi);
    let ch: string | undefined;
    if (ref.charCodeAt(0) === 0x23 /* # */) {
      const hex = ref.charCodeAt(1) === 0x78 /* x */;
      const digits = ref.slice(hex ? 2 : 1);
      if (!(hex ? /^[0-9a-fA-F]{1,6}$/ : /^[0-9]{1,7}$/).test(digits)) return undefined;
      const cp = Number.parseInt(digits, hex ? 16 : 10);
      if (!isXmlChar(cp)) return undefined;
      ch = String.fromCodePoint(cp);
    } else {
      ch = named(ref);
    }
    if (ch !== undefined) {
      out += xml.slice(last, amp) + ch;
      last = semi + 1;
    }
    amp = xml.indexOf("&", semi + 1);
  }
  return out + xml.slice(last, to);
}

/** XML 1.0 Char production. */
function isXmlChar(cp: number): boolean {
  if (cp < 0x20) return cp === 0x09 || cp === 0x0a || cp === 0x0d;
  if (cp <= 0xd7ff) return true;
  if (cp < 0xe000) return false;
  if (cp <= 0xfffd) return true;
  return cp >= 0x10000 && cp <= 0x10ffff;
}
