/**
 * Untrusted XML (style rule 3, architecture §6): everything the codec refuses, each with its stable
 * code (docs/errors.md). Neither decode nor encode throws.
 */
import iconv from "iconv-lite";
import { describe, expect, it } from "vitest";
import { COMMANDS, ENVELOPE } from "../../../../edge-agent/signalling/catalogue.ts";
import {
  buildFields,
  type CodecErrorCode,
  DEFAULT_MAX_DEPTH,
  DEFAULT_MAX_INBOUND_BYTES,
  DEFAULT_MAX_OUTBOUND_BYTES,
  type DecodeOptions,
  decode,
  type EncodeOptions,
  encode,
  type OutboundMessage,
  type OutboundResponse,
  type XmlElement,
} from "../../../../edge-agent/signalling/codec/index.ts";
import * as fx from "../../../fixtures/datagrams/index.ts";

function refusedWith(input: string | Uint8Array, options: DecodeOptions = {}): CodecErrorCode {
  const result = decode(typeof input === "string" ? Buffer.from(input) : input, options);
  if (result.ok) throw new Error(`expected a refusal, decoded ${result.message.kind}`);
  expect(result.error.message.length).toBeGreaterThan(0);
  return result.error.code;
}

function encodeRefusedWith(message: OutboundMessage, options: EncodeOptions = {}): CodecErrorCode {
  const result = encode(message, options);
  if (result.ok) throw new Error("expected a refusal, encoded");
  return result.error.code;
}

const KEEPALIVE =
  '<?xml version="1.0" encoding="UTF-8"?><PPVSPMessage><Version>2.0</Version>' +
  "<Sequence>101</Sequence><CommandType>REQUEST</CommandType><Command>KEEPALIVE</Command>" +
  "<Params><DeviceID>cam-0001</DeviceID></Params></PPVSPMessage>";

/** A KEEPALIVE grown with a comment to exactly `size` bytes. */
function keepaliveOfSize(size: number): Buffer {
  const filler = size - Buffer.byteLength(KEEPALIVE) - "<!---->".length;
  return Buffer.from(`${KEEPALIVE}<!--${"x".repeat(filler)}-->`);
}

function nested(depth: number): string {
  // PPVSPMessage (1) > Params (2) > n-2 more levels.
  const inner = depth - 2;
  const open = Array.from({ length: inner }, (_, i) => `<L${i}>`).join("");
  const close = Array.from({ length: inner }, (_, i) => `</L${inner - 1 - i}>`).join("");
  return KEEPALIVE.replace("<Params>", `<Params>${open}x${close}`);
}

describe("DOCTYPE and entities", () => {
  it("refuses a DOCTYPE", () => {
    expect(refusedWith(`<!DOCTYPE PPVSPMessage>${KEEPALIVE}`)).toBe("DOCTYPE_REFUSED");
  });

  it("refuses an entity declaration, with or without DOCTYPE", () => {
    const withDoctype = `<!DOCTYPE p [<!ENTITY id "cam-0001">]>${KEEPALIVE.replace("cam-0001", "&id;")}`;
    expect(refusedWith(withDoctype)).toBe("DOCTYPE_REFUSED");
    expect(refusedWith(KEEPALIVE.replace("<Params>", '<Params><!ENTITY a "b">'))).toBe(
      "DOCTYPE_REFUSED",
    );
  });

  it("refuses an entity bomb before expanding anything", () => {
    const levels = Array.from(
      { length: 10 },
      (_, i) => `<!ENTITY l${i + 1} "${`&l${i};`.repeat(10)}">`,
    );
    const bomb = `<?xml version="1.0"?><!DOCTYPE PPVSPMessage [<!ENTITY l0 "lol">${levels.join("")}]>${KEEPALIVE.replace(/^<\?xml[^>]*>/, "").replace("cam-0001", "&l10;")}`;
    const started = performance.now();
    expect(refusedWith(bomb)).toBe("DOCTYPE_REFUSED");
    expect(performance.now() - started).toBeLessThan(50);
  });
});

