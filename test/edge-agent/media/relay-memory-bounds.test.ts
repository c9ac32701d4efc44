import { describe, expect, it } from "vitest";
import { createRelay, type RelayConfig } from "../../../edge-agent/media/relay.ts";
import { hikPs } from "./helpers/ps-fixtures.ts";
import { CollectingSink, manualClock, StalledSink, settle } from "./helpers/relay-sinks.ts";

// The relay's memory bounds (issue 4, bench/media: < 512 KiB per stream at 4 Mbit/s): one GOP
// cache kept as PS only and bounded in bytes, and a bounded buffer per viewer.

function setup(config: RelayConfig = {}) {
  const clock = manualClock();
  const events = { keyframeWanted: 0 };
  const relay = createRelay({ ...config, onKeyframeWanted: () => events.keyframeWanted++ }, clock);
  return { relay, clock, events };
}

function push(relay: { push(b: Uint8Array): void }, packs: Buffer[]): void {
  const ps = Buffer.concat(packs);
  for (let at = 0; at < ps.length; at += 1400) relay.push(ps.subarray(at, at + 1400));
}

/** PID → continuity counters of a TS byte stream, in order. */
function counters(ts: Buffer): Map<number, number[]> {
  const out = new Map<number, number[]>();
  for (let o = 0; o < ts.length; o += 188) {
    const pid = ((ts[o + 1]! & 0x1f) << 8) | ts[o + 2]!;
    const list = out.get(pid) ?? [];
    list.push(ts[o + 3]! & 0x0f);
    out.set(pid, list);
  }
  return out;
}

describe("relay memory: the GOP cache", () => {
  const stream = hikPs({ frames: 75, keyEvery: 25, frameBytes: 4000, seed: 3 });
  const keys = stream.keyframes.flatMap((k, i) => (k ? [i] : []));
  const gopBytes = (from: number, to: number) =>
    stream.packs.slice(from, to).reduce((n, p) => n + p.length, 0);

  it("holds the GOP once, as PS, even while TS viewers exist", () => {
    const { relay } = setup();
    relay.addViewer(new CollectingSink(), "ts");
    relay.addViewer(new CollectingSink(), "ps");
    // The splitter emits a pack when the next one starts: pushing up to keys[1] + 10 emits
    // keys[1] … keys[1] + 8.
    push(relay, stream.packs.slice(0, keys[1]! + 10));
    expect(relay.stats().tsBytes).toBeGreaterThan(0);
    expect(relay.stats().gopBytes).toBe(gopBytes(keys[1]!, keys[1]! + 9));
    // The relay's own memory: the cached PS and the one pack the splitter is cutting.
    expect(relay.bufferedBytes() - relay.stats().gopBytes).toBeLessThanOrEqual(
      stream.packs[keys[1]! + 9]!.length,
    );
    relay.close();
  });

  it("drops a GOP that outgrows maxGopBytes; a late viewer then waits for the next keyframe and a FORCEIFRAME is asked", async () => {
    // The first GOP fits until its 10th pack; from the next keyframe the GOPs are cached again
    // until they outgrow it again.
    const limit = gopBytes(keys[1]!, keys[1]! + 10);
    const { relay, events } = setup({ maxGopBytes: limit });
    push(relay, stream.packs.slice(0, keys[1]! + 6));
    expect(relay.stats().gopBytes).toBeGreaterThan(0);
    expect(relay.stats().gopBytes).toBeLessThanOrEqual(limit);
    const overflowsBefore = relay.stats().gopOverflows;
    push(relay, stream.packs.slice(keys[1]! + 6, keys[1]! + 20));
    expect(relay.stats().gopBytes).toBe(0);
    expect(relay.stats().gopOverflows).toBe(overflowsBefore + 1);
    const late = new CollectingSink();
    relay.addViewer(late, "ts");
    expect(events.keyframeWanted).toBe(1);
    // Nothing until the keyframe; then it starts there.
    push(relay, stream.packs.slice(keys[1]! + 20, keys[2]!));
    await settle();
    expect(late.bytes().length).toBe(0);
    push(relay, stream.packs.slice(keys[2]!));
    relay.end();
    await settle();
    const ts = late.bytes();
    expect(ts.length).toBeGreaterThan(0);
    // PAT first, then the PMT and a video packet with random_access_indicator.
    expect([ts[0], ts[1]! & 0x5f, ts[2]]).toEqual([0x47, 0x40, 0x00]);
    expect(relay.stats().bytesIn).toBe(stream.ps.length);
    expect(relay.stats().gopBytes).toBe(0);
  });

  it("never holds more than maxGopBytes however long the GOP", () => {
    const long = hikPs({ frames: 200, keyEvery: 200, frameBytes: 3000, seed: 4 });
    const limit = 64 * 1024;
    const { relay } = setup({ maxGopBytes: limit });
    relay.addViewer(new CollectingSink(), "ts");
    let peak = 0;
    const ps = long.ps;
    for (let at = 0; at < ps.length; at += 1400) {
      relay.push(ps.subarray(at, at + 1400));
      peak = Math.max(peak, relay.stats().gopBytes);
    }
    expect(peak).toBeLessThanOrEqual(limit);
    expect(relay.stats().gopOverflows).toBe(1);
    relay.close();
  });

  it("gives a late TS viewer the cached GOP remuxed on joining: same bytes as the live TS viewer from there, continuity counters unbroken", async () => {
    const { relay } = setup();
    const early = new CollectingSink();
    relay.addViewer(early, "ts");
    push(relay, stream.packs.slice(0, keys[1]! + 8));
    await settle();
    const earlyBefore = early.bytes().length;
    const late = new CollectingSink();
    relay.addViewer(late, "ts");
    await settle();
    const joinTs = late.bytes();
    expect(joinTs.length).toBeGreaterThan(0);
    expect(joinTs.length % 188).toBe(0);
    expect([joinTs[0], joinTs[1]! & 0x5f, joinTs[2]]).toEqual([0x47, 0x40, 0x00]);
    // The joining GOP is the tail of what the early viewer got (from the keyframe's PAT), except
    // for the continuity counters, which continue into the live packets.
    expect(joinTs.length).toBeLessThanOrEqual(earlyBefore);
    push(relay, stream.packs.slice(keys[1]! + 8));
    relay.end();
    await settle();
    const earlyAll = early.bytes();
    const lateAll = late.bytes();
    expect(lateAll.equals(earlyAll.subarray(earlyAll.length - lateAll.length))).toBe(true);
    for (const [pid, cc] of counters(lateAll)) {
      for (let k = 1; k < cc.length; k++) {
        expect({ pid, k, cc: cc[k] }).toEqual({ pid, k, cc: (cc[k - 1]! + 1) & 0x0f });
      }
    }
    // Nothing TS is cached.
    expect(relay.stats().gopBytes).toBe(0);
  });
});

