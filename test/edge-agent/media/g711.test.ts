import { describe, expect, it } from "vitest";
import {
  alawToLinear,
  decodeG711,
  encodeG711,
  linearToAlaw,
  linearToUlaw,
  ulawToLinear,
} from "../../../edge-agent/media/g711.ts";

/**
 * ITU-T G.711 reference points (Tables 1a/2a of the Recommendation, as the ITU-T software tools
 * and Sun's g711.c give them): the characters for zero and full scale, the decoded values of the
 * extreme and smallest codes, and the quantisation error bound of each law.
 */

describe("G.711 μ-law (PCMU)", () => {
  it("encodes the reference points", () => {
    expect(linearToUlaw(0)).toBe(0xff);
    expect(linearToUlaw(-1)).toBe(0x7f);
    expect(linearToUlaw(32767)).toBe(0x80);
    expect(linearToUlaw(-32768)).toBe(0x00);
    // First segment boundary: 16-bit 124 (14-bit 31 + bias 33 = 64) starts segment 1.
    expect(linearToUlaw(124)).toBe(0xef);
    expect(linearToUlaw(120)).toBe(0xf0);
  });

  it("decodes the reference points", () => {
    expect(ulawToLinear(0xff)).toBe(0);
    expect(ulawToLinear(0x7f)).toBe(0);
    expect(ulawToLinear(0x80)).toBe(32124);
    expect(ulawToLinear(0x00)).toBe(-32124);
    expect(ulawToLinear(0xfe)).toBe(8);
    expect(ulawToLinear(0x7e)).toBe(-8);
  });

  it("every code decodes and re-encodes to itself (except the two zeros)", () => {
    for (let c = 0; c < 256; c++) {
      const back = linearToUlaw(ulawToLinear(c));
      expect(back === c || (c === 0x7f && back === 0xff)).toBe(true);
    }
  });
});

describe("G.711 A-law (PCMA)", () => {
  it("encodes the reference points", () => {
    expect(linearToAlaw(0)).toBe(0xd5);
    expect(linearToAlaw(-1)).toBe(0x55);
    expect(linearToAlaw(32767)).toBe(0xaa);
    expect(linearToAlaw(-32768)).toBe(0x2a);
  });

  it("decodes the reference points", () => {
    expect(alawToLinear(0xd5)).toBe(8);
    expect(alawToLinear(0x55)).toBe(-8);
    expect(alawToLinear(0xaa)).toBe(32256);
    expect(alawToLinear(0x2a)).toBe(-32256);
  });

  it("every code decodes and re-encodes to itself", () => {
    for (let c = 0; c < 256; c++) expect(linearToAlaw(alawToLinear(c))).toBe(c);
  });
});

describe("PCM ⇄ G.711 buffers", () => {
  it("a 1 kHz tone survives both laws within the quantisation error", () => {
    const pcm = Buffer.alloc(320);
    for (let i = 0; i < 160; i++) {
      pcm.writeInt16LE(Math.round(12_000 * Math.sin((2 * Math.PI * 1000 * i) / 8000)), i * 2);
    }
    for (const law of ["ulaw", "alaw"] as const) {
      const g = encodeG711(pcm, law);
      expect(g).toHaveLength(160);
      const back = decodeG711(g, law);
      for (let i = 0; i < 160; i++) {
        const x = pcm.readInt16LE(i * 2);
        // Logarithmic steps: at most 1/16 of the magnitude plus the smallest step.
        expect(Math.abs(back.readInt16LE(i * 2) - x)).toBeLessThanOrEqual(Math.abs(x) / 16 + 16);
      }
    }
  });
});