describe("size caps", () => {
  it(`refuses inbound datagrams over ${DEFAULT_MAX_INBOUND_BYTES} bytes and accepts exactly that`, () => {
    expect(decode(keepaliveOfSize(DEFAULT_MAX_INBOUND_BYTES)).ok).toBe(true);
    expect(refusedWith(keepaliveOfSize(DEFAULT_MAX_INBOUND_BYTES + 1))).toBe("DATAGRAM_TOO_LARGE");
  });

  it("takes the inbound cap from options", () => {
    expect(refusedWith(fx.register1120Bytes(), { maxBytes: 1024 })).toBe("DATAGRAM_TOO_LARGE");
    expect(decode(keepaliveOfSize(12_000), { maxBytes: 16 * 1024 }).ok).toBe(true);
  });

  it("counts NUL padding toward the inbound cap (it is what arrived)", () => {
    const padded = Buffer.concat([Buffer.from(KEEPALIVE), Buffer.alloc(DEFAULT_MAX_INBOUND_BYTES)]);
    expect(refusedWith(padded)).toBe("DATAGRAM_TOO_LARGE");
  });

  it(`refuses outbound messages over ${DEFAULT_MAX_OUTBOUND_BYTES} bytes (MESSAGE_TOO_LARGE)`, () => {
    const base: OutboundMessage = {
      kind: "request",
      version: ENVELOPE.platformVersion,
      sequence: 1,
      method: COMMANDS.update.method,
      command: COMMANDS.update.command,
      params: buildFields(COMMANDS.update.params, { url: "" }),
    };
    const emptySize = (encode(base) as { bytes: Buffer }).bytes.length;
    const withUrl = (n: number): OutboundMessage => ({
      ...base,
      params: buildFields(COMMANDS.update.params, { url: "u".repeat(n) }),
    });
    const fits = encode(withUrl(DEFAULT_MAX_OUTBOUND_BYTES - emptySize));
    expect(fits.ok && fits.bytes.length).toBe(DEFAULT_MAX_OUTBOUND_BYTES);
    expect(encodeRefusedWith(withUrl(DEFAULT_MAX_OUTBOUND_BYTES - emptySize + 1))).toBe(
      "MESSAGE_TOO_LARGE",
    );
    expect(encodeRefusedWith(base, { maxBytes: emptySize - 1 })).toBe("MESSAGE_TOO_LARGE");
    expect(encode(withUrl(4000), { maxBytes: 8192 }).ok).toBe(true);
  });

  it("counts the outbound cap in encoded bytes, not characters", () => {
    // 600 Chinese characters: 1,200 bytes in GB2312, 1,800 in UTF-8.
    const message: OutboundMessage = {
      kind: "response",
      version: ENVELOPE.platformVersion,
      sequence: 1,
      whichCommand: COMMANDS.gps.command,
      status: 200,
      description: "中".repeat(600),
    };
    expect(encode(message, { encoding: "GB2312" }).ok).toBe(true);
    expect(encodeRefusedWith(message, { encoding: "UTF-8" })).toBe("MESSAGE_TOO_LARGE");
  });
});

