/**
 * Bad input never crashes the agent (architecture §6): 100,000 seeded random and mutated datagrams
 * through decode, and random OutboundMessages through encode. `npm run fuzz` runs the same fuzzer
 * with larger counts (bench/fuzz.ts).
 */
import { describe, expect, it } from "vitest";
import {
  CODEC_ERROR_CODES,
  type MessageKind,
} from "../../../../edge-agent/signalling/codec/index.ts";
import { runDecodeFuzz, runEncodeFuzz } from "../../../fixtures/datagrams/fuzz.ts";

const DECODE_COUNT = 100_000;
const ENCODE_COUNT = 20_000;

/** Codes only encode produces; every other code is reachable from bytes. */
const ENCODE_ONLY = new Set(["MESSAGE_TOO_LARGE", "UNENCODABLE"]);
const KINDS: MessageKind[] = [
  "register",
  "keepalive",
  "gps",
  "alarm",
  "device-request",
  "platform-request",
  "response",
];

describe("codec fuzz", () => {
  it(`decode never throws and answers ok or a listed code for ${DECODE_COUNT} mutated datagrams`, () => {
    const stats = runDecodeFuzz(DECODE_COUNT, 0x5eed);

    expect(stats.violations).toEqual([]);
    const total = Object.values(stats.histogram).reduce((a, b) => a + b, 0);
    expect(total).toBe(DECODE_COUNT);
    // The mutants reach every refusal decode has and every message kind, so the run exercised
    // the whole decoder rather than bouncing off the first check.
    for (const code of CODEC_ERROR_CODES.filter((c) => !ENCODE_ONLY.has(c))) {
      expect(stats.histogram[code], code).toBeGreaterThan(0);
    }
    for (const kind of KINDS) expect(stats.histogram[`ok:${kind}`], kind).toBeGreaterThan(0);
    // Decoded mutants re-encode and decode back to the same message.
    expect(stats.roundTrips).toBeGreaterThan(DECODE_COUNT / 100);
    console.info(
      `decode fuzz: ${DECODE_COUNT} in ${Math.round(stats.elapsedMs)} ms ` +
        `(${Math.round(DECODE_COUNT / (stats.elapsedMs / 1000))}/s)`,
    );
  });

  it(`encode never throws for ${ENCODE_COUNT} random OutboundMessages, and what it accepts decodes back`, () => {
    const stats = runEncodeFuzz(ENCODE_COUNT, 0xc0dec);

    expect(stats.violations).toEqual([]);
    expect(stats.histogram.ok).toBeGreaterThan(ENCODE_COUNT / 10);
    for (const code of [
      "UNENCODABLE",
      "MESSAGE_TOO_LARGE",
      "BAD_SEQUENCE",
      "BAD_STATUS",
      "MISSING_FIELD",
      "NESTING_TOO_DEEP",
    ]) {
      expect(stats.histogram[code], code).toBeGreaterThan(0);
    }
  });

  it("is deterministic: the same seed gives the same results", () => {
    const a = runDecodeFuzz(2_000, 42);
    const b = runDecodeFuzz(2_000, 42);
    expect(b.histogram).toEqual(a.histogram);
    expect(b.mutators).toEqual(a.mutators);
    expect(runDecodeFuzz(2_000, 43).histogram).not.toEqual(a.histogram);
  });
});
