import { packHeader, pesPacket } from "../../../../edge-agent/media/ps.ts";
import { type Random, randomInt } from "../../../../edge-agent/simulator/random.ts";

export interface SyntheticPs {
  /** The whole program stream. */
  ps: Buffer;
  /** The same bytes cut where a device cuts its chunks (one 0x0d record or one 0x1c run each). */
  units: Buffer[];
  frames: number;
  audioPackets: number;
}

export interface SyntheticPsOptions {
  frames: number;
  /** Every n-th frame is a "keyframe": larger, with a system header and a PSM. */
  keyEvery?: number;
  /** Largest keyframe payload (split into PES packets of ≤ 60 000 bytes). */
  maxKeyframeBytes?: number;
  maxFrameBytes?: number;
  audio?: boolean;
}

function randomBytes(random: Random, n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (random() * 256) | 0;
  return b;
}

/**
 * A synthetic MPEG-PS shaped like a Hikvision push: packs with non-0xFF stuffing (ehome-2.0 §4.1
 * item 4), video PES 0xE0 with random payload (start-code emulation included), audio PES 0xC0.
 */
export function syntheticPs(random: Random, options: SyntheticPsOptions): SyntheticPs {
  const keyEvery = options.keyEvery ?? 25;
  const maxKey = options.maxKeyframeBytes ?? 90_000;
  const maxFrame = options.maxFrameBytes ?? 6_000;
  const units: Buffer[] = [];
  let audioPackets = 0;
  for (let f = 0; f < options.frames; f++) {
    const pts = 3600 * f;
    const key = f % keyEvery === 0;
    const head = [packHeader(pts, 50_000, Buffer.from([0xff, 0xff, 0x00, 0x7d, 0x49, f & 0xff]))];
    if (key) {
      head.push(Buffer.concat([Buffer.from([0, 0, 1, 0xbb, 0, 6]), randomBytes(random, 6)]));
      head.push(Buffer.concat([Buffer.from([0, 0, 1, 0xbc, 0, 10]), randomBytes(random, 10)]));
    }
    let remaining = randomInt(random, key ? maxKey / 2 : 20, key ? maxKey : maxFrame);
    let first = true;
    while (remaining > 0) {
      const n = Math.min(remaining, 60_000);
      const pes = pesPacket(0xe0, randomBytes(random, n), first ? pts : undefined);
      units.push(first ? Buffer.concat([...head, pes]) : pes);
      first = false;
      remaining -= n;
    }
    if (options.audio !== false && f % 2 === 1) {
      units.push(pesPacket(0xc0, randomBytes(random, randomInt(random, 80, 400)), pts));
      audioPackets++;
    }
  }
  return { ps: Buffer.concat(units), units, frames: options.frames, audioPackets };
}
