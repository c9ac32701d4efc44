import type { CodecError } from "./types.ts";

/**
 * One linear pass over the document before it reaches the XML parser (which is lenient: it accepts
 * unclosed and mismatched tags). Refuses DOCTYPE and entity declarations (style rule 3), nesting
 * deeper than the protocol uses, unbalanced or mismatched tags, a second root, and text outside the
 * root element (FreeEhome answers a KEEPALIVE followed by 60 KB of junk; we do not; peers.md).
 */
export function checkStructure(xml: string, maxDepth: number): CodecError | undefined {
  const stack: string[] = [];
  let roots = 0;
  let i = 0;
  const n = xml.length;
  while (i < n) {
    const lt = xml.indexOf("<", i);
    const textEnd = lt === -1 ? n : lt;
    if (stack.length === 0 && textEnd > i && xml.slice(i, textEnd).trim() !== "") {
      return malformed("text outside the root element");
    }
    if (lt === -1) break;
    const next = xml.charCodeAt(lt + 1);
    if (next === 0x21 /* ! */) {
      if (xml.startsWith("<!--", lt)) {
        const end = xml.indexOf("-->", lt + 4);
        if (end === -1) return malformed("unterminated comment");
        i = end + 3;
        continue;
      }
      if (xml.startsWith("<![CDATA[", lt)) {
        if (stack.length === 0) return malformed("CDATA outside the root element");
        const end = xml.indexOf("]]>", lt + 9);
        if (end === -1) return malformed("unterminated CDATA");
        i = end + 3;
        continue;
      }
      return { code: "DOCTYPE_REFUSED", message: "DOCTYPE and entity declarations are refused" };
    }
    if (next === 0x3f /* ? */) {
      const end = xml.indexOf("?>", lt + 2);
      if (end === -1) return malformed("unterminated processing instruction");
      i = end + 2;
      continue;
    }
    const gt = tagEnd(xml, lt + 1);
    if (gt === -1) return malformed("unterminated tag");
    if (next === 0x2f /* / */) {
      const name = xml.slice(lt + 2, gt).trim();
      const open = stack.pop();
      if (open === undefined || open !== name) {
        return malformed(`closing tag </${name}> does not match <${open ?? ""}>`);
      }
      i = gt + 1;
      continue;
    }
    const selfClosing = xml.charCodeAt(gt - 1) === 0x2f;
    const m = /^[^\s/>]+/.exec(xml.slice(lt + 1, gt));
    if (!m) return malformed("tag without a name");
    if (stack.length === 0) {
      roots++;
      if (roots > 1) return malformed("more than one root element");
    }
    if (!selfClosing) {
      stack.push(m[0]);
      if (stack.length > maxDepth) {
        return {
          code: "NESTING_TOO_DEEP",
          message: `element nesting deeper than ${maxDepth} levels is refused`,
        };
      }
    }
    i = gt + 1;
  }
  if (stack.length > 0) return malformed(`unclosed element <${stack[stack.length - 1]}>`);
  if (roots === 0) return malformed("no root element");
  return undefined;
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
    } else if (c === 0x3e) {
      return j;
    } else if (c === 0x3c) {
      return -1;
    }
  }
  return -1;
}

function malformed(message: string): CodecError {
  return { code: "MALFORMED_XML", message };
}