describe("structure", () => {
  it(`refuses nesting deeper than ${DEFAULT_MAX_DEPTH} levels, configurable`, () => {
    expect(decode(Buffer.from(nested(DEFAULT_MAX_DEPTH))).ok).toBe(true);
    expect(refusedWith(nested(DEFAULT_MAX_DEPTH + 1))).toBe("NESTING_TOO_DEEP");
    expect(refusedWith(nested(5), { maxDepth: 4 })).toBe("NESTING_TOO_DEEP");
    expect(refusedWith(KEEPALIVE.replace("<Params>", `<Params>${"<a>".repeat(2000)}`))).toBe(
      "NESTING_TOO_DEEP",
    );
  });

  it("refuses every truncation of a valid datagram", () => {
    for (let n = 1; n < KEEPALIVE.length; n++) {
      const code = refusedWith(KEEPALIVE.slice(0, n));
      expect(["MALFORMED_XML"], `cut at ${n}`).toContain(code);
    }
    expect(refusedWith("")).toBe("DATAGRAM_EMPTY");
  });

  it("refuses mismatched and unclosed tags", () => {
    expect(refusedWith(KEEPALIVE.replace("</Command>", "</Commands>"))).toBe("MALFORMED_XML");
    expect(refusedWith(KEEPALIVE.replace("</Params>", ""))).toBe("MALFORMED_XML");
    expect(refusedWith(KEEPALIVE.replace("</Version>", "</version>"))).toBe("MALFORMED_XML");
    expect(refusedWith(KEEPALIVE.replace("<Params>", "<Params></Extra>"))).toBe("MALFORMED_XML");
  });

  it("refuses a KEEPALIVE followed by junk (FreeEhome answers it; peers.md)", () => {
    expect(refusedWith(`${KEEPALIVE}junk`)).toBe("MALFORMED_XML");
    expect(refusedWith(`${KEEPALIVE}\n\u0001\u0002`)).toBe("MALFORMED_XML");
    const sixtyKb = `${KEEPALIVE}${"A".repeat(60 * 1024)}`;
    expect(refusedWith(sixtyKb)).toBe("DATAGRAM_TOO_LARGE");
    expect(refusedWith(sixtyKb, { maxBytes: 128 * 1024 })).toBe("MALFORMED_XML");
  });

  it("refuses text before the root, two roots, and no root at all", () => {
    expect(refusedWith(`junk${KEEPALIVE}`)).toBe("MALFORMED_XML");
    expect(refusedWith(`${KEEPALIVE}${KEEPALIVE.replace(/^<\?xml[^>]*>/, "")}`)).toBe(
      "MALFORMED_XML",
    );
    expect(refusedWith(`${KEEPALIVE}<PPVSPMessage/>`)).toBe("MALFORMED_XML");
    expect(refusedWith('<?xml version="1.0"?><!-- nothing -->')).toBe("MALFORMED_XML");
  });

  it("refuses a NUL inside the document (only trailing NULs are padding)", () => {
    expect(refusedWith(KEEPALIVE.replace("cam-0001", "cam\u00000001"))).toBe("MALFORMED_XML");
    expect(refusedWith(`\u0000${KEEPALIVE}`)).toBe("MALFORMED_XML");
  });

  it("refuses character references to characters XML forbids", () => {
    for (const ref of [
      "&#0;",
      "&#x0;",
      "&#xD800;",
      "&#x110000;",
      "&#xFFFE;",
      "&#1;",
      "&#xZZ;",
      "&#;",
    ]) {
      expect(refusedWith(KEEPALIVE.replace("cam-0001", `cam${ref}`)), ref).toBe("MALFORMED_XML");
    }
  });

  it("refuses element names that would shadow Object.prototype members", () => {
    for (const name of ["__proto__", "constructor", "prototype", "toString", "hasOwnProperty"]) {
      const xml = KEEPALIVE.replace("<Params>", `<Params><${name}><x>1</x></${name}>`);
      expect(refusedWith(xml)).toBe("MALFORMED_XML");
    }
    expect(({} as Record<string, unknown>).x).toBeUndefined();
  });

  it("refuses empty, whitespace-only and NUL-only datagrams as DATAGRAM_EMPTY", () => {
    expect(refusedWith(Buffer.alloc(0))).toBe("DATAGRAM_EMPTY");
    expect(refusedWith(Buffer.alloc(64))).toBe("DATAGRAM_EMPTY");
    expect(refusedWith(" \r\n\t")).toBe("DATAGRAM_EMPTY");
  });
});

