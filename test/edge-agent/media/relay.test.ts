import { describe, expect, it } from "vitest";
import { createDeframer } from "../../../edge-agent/media/deframer.ts";
import { createFramer } from "../../../edge-agent/media/framer.ts";
import { createRelay, type RelayConfig, type ViewerSink } from "../../../edge-agent/media/relay.ts";
import { hikPs } from "./helpers/ps-fixtures.ts";
import { CollectingSink, manualClock, StalledSink, settle } from "./helpers/relay-sinks.ts";

function pushAll(relay: { push(b: Uint8Array): void }, ps: Buffer, chunk = 1400): void {
  for (let at = 0; at < ps.length; at += chunk) relay.push(ps.subarray(at, at + chunk));
}

/** Buffer equality without vitest's byte-by-byte diff (slow on megabytes). */
function expectSame(actual: Buffer, expected: Buffer): void {
  expect(actual.length).toBe(expected.length);
  expect(actual.equals(expected)).toBe(true);
}

function setup(config: RelayConfig = {}) {
  const clock = manualClock();
  const events = { keyframeWanted: 0, counts: [] as number[] };
  const relay = createRelay(
    {
      ...config,
      onKeyframeWanted: () => events.keyframeWanted++,
      onViewerCountChange: (n) => events.counts.push(n),
    },
    clock,
  );
  return { relay, clock, events };
}

