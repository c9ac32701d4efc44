/**
 * G.711 (ITU-T G.711) μ-law (PCMU, RTP payload type 0) and A-law (PCMA, payload type 8) for voice
 * talk (issue 8 item 2; ehome-2.0 §8 `INVITETALK` row: `AudioFormat` `G711U` / `G711A`, 8 kHz,
 * 20 ms frames of 160 bytes).
 *
 * Encoding follows the reference algorithm (ITU-T G.191 software tools; Sun g711.c for A-law): μ-law on
 * 14-bit magnitudes with bias 33 (0x84 at 16 bits), A-law on 13-bit magnitudes. Decoding uses two 256-entry tables computed once. Pure functions, no state.
 */

export type G711Law = "ulaw" | "alaw";

/** RTP payload types (RFC 3551): PCMU 0, PCMA 8. */
export const G711_PAYLOAD_TYPE: Readonly<Record<G711Law, number>> = { ulaw: 0, alaw: 8 };
/** 8 kHz × 20 ms. */
export const G711_FRAME_SAMPLES = 160;

const A_SEG_END = [0x1f, 0x3f, 0x7f, 0xff, 0x1ff, 0x3ff, 0x7ff, 0xfff];

function segment(value: number, ends: readonly number[]): number {
  for (let i = 0; i < ends.length; i++) if (value <= ends[i]!) return i;
  return ends.length;
}

/** One 16-bit linear sample → μ-law byte (ITU-T G.191 `ulaw_compress`). */
export function linearToUlaw(sample: number): number {
  // One's complement of negative samples, 14-bit magnitude, bias 33, clipped.
  let abs = (sample < 0 ? ~sample : sample) >> 2;
  abs = Math.min(abs + 33, 0x1fff);
  let seg = 1;
  for (let i = abs >> 6; i !== 0; i >>= 1) seg++;
  const high = 8 - seg;
  const low = 0x0f - ((abs >> seg) & 0x0f);
  return ((high << 4) | low | (sample >= 0 ? 0x80 : 0)) & 0xff;
}

/** One 16-bit linear sample → A-law byte. */
export function linearToAlaw(sample: number): number {
  let v = sample >> 3;
  let mask = 0xd5;
  if (v < 0) {
    mask = 0x55;
    v = -v - 1;
  }
  const seg = segment(v, A_SEG_END);
  if (seg >= 8) return 0x7f ^ mask;
  const low = seg < 2 ? (v >> 1) & 0x0f : (v >> seg) & 0x0f;
  return ((seg << 4) | low) ^ mask;
}

function ulawValue(byte: number): number {
  const u = ~byte & 0xff;
  let t = ((u & 0x0f) << 3) + 0x84;
  t <<= (u & 0x70) >> 4;
  return u & 0x80 ? 0x84 - t : t - 0x84;
}

function alawValue(byte: number): number {
  const a = byte ^ 0x55;
  let t = (a & 0x0f) << 4;
  const seg = (a & 0x70) >> 4;
  if (seg === 0) t += 8;
  else t = (t + 0x108) << (seg - 1);
  return a & 0x80 ? t : -t;
}

const ULAW_TABLE = Int16Array.from({ length: 256 }, (_, i) => ulawValue(i));
const ALAW_TABLE = Int16Array.from({ length: 256 }, (_, i) => alawValue(i));

export function ulawToLinear(byte: number): number {
  return ULAW_TABLE[byte & 0xff]!;
}

export function alawToLinear(byte: number): number {
  return ALAW_TABLE[byte & 0xff]!;
}

/** 16-bit little-endian PCM (an odd last byte is ignored) → G.711 bytes, one per sample. */
export function encodeG711(pcm: Uint8Array, law: G711Law): Buffer {
  const n = pcm.length >> 1;
  const out = Buffer.allocUnsafe(n);
  const view = new DataView(pcm.buffer, pcm.byteOffset, n * 2);
  const enc = law === "ulaw" ? linearToUlaw : linearToAlaw;
  for (let i = 0; i < n; i++) out[i] = enc(view.getInt16(i * 2, true));
  return out;
}

/** G.711 bytes → 16-bit little-endian PCM. */
export function decodeG711(bytes: Uint8Array, law: G711Law): Buffer {
  const table = law === "ulaw" ? ULAW_TABLE : ALAW_TABLE;
  const out = Buffer.allocUnsafe(bytes.length * 2);
  for (let i = 0; i < bytes.length; i++) out.writeInt16LE(table[bytes[i]!]!, i * 2);
  return out;
}
