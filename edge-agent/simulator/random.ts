/** A source of uniform numbers in [0, 1). Injected so impairments and content are reproducible. */
export type Random = () => number;

/**
 * Seeded PRNG (mulberry32): fast, 32-bit state, good enough for loss/jitter decisions and synthetic
 * content. Not for anything security-relevant.
 */
export function seededRandom(seed: number): Random {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** An integer in [min, max]. */
export function randomInt(random: Random, min: number, max: number): number {
  return min + Math.floor(random() * (max - min + 1));
}