describe("envelope", () => {
  it("refuses a root other than PPVSPMessage", () => {
    expect(refusedWith(KEEPALIVE.replace(/PPVSPMessage/g, "PPVSPMsg"))).toBe("NOT_PPVSP");
    expect(refusedWith("<html><body>hi</body></html>")).toBe("NOT_PPVSP");
  });

  it.each([
    ["letters", "abc"],
    ["negative", "-1"],
    ["fraction", "1.5"],
    ["over 32 bits", "4294967296"],
    ["11 digits", "00000000001"],
    ["empty", ""],
    ["hex", "0x10"],
  ])("refuses a Sequence that is %s", (_label, value) => {
    expect(refusedWith(KEEPALIVE.replace("<Sequence>101<", `<Sequence>${value}<`))).toBe(
      "BAD_SEQUENCE",
    );
  });

  it("accepts the largest 32-bit Sequence", () => {
    const result = decode(Buffer.from(KEEPALIVE.replace(">101<", ">4294967295<")));
    expect(result.ok && result.message.header.sequence).toBe(4294967295);
  });

  it("refuses a missing Sequence, Command, WhichCommand or Status as MISSING_FIELD", () => {
    expect(refusedWith(KEEPALIVE.replace("<Sequence>101</Sequence>", ""))).toBe("MISSING_FIELD");
    expect(refusedWith(KEEPALIVE.replace("<Command>KEEPALIVE</Command>", ""))).toBe(
      "MISSING_FIELD",
    );
    expect(refusedWith(KEEPALIVE.replace("<Command>KEEPALIVE</Command>", "<Command/>"))).toBe(
      "MISSING_FIELD",
    );
    const response = fx.responsePtz401().toString("latin1");
    expect(refusedWith(response.replace(/<WhichCommand>[^<]*<\/WhichCommand>/, ""))).toBe(
      "MISSING_FIELD",
    );
    expect(refusedWith(response.replace(/<Status>[^<]*<\/Status>/, ""))).toBe("MISSING_FIELD");
  });

  it("refuses a device request without the DeviceID it needs", () => {
    expect(refusedWith(KEEPALIVE.replace("<DeviceID>cam-0001</DeviceID>", ""))).toBe(
      "MISSING_FIELD",
    );
    expect(
      refusedWith(
        fx
          .gpsUtf8()
          .toString()
          .replace(/<DeviceID>[^<]*<\/DeviceID>/, ""),
      ),
    ).toBe("MISSING_FIELD");
  });

  it("refuses a Status that is not a number", () => {
    const response = fx.responsePtz401().toString("latin1");
    expect(refusedWith(response.replace(">401<", ">OK<"))).toBe("BAD_STATUS");
    expect(refusedWith(response.replace(">401<", ">20000<"))).toBe("BAD_STATUS");
  });

  it("refuses a CommandType other than REQUEST or RESPONSE", () => {
    expect(refusedWith(KEEPALIVE.replace(">REQUEST<", ">NOTIFY<"))).toBe("BAD_COMMAND_TYPE");
    expect(refusedWith(KEEPALIVE.replace("<CommandType>REQUEST</CommandType>", ""))).toBe(
      "BAD_COMMAND_TYPE",
    );
  });
});

describe("bytes", () => {
  it("refuses bytes that are neither UTF-8 nor GB18030", () => {
    const bad = Buffer.concat([
      Buffer.from(KEEPALIVE.slice(0, 150)),
      Buffer.from([0xff, 0xfe, 0x80]),
      Buffer.from(KEEPALIVE.slice(150)),
    ]);
    expect(refusedWith(bad)).toBe("BAD_ENCODING");
    const gbDeclared = Buffer.from(bad.toString("latin1").replace("UTF-8", "GB2312"), "latin1");
    expect(refusedWith(gbDeclared)).toBe("BAD_ENCODING");
  });

  it("refuses a GB2312 datagram cut inside a two-byte character", () => {
    const gb = iconv.encode(KEEPALIVE.replace("cam-0001", "门口"), "gb2312");
    const at = gb.indexOf(Buffer.from("</DeviceID>")) - 1;
    const cut = Buffer.concat([gb.subarray(0, at), gb.subarray(at + 1)]);
    expect(refusedWith(cut)).toBe("BAD_ENCODING");
  });
});

