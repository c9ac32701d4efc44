import { describe, expect, it } from "vitest";
import { createReorderBuffer, seqDistance } from "../../../edge-agent/media/rtp-reorder.ts";

/** ehome-2.0 §8 (LinkMode UDP): reorder by RTP sequence within a bounded window, count loss. */

type Out = Array<{ seq: number; packet: string; lostBefore: number }>;

function feed(buffer: ReturnType<typeof createReorderBuffer<string>>, seqs: number[], at = 0): Out {
  const out: Out = [];
  for (const s of seqs) out.push(...buffer.push(s, `p${s}`, at));
  return out;
}

const seqsOf = (out: Out) => out.map((r) => r.seq);

describe("RTP reorder window", () => {
  it("in order: every packet released at once, nothing lost", () => {
    const b = createReorderBuffer<string>();
    const out = feed(b, [10, 11, 12, 13]);
    expect(seqsOf(out)).toEqual([10, 11, 12, 13]);
    expect(out.every((r) => r.lostBefore === 0)).toBe(true);
    expect(b.stats()).toMatchObject({ received: 4, released: 4, lost: 0, reordered: 0, held: 0 });
    expect(b.deadline()).toBeUndefined();
  });

  it("swapped pair: the later one waits, both released in order", () => {
    const b = createReorderBuffer<string>();
    const first = feed(b, [1, 3]);
    expect(seqsOf(first)).toEqual([1]);
    expect(b.stats().held).toBe(1);
    const rest = feed(b, [2, 4]);
    expect(seqsOf(rest)).toEqual([2, 3, 4]);
    expect(b.stats()).toMatchObject({ lost: 0, reordered: 1, held: 0 });
  });

  it("wraparound at 65536: 65534, 65535, 0, 1 in order, and a swap across the wrap", () => {
    expect(seqDistance(0, 65535)).toBe(1);
    expect(seqDistance(65535, 0)).toBe(-1);
    const b = createReorderBuffer<string>();
    expect(seqsOf(feed(b, [65534, 0, 65535, 1]))).toEqual([65534, 65535, 0, 1]);
    expect(b.stats()).toMatchObject({ lost: 0, reordered: 1, late: 0 });
  });

  it("loss: the gap is given up after maxDelayMs and counted; a packet arriving later is late", () => {
    const b = createReorderBuffer<string>({ maxDelayMs: 200 });
    expect(seqsOf(feed(b, [5, 7, 8], 1000))).toEqual([5]);
    expect(b.deadline()).toBe(1200);
    expect(b.expire(1199)).toEqual([]);
    const out = b.expire(1200);
    expect(seqsOf(out)).toEqual([7, 8]);
    expect(out[0]!.lostBefore).toBe(1);
    expect(b.stats()).toMatchObject({ lost: 1, held: 0 });
    expect(feed(b, [6], 1300)).toEqual([]);
    expect(b.stats()).toMatchObject({ late: 1, duplicates: 0 });
  });

  it("duplicates: of a released packet and of a held one, dropped and counted", () => {
    const b = createReorderBuffer<string>();
    const out = feed(b, [1, 2, 2, 4, 4, 3, 1]);
    expect(seqsOf(out)).toEqual([1, 2, 3, 4]);
    expect(b.stats()).toMatchObject({ duplicates: 3, late: 0, lost: 0 });
  });

  it("window overflow: with 4 held the oldest gap is given up at once", () => {
    const b = createReorderBuffer<string>({ window: 4, maxDelayMs: 10_000 });
    // 1 released; 2 and 3 missing; 4..7 held (4 = window); 8 overflows: gap 2-3 given up.
    expect(seqsOf(feed(b, [1, 4, 5, 6, 7]))).toEqual([1]);
    const out = feed(b, [8]);
    expect(seqsOf(out)).toEqual([4, 5, 6, 7, 8]);
    expect(out[0]!.lostBefore).toBe(2);
    expect(b.stats()).toMatchObject({ lost: 2, overflows: 1, held: 0 });
  });

  it("a jump beyond the reset distance follows the new sequence; flush releases what is held", () => {
    const b = createReorderBuffer<string>({ resetDistance: 100 });
    feed(b, [1, 3]);
    const out = feed(b, [40_000, 40_001]);
    expect(seqsOf(out)).toEqual([3, 40_000, 40_001]);
    expect(b.stats()).toMatchObject({ resets: 1, lost: 1 });
    feed(b, [40_003]);
    const flushed = b.flush();
    expect(seqsOf(flushed)).toEqual([40_003]);
    expect(flushed[0]!.lostBefore).toBe(1);
    expect(b.stats().held).toBe(0);
  });
});