describe("relay: fan-out to viewers", () => {
  const stream = hikPs({ frames: 60, keyEvery: 25, frameBytes: 3000, audioType: 0x90 });

  it("gives two viewers that join before the stream identical bytes: the whole PS", async () => {
    const { relay, events } = setup();
    const a = new CollectingSink();
    const b = new CollectingSink();
    relay.addViewer(a, "ps");
    relay.addViewer(b, "ps");
    // Nothing cached yet: both wait for the first keyframe, and the device is asked once.
    expect(events.keyframeWanted).toBe(1);
    pushAll(relay, stream.ps);
    relay.end();
    await settle();
    expectSame(a.bytes(), stream.ps);
    expectSame(b.bytes(), stream.ps);
    expect(a.writableFinished).toBe(true);
    expect(events.counts).toEqual([1, 2, 1, 0]);
    expect(relay.stats()).toMatchObject({
      viewers: 0,
      bytesIn: stream.ps.length,
      bytesOut: 2 * stream.ps.length,
      keyframes: 3,
      packsDropped: 0,
      viewersDropped: 0,
      tsBytes: 0,
    });
  });

  it("starts a late viewer at the last keyframe with the cached GOP", async () => {
    const { relay, events } = setup();
    const keyAt = stream.keyframes.indexOf(true, 1); // the second keyframe pack
    const lateAt = keyAt + 7;
    const before = Buffer.concat(stream.packs.slice(0, lateAt));
    pushAll(relay, before);
    // The splitter holds the last pack until the next one starts: push the next pack's header.
    const late = new CollectingSink();
    relay.addViewer(late, "ps");
    expect(events.keyframeWanted).toBe(0);
    pushAll(relay, stream.ps.subarray(before.length));
    relay.end();
    await settle();
    expectSame(late.bytes(), Buffer.concat(stream.packs.slice(keyAt)));
  });

  it("makes a viewer wait for the next keyframe when the GOP outgrew maxGopBytes, and asks for one", async () => {
    const { relay, events } = setup({ maxGopBytes: 20_000 });
    const keyAt = stream.keyframes.indexOf(true, 1);
    const before = Buffer.concat(stream.packs.slice(0, keyAt - 5));
    pushAll(relay, before);
    expect(relay.stats().gopBytes).toBe(0);
    expect(relay.stats().gopOverflows).toBe(1);
    const v = new CollectingSink();
    relay.addViewer(v, "ps");
    expect(events.keyframeWanted).toBe(1);
    // A second joiner before the keyframe does not ask again.
    relay.addViewer(new CollectingSink(), "ps");
    expect(events.keyframeWanted).toBe(1);
    pushAll(relay, stream.ps.subarray(before.length));
    relay.end();
    await settle();
    expectSame(v.bytes(), Buffer.concat(stream.packs.slice(keyAt)));
    expect(relay.stats().packsDropped).toBe(0);
  });

  it("skips a stalled viewer to keyframes and drops it after drainTimeoutMs, never delaying the others", async () => {
    const big = hikPs({ frames: 120, keyEvery: 25, frameBytes: 8000, seed: 5 });
    const cap = 100_000;
    const { relay, clock } = setup({
      maxViewerBufferBytes: cap,
      drainTimeoutMs: 5000,
      maxGopBytes: 1 << 20,
    });
    const fast1 = new CollectingSink();
    const fast2 = new CollectingSink();
    const stalled = new StalledSink();
    const closes: string[] = [];
    relay.addViewer(fast1, "ps");
    relay.addViewer(stalled, "ps", (r) => closes.push(r));
    relay.addViewer(fast2, "ps");
    let peakStalled = 0;
    let peakRelay = 0;
    for (let at = 0; at < big.ps.length; at += 4096) {
      relay.push(big.ps.subarray(at, at + 4096));
      // push() is synchronous and the fast viewers are up to date without awaiting anything.
      peakStalled = Math.max(peakStalled, stalled.writableLength);
      peakRelay = Math.max(peakRelay, relay.bufferedBytes());
      clock.advance(10);
    }
    expect(peakStalled).toBeLessThanOrEqual(cap);
    expect(peakRelay).toBeLessThanOrEqual((1 << 20) + 8000 * 4 + 2000);
    expect(relay.stats().packsDropped).toBeGreaterThan(0);
    expect(relay.stats().viewersDropped).toBe(0);
    clock.advance(5000);
    expect(stalled.destroyed).toBe(true);
    expect(closes).toEqual(["slow"]);
    expect(relay.stats()).toMatchObject({ viewers: 2, viewersDropped: 1 });
    relay.end();
    await settle();
    expectSame(fast1.bytes(), big.ps);
    expectSame(fast2.bytes(), big.ps);
    expect(clock.pending()).toBe(0);
  });

  it("lets a slow viewer that drains resume at the next keyframe, with whole packs only", async () => {
    const big = hikPs({ frames: 80, keyEvery: 20, frameBytes: 6000, seed: 6 });
    const { relay, clock } = setup({ maxViewerBufferBytes: 60_000, drainTimeoutMs: 5000 });
    const slow = new StalledSink();
    relay.addViewer(slow, "ps");
    const keys = big.keyframes.flatMap((k, i) => (k ? [i] : []));
    // Stalled during the first GOP, then it drains (within the timeout) before the second keyframe.
    pushAll(relay, Buffer.concat(big.packs.slice(0, keys[1]! - 2)));
    expect(relay.stats().packsDropped).toBeGreaterThan(0);
    slow.release();
    await settle();
    clock.advance(6000);
    expect(slow.destroyed).toBe(false);
    pushAll(relay, Buffer.concat(big.packs.slice(keys[1]! - 2)));
    relay.end();
    await settle();
    const got = slow.bytes();
    const head = got.subarray(0, got.length - Buffer.concat(big.packs.slice(keys[1]!)).length);
    expectSame(got.subarray(head.length), Buffer.concat(big.packs.slice(keys[1]!)));
    // What it got before the gap is a run of whole packs from the start.
    let n = 0;
    let len = 0;
    while (len < head.length) len += big.packs[n++]!.length;
    expectSame(head, Buffer.concat(big.packs.slice(0, n)));
    expect(relay.stats().viewersDropped).toBe(0);
  });

  it("tracks write()/'drain' for sinks without writableLength", async () => {
    const written: Buffer[] = [];
    let drain: (() => void) | undefined;
    let destroyed = false;
    const sink: ViewerSink = {
      write: (c) => {
        written.push(c);
        return false;
      },
      once: (ev, l) => {
        if (ev === "drain") drain = l;
      },
      end: () => undefined,
      destroy: () => {
        destroyed = true;
      },
    };
    const { relay, clock } = setup({ maxViewerBufferBytes: 30_000, drainTimeoutMs: 1000 });
    relay.addViewer(sink, "ps");
    pushAll(relay, Buffer.concat(stream.packs.slice(0, 20)));
    const total = written.reduce((s, c) => s + c.length, 0);
    expect(total).toBeLessThanOrEqual(30_000 + 12_000);
    expect(relay.stats().packsDropped).toBeGreaterThan(0);
    drain?.();
    clock.advance(1000);
    expect(destroyed).toBe(false);
    pushAll(relay, Buffer.concat(stream.packs.slice(20)));
    clock.advance(1000);
    expect(destroyed).toBe(true);
    expect(relay.stats().viewersDropped).toBe(1);
    relay.close();
  });

  it("remuxes to TS only while a TS viewer exists, once for all TS viewers", async () => {
    const { relay } = setup();
    relay.addViewer(new CollectingSink(), "ps");
    pushAll(relay, Buffer.concat(stream.packs.slice(0, 10)));
    expect(relay.stats().tsBytes).toBe(0);
    const t1 = new CollectingSink();
    const t2 = new CollectingSink();
    const h1 = relay.addViewer(t1, "ts");
    relay.addViewer(t2, "ts");
    await settle();
    const joined = relay.stats().tsBytes;
    const joinedBytes = t1.bytes().length;
    pushAll(relay, Buffer.concat(stream.packs.slice(10, 30)));
    await settle();
    const produced = relay.stats().tsBytes;
    expect(produced).toBeGreaterThan(joined);
    // Both got the same TS, starting with PAT (PID 0, payload_unit_start) then PMT.
    expectSame(t1.bytes(), t2.bytes());
    expect([...t1.bytes().subarray(0, 4)]).toEqual([0x47, 0x40, 0x00, t1.bytes()[3]]);
    expect(t1.bytes().length % 188).toBe(0);
    // Live packs are remuxed once for all TS viewers: what the remuxer produced since both
    // joined is what each of them received since.
    expect(produced - joined).toBe(t1.bytes().length - joinedBytes);
    h1.remove();
    expect(t1.destroyed).toBe(true);
    await settle();
    expect(relay.stats().tsViewers).toBe(1);
    t2.destroy();
    await settle();
    expect(relay.stats().tsViewers).toBe(0);
    pushAll(relay, Buffer.concat(stream.packs.slice(30)));
    expect(relay.stats().tsBytes).toBe(produced);
    relay.close();
  });

  it("removes a viewer whose sink closes by itself (the client went away)", async () => {
    const { relay, events } = setup();
    const v = new CollectingSink();
    const reasons: string[] = [];
    relay.addViewer(v, "ps", (r) => reasons.push(r));
    pushAll(relay, Buffer.concat(stream.packs.slice(0, 5)));
    v.destroy();
    await settle();
    expect(reasons).toEqual(["disconnected"]);
    expect(events.counts).toEqual([1, 0]);
    pushAll(relay, Buffer.concat(stream.packs.slice(5, 10)));
    expect(relay.stats().viewers).toBe(0);
  });

  it("ends viewers gracefully at end(), refuses later ones, and close() is idempotent", async () => {
    const { relay, clock } = setup();
    const a = new CollectingSink();
    const reasons: string[] = [];
    relay.addViewer(a, "ts", (r) => reasons.push(r));
    pushAll(relay, stream.ps);
    relay.end();
    relay.end();
    await settle();
    // Ended, not destroyed: everything written was flushed.
    expect(a.writableFinished).toBe(true);
    expect(reasons).toEqual(["ended"]);
    const late = new CollectingSink();
    const lateReasons: string[] = [];
    relay.addViewer(late, "ps", (r) => lateReasons.push(r));
    expect(late.writableEnded).toBe(true);
    expect(lateReasons).toEqual(["ended"]);
    relay.close();
    relay.close();
    expect(clock.pending()).toBe(0);
  });

  it("close() destroys the viewers, clears the drain timers and drops the cache", () => {
    const { relay, clock, events } = setup({ maxViewerBufferBytes: 10_000 });
    const stalled = new StalledSink();
    const fast = new CollectingSink();
    const reasons: string[] = [];
    relay.addViewer(stalled, "ps", (r) => reasons.push(`stalled:${r}`));
    relay.addViewer(fast, "ts", (r) => reasons.push(`fast:${r}`));
    pushAll(relay, Buffer.concat(stream.packs.slice(0, 10)));
    expect(clock.pending()).toBe(1);
    relay.close();
    expect(clock.pending()).toBe(0);
    expect(stalled.destroyed && fast.destroyed).toBe(true);
    expect(reasons.sort()).toEqual(["fast:closed", "stalled:closed"]);
    expect(relay.bufferedBytes()).toBeLessThanOrEqual(stream.packs[9]!.length);
    expect(events.counts.at(-1)).toBe(0);
    relay.push(stream.ps);
    expect(relay.stats().bytesIn).toBe(Buffer.concat(stream.packs.slice(0, 10)).length);
  });

  it("survives callbacks that throw", () => {
    const relay = createRelay({
      onKeyframeWanted: () => {
        throw new Error("boom");
      },
      onViewerCountChange: () => {
        throw new Error("boom");
      },
    });
    const v = new CollectingSink();
    expect(() =>
      relay.addViewer(v, "ps", () => {
        throw new Error("boom");
      }),
    ).not.toThrow();
    expect(() => pushAll(relay, stream.ps)).not.toThrow();
    expect(() => relay.close()).not.toThrow();
  });

  it("relays the de-framer's output of a device push (0x0d chunks and 0x1c fragments) byte for byte", async () => {
    const big = hikPs({ frames: 30, keyEvery: 10, frameBytes: 5000, audioType: 0x90, seed: 12 });
    const framer = createFramer({ ssrc: 1234, maxPayloadBytes: 1400 });
    const wire = Buffer.concat(big.packs.flatMap((p) => framer.frame(p)));
    const deframer = createDeframer({ expectedSsrc: 1234 });
    const { relay } = setup();
    const v = new CollectingSink();
    relay.addViewer(v, "ps");
    for (let at = 0; at < wire.length; at += 1500) {
      for (const ps of deframer.push(wire.subarray(at, at + 1500))) relay.push(ps);
    }
    relay.end();
    await settle();
    expectSame(v.bytes(), big.ps);
    expect(relay.stats().keyframes).toBe(3);
  });
});
