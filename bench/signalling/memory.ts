import type { MemorySample } from "./protocol.ts";

/**
 * Memory of this process after full garbage collections (needs --expose-gc), so a before/after
 * difference is what is retained, not garbage waiting to be collected.
 */
export async function settledMemory(sessions: number): Promise<MemorySample> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error("memory samples need node --expose-gc");
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((r) => setImmediate(r));
  }
  const m = process.memoryUsage();
  return {
    rssBytes: m.rss,
    heapUsedBytes: m.heapUsed,
    externalBytes: m.external,
    arrayBuffersBytes: m.arrayBuffers,
    sessions,
  };
}