describe("encode refusals", () => {
  const response = (description: string): OutboundResponse => ({
    kind: "response",
    version: ENVELOPE.platformVersion,
    sequence: 1,
    whichCommand: COMMANDS.keepalive.command,
    status: 200,
    description,
  });

  it("refuses characters not representable in GB2312 (UNENCODABLE), per encoding", () => {
    // 碁 is in GBK but not GB2312; € is GBK 0x80; the emoji is only in GB18030 and UTF-8.
    for (const text of ["碁", "€", "😀"]) {
      expect(encodeRefusedWith(response(text), { encoding: "GB2312" }), text).toBe("UNENCODABLE");
    }
    expect(encode(response("碁€"), { encoding: "GBK" }).ok).toBe(true);
    expect(encodeRefusedWith(response("😀"), { encoding: "GBK" })).toBe("UNENCODABLE");
    expect(encode(response("😀碁"), { encoding: "GB18030" }).ok).toBe(true);
    expect(encode(response("😀碁"), { encoding: "UTF-8" }).ok).toBe(true);
    expect(encode(response("中文"), { encoding: "GB2312" }).ok).toBe(true);
  });

  it("refuses characters XML 1.0 does not allow and unpaired surrogates", () => {
    for (const text of ["a\u0000b", "\u0001", "\u001f", "\uffff", "x\ud800", "\udc00y"]) {
      expect(encodeRefusedWith(response(text)), JSON.stringify(text)).toBe("UNENCODABLE");
    }
    expect(encode(response("tab\there\r\nline")).ok).toBe(true);
  });

  it("refuses element names that are not XML names or that the decoder reserves", () => {
    for (const name of ["1abc", "a b", "a<b", "", "__proto__", "constructor", "toString"]) {
      const params = JSON.parse(`{${JSON.stringify(name)}: "x"}`) as XmlElement;
      const message: OutboundMessage = { ...response("OK"), params };
      expect(encodeRefusedWith(message), name).toBe("UNENCODABLE");
    }
  });

  it("refuses what the decoder would refuse: bad Sequence, Status, empty command, deep nesting", () => {
    for (const sequence of [-1, 1.5, Number.NaN, 2 ** 32, Number.POSITIVE_INFINITY]) {
      expect(encodeRefusedWith({ ...response("OK"), sequence }), String(sequence)).toBe(
        "BAD_SEQUENCE",
      );
    }
    for (const status of [-1, 10_000, 2.5, Number.NaN]) {
      expect(encodeRefusedWith({ ...response("OK"), status }), String(status)).toBe("BAD_STATUS");
    }
    expect(encodeRefusedWith({ ...response("OK"), whichCommand: " " })).toBe("MISSING_FIELD");
    expect(encodeRefusedWith({ kind: "request", version: "2.5", sequence: 1, command: "" })).toBe(
      "MISSING_FIELD",
    );
    let deep: XmlElement = { Leaf: "x" };
    for (let i = 0; i < DEFAULT_MAX_DEPTH; i++) deep = { Level: deep };
    expect(encodeRefusedWith({ ...response("OK"), params: deep })).toBe("NESTING_TOO_DEEP");
  });

  it("refuses a cyclic params object instead of recursing forever", () => {
    const cyclic: XmlElement = { A: "x" };
    cyclic.Self = cyclic;
    expect(encodeRefusedWith({ ...response("OK"), params: cyclic })).toBe("NESTING_TOO_DEEP");
  });

  it("never throws on values outside the types (null, numbers, getters that throw)", () => {
    const loose = { A: null, B: 7, C: undefined, D: true } as unknown as XmlElement;
    const ok = encode({ ...response("OK"), params: loose });
    expect(ok.ok && ok.bytes.toString()).toContain("<Params><B>7</B><D>true</D></Params>");
    const hostile = Object.defineProperty({}, "Boom", {
      enumerable: true,
      get() {
        throw new Error("boom");
      },
    }) as XmlElement;
    expect(encodeRefusedWith({ ...response("OK"), params: hostile })).toBe("UNENCODABLE");
  });
});
