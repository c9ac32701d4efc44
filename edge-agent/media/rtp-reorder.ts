/**
 * Reorder buffer for RTP over UDP (ehome-2.0 §8, the paragraph after the table: with `LinkMode`
 * `UDP` "the receiver reorders by RTP sequence within a small window and counts loss").
 *
 * Packets are released in sequence order. A missing sequence number is waited for while the
 * packets held behind it are fewer than `window` and the oldest of them is younger than
 * `maxDelayMs`; then it is given up as lost and the next held packet released. Sequence numbers
 * wrap at 65536 (compared modulo 2^16, RFC 3550 §A.1). A packet behind the release point is a
 * duplicate (it was released) or late (it was given up) and is dropped; a packet far away from
 * the release point (more than `resetDistance` either way) means the sender restarted its
 * sequence: what is held is released and the buffer follows the new sequence (`resets`).
 *
 * Pure: no sockets or timers; the caller passes the time and calls `expire(now)` at
 * `deadline()` (udp-media.ts does).
 */

export interface ReorderConfig {
  /** Packets held at most while waiting for a missing one. Default 64. */
  window?: number;
  /** How long the oldest held packet waits for the ones before it. Default 200 ms. */
  maxDelayMs?: number;
  /** A sequence jump beyond this (either way) restarts the buffer. Default 3000. */
  resetDistance?: number;
}

export interface Released<T> {
  seq: number;
  packet: T;
  /** Sequence numbers given up just before this packet (0 when it follows the last one). */
  lostBefore: number;
}

export interface ReorderStats {
  /** Packets pushed. */
  received: number;
  released: number;
  /** Sequence numbers given up. */
  lost: number;
  /** Packets that arrived after a later one and filled the gap it waited behind. */
  reordered: number;
  duplicates: number;
  /** Packets that arrived after their sequence number was given up. */
  late: number;
  /** Times the window was full and a gap was given up at once. */
  overflows: number;
  resets: number;
  /** Packets held now. */
  held: number;
}

export interface ReorderBuffer<T> {
  push(seq: number, packet: T, now: number): Array<Released<T>>;
  /** Releases what waited `maxDelayMs` (giving up the gaps before it). */
  expire(now: number): Array<Released<T>>;
  /** When `expire` has something to do; undefined when nothing is held. */
  deadline(): number | undefined;
  /** Releases everything held, in order (the stream ended). */
  flush(): Array<Released<T>>;
  stats(): ReorderStats;
}

const SEQ_MOD = 0x10000;
/** Past sequence numbers remembered to tell a duplicate from a late packet. */
const HISTORY = 1024;

/** `a - b` modulo 2^16 as a signed distance in [-32768, 32767]. */
export function seqDistance(a: number, b: number): number {
  const d = (((a - b) % SEQ_MOD) + SEQ_MOD) % SEQ_MOD;
  return d >= SEQ_MOD / 2 ? d - SEQ_MOD : d;
}

export function createReorderBuffer<T>(config: ReorderConfig = {}): ReorderBuffer<T> {
  const window = Math.max(1, config.window ?? 64);
  const maxDelayMs = Math.max(1, config.maxDelayMs ?? 200);
  const resetDistance = config.resetDistance ?? 3000;
  const held = new Map<number, { packet: T; at: number }>();
  /** Sequence numbers released recently (slot = seq % HISTORY holds seq, or -1). */
  const history = new Int32Array(HISTORY).fill(-1);
  /** The next sequence number to release; undefined before the first packet. */
  let next: number | undefined;
  /** Arrival of the oldest packet held (the wait for the gap before it started then). */
  let waitingSince: number | undefined;
  let pendingLost = 0;
  const s = {
    received: 0,
    released: 0,
    lost: 0,
    reordered: 0,
    duplicates: 0,
    late: 0,
    overflows: 0,
    resets: 0,
  };

  const release = (out: Array<Released<T>>, seq: number, packet: T) => {
    out.push({ seq, packet, lostBefore: pendingLost });
    pendingLost = 0;
    history[seq % HISTORY] = seq;
    s.released++;
  };

  /** Releases the run of held packets starting at `next`. */
  const drain = (out: Array<Released<T>>, now: number) => {
    while (next !== undefined) {
      const h = held.get(next);
      if (!h) break;
      held.delete(next);
      release(out, next, h.packet);
      next = (next + 1) % SEQ_MOD;
    }
    if (held.size === 0) waitingSince = undefined;
    else if (waitingSince === undefined) waitingSince = now;
  };

  /** Gives up the gap at `next`: jumps to the lowest held sequence number. */
  const skipGap = (out: Array<Released<T>>, now: number) => {
    if (next === undefined || held.size === 0) return;
    let best = Number.POSITIVE_INFINITY;
    for (const seq of held.keys()) best = Math.min(best, (seq - next + SEQ_MOD) % SEQ_MOD);
    s.lost += best;
    pendingLost += best;
    next = (next + best) % SEQ_MOD;
    waitingSince = undefined;
    drain(out, now);
    // The packets still held waited behind the gap just given up; their own wait starts now.
    if (held.size > 0) waitingSince = now;
  };

  const flushAll = (out: Array<Released<T>>) => {
    while (held.size > 0) skipGap(out, 0);
    waitingSince = undefined;
  };

  return {
    push(seq, packet, now) {
      const out: Array<Released<T>> = [];
      seq = ((seq % SEQ_MOD) + SEQ_MOD) % SEQ_MOD;
      s.received++;
      if (next === undefined) next = seq;
      let d = seqDistance(seq, next);
      if (d < -resetDistance || d > resetDistance) {
        flushAll(out);
        s.resets++;
        pendingLost = 0;
        next = seq;
        d = 0;
      }
      if (d < 0) {
        if (history[seq % HISTORY] === seq) s.duplicates++;
        else s.late++;
        return out;
      }
      if (held.has(seq)) {
        s.duplicates++;
        return out;
      }
      if (d === 0 && held.size > 0) s.reordered++;
      held.set(seq, { packet, at: now });
      if (d === 0) {
        drain(out, now);
      } else if (waitingSince === undefined) {
        waitingSince = now;
      }
      // Full window: the oldest gaps are given up until it fits.
      while (held.size > window) {
        s.overflows++;
        skipGap(out, now);
      }
      if (waitingSince !== undefined && now - waitingSince >= maxDelayMs) skipGap(out, now);
      return out;
    },
    expire(now) {
      const out: Array<Released<T>> = [];
      while (waitingSince !== undefined && now - waitingSince >= maxDelayMs) skipGap(out, now);
      return out;
    },
    deadline: () => (waitingSince === undefined ? undefined : waitingSince + maxDelayMs),
    flush() {
      const out: Array<Released<T>> = [];
      flushAll(out);
      return out;
    },
    stats: () => ({ ...s, held: held.size }),
  };
}