describe("relay memory: the per-viewer bound", () => {
  const stream = hikPs({ frames: 100, keyEvery: 25, frameBytes: 6000, seed: 8 });
  const keys = stream.keyframes.flatMap((k, i) => (k ? [i] : []));
  const maxPack = Math.max(...stream.packs.map((p) => p.length));

  it("a stalled viewer holds at most the cap + one pack, then is dropped after drainTimeoutMs", () => {
    const cap = 40_000;
    const { relay, clock } = setup({ maxViewerBufferBytes: cap, drainTimeoutMs: 2000 });
    const stalled = new StalledSink();
    const reasons: string[] = [];
    relay.addViewer(stalled, "ps", (r) => reasons.push(r));
    let peak = 0;
    for (const p of stream.packs) {
      push(relay, [p]);
      peak = Math.max(peak, stalled.writableLength);
      clock.advance(40);
    }
    expect(peak).toBeLessThanOrEqual(cap + maxPack);
    expect(stalled.destroyed).toBe(true);
    expect(reasons).toEqual(["slow"]);
    expect(relay.stats().viewersDropped).toBe(1);
  });

  it("a late viewer that stalls holds at most the joining GOP + the cap + one pack", () => {
    const cap = 40_000;
    const { relay, clock } = setup({ maxViewerBufferBytes: cap, drainTimeoutMs: 2000 });
    push(relay, stream.packs.slice(0, keys[1]! + 15));
    const gop = relay.stats().gopBytes;
    expect(gop).toBeGreaterThan(cap);
    const stalled = new StalledSink();
    relay.addViewer(stalled, "ps");
    expect(stalled.writableLength).toBe(gop);
    let peak = 0;
    for (const p of stream.packs.slice(keys[1]! + 15)) {
      push(relay, [p]);
      peak = Math.max(peak, stalled.writableLength);
      clock.advance(40);
    }
    expect(peak).toBeLessThanOrEqual(gop + cap + maxPack);
    expect(stalled.destroyed).toBe(true);
  });

  it("a late viewer whose joining GOP is larger than the cap is not skipped once it drains it", async () => {
    const cap = 20_000;
    const { relay } = setup({ maxViewerBufferBytes: cap });
    push(relay, stream.packs.slice(0, keys[1]! + 10));
    expect(relay.stats().gopBytes).toBeGreaterThan(cap);
    const v = new StalledSink();
    relay.addViewer(v, "ps");
    // Slow to start (the GOP is still queued), then it reads.
    v.release();
    await settle();
    push(relay, stream.packs.slice(keys[1]! + 10));
    relay.end();
    await settle();
    expect(relay.stats().packsDropped).toBe(0);
    expect(v.bytes().equals(Buffer.concat(stream.packs.slice(keys[1]!)))).toBe(true);
  });
});
