/**
 * Fan-out relay: one device stream (clean MPEG-PS from the de-framer) to many viewers, as raw PS
 * or as MPEG-TS remuxed once per relay (ps-to-ts.ts, only while a TS viewer exists).
 *
 * - Packs, not bytes: the input is cut into whole packs (ps-packs.ts), so a viewer only ever starts
 *   or resumes at a pack boundary, and only at a keyframe pack.
 * - Late viewers: the last GOP (from the last keyframe pack) is kept once, as PS, at most
 *   `maxGopBytes`, and written first, so a viewer joining mid-GOP starts decoding at once. A TS
 *   viewer gets that GOP remuxed when it joins (`remuxForJoin`: PAT/PMT first, continuity
 *   counters meeting the live TS), so no TS copy is cached. A GOP that outgrows `maxGopBytes` is
 *   dropped from the cache (`gopOverflows`); with no keyframe cached the viewer waits for the next
 *   keyframe and the relay calls `onKeyframeWanted` (the manager sends FORCEIFRAME, ehome-2.0 §8),
 *   once per keyframe interval.
 * - Slow viewers: what a viewer's sink has not drained (`writableLength`, or the bytes written
 *   since write() returned false) is capped at `maxViewerBufferBytes`, plus what is still queued
 *   of the GOP written when it joined (that allowance shrinks as the viewer drains it). A pack that
 *   would pass the cap is dropped for that viewer, which then skips to the next keyframe
 *   (`packsDropped`). A viewer that stays over the cap for `drainTimeoutMs` (no 'drain') is
 *   destroyed (`viewersDropped`). So a stalled viewer holds at most `maxViewerBufferBytes` + one
 *   GOP (≤ `maxGopBytes`) + one pack, for at most `drainTimeoutMs` after it falls behind. push()
 *   never waits for a sink, so a slow viewer never delays the device or the other viewers; the
 *   relay's own memory is the splitter's pack plus the GOP cache.
 *
 * One `close()`: destroys the viewers, clears the timers, drops the cache. Callbacks from config
 * run guarded: a throwing listener cannot break the relay.
 */
import {
  createPsPackSplitter,
  type PsPack,
  type PsPackSplitter,
  type PsPackStats,
} from "./ps-packs.ts";
import { createPsToTs, type PsToTs, remuxForJoin } from "./ps-to-ts.ts";

export type RelayFormat = "ps" | "ts";

/**
 * What the relay needs of a viewer's output; a Node `Writable` (an `http.ServerResponse`)
 * satisfies it.
 */
export interface ViewerSink {
  write(chunk: Buffer): boolean;
  once(event: "drain" | "close" | "error", listener: () => void): unknown;
  end(): unknown;
  destroy(): unknown;
  /** Bytes written but not yet flushed; used when present. */
  readonly writableLength?: number;
  readonly destroyed?: boolean;
}

/** Why a viewer left the relay. */
export type ViewerCloseReason =
  /** The device stream ended (`end()`); the sink was ended gracefully. */
  | "ended"
  /** Too slow: over `maxViewerBufferBytes` for `drainTimeoutMs`; the sink was destroyed. */
  | "slow"
  /** The relay was closed; the sink was destroyed. */
  | "closed"
  /** The sink closed or failed by itself (the client went away). */
  | "disconnected"
  /** `RelayViewer.remove()`; the sink was destroyed. */
  | "removed";

export interface RelayConfig {
  /** Cap on the cached GOP (PS bytes, `EHOME_MEDIA_GOP_CACHE_BYTES`). Default 1 MiB. */
  maxGopBytes?: number;
  /**
   * Cap on what one viewer's sink may hold undrained, beyond the GOP it got on joining
   * (`EHOME_MEDIA_VIEWER_BUFFER_BYTES`). Default 256 KiB.
   */
  maxViewerBufferBytes?: number;
  /** A viewer over its cap this long without draining is dropped. Default 10 s. */
  drainTimeoutMs?: number;
  /** Largest pack accepted from the device (ps-packs.ts). Default 4 MiB. */
  maxPackBytes?: number;
  /** A viewer waits for a keyframe: ask the device for one (FORCEIFRAME, ehome-2.0 §8). */
  onKeyframeWanted?: () => void;
  /** The number of viewers changed (the manager's idle timer). */
  onViewerCountChange?: (viewers: number) => void;
}

export interface RelayDeps {
  now?: () => number;
  setTimeout?: (fn: () => void, ms: number) => unknown;
  clearTimeout?: (handle: unknown) => void;
}

export interface RelayStats {
  viewers: number;
  psViewers: number;
  tsViewers: number;
  /** PS bytes pushed by the device. */
  bytesIn: number;
  /** Bytes written to viewers (both formats). */
  bytesOut: number;
  /** Viewers destroyed for being slow. */
  viewersDropped: number;
  /** Packs skipped for viewers over their buffer cap (once per viewer and pack). */
  packsDropped: number;
  /** Keyframe packs seen. */
  keyframes: number;
  /** Bytes held in the GOP cache (PS). */
  gopBytes: number;
  /** GOPs dropped from the cache for outgrowing `maxGopBytes`. */
  gopOverflows: number;
  /** TS bytes produced by the remuxer (live, and GOPs remuxed for joining TS viewers). */
  tsBytes: number;
  splitter: PsPackStats;
}

export interface RelayViewer {
  readonly format: RelayFormat;
  /** Bytes written to this viewer's sink. */
  bytesOut(): number;
  /** Detaches the viewer and destroys its sink. Idempotent. */
  remove(): void;
}

export interface Relay {
  /** Clean PS from the device, any chunking. Never blocks on viewers. */
  push(ps: Uint8Array): void;
  /** The device closed: flushes the last pack and ends every viewer gracefully. Idempotent. */
  end(): void;
  addViewer(
    sink: ViewerSink,
    format: RelayFormat,
    onClose?: (reason: ViewerCloseReason) => void,
  ): RelayViewer;
  stats(): RelayStats;
  /** Splitter buffer + GOP cache: the relay's own memory, viewers' sinks excluded. */
  bufferedBytes(): number;
  /** Destroys the viewers, clears the timers, drops the cache. Idempotent. */
  close(): void;
}

export const RELAY_DEFAULTS = {
  maxGopBytes: 1024 * 1024,
  maxViewerBufferBytes: 256 * 1024,
  drainTimeoutMs: 10_000,
} as const;

interface Viewer {
  sink: ViewerSink;
  format: RelayFormat;
  onClose: ((reason: ViewerCloseReason) => void) | undefined;
  /** Waits for a keyframe pack before writing. */
  waiting: boolean;
  /** Waiting because it fell behind: the packs it misses count as dropped. */
  skipping: boolean;
  /** Bytes written since write() returned false (sinks without `writableLength`). */
  pending: number;
  awaitingDrain: boolean;
  /** Still queued of the GOP written on joining: allowed on top of the cap, shrinks as it drains. */
  burst: number;
  overSince: number | undefined;
  overTimer: unknown;
  bytesOut: number;
  closed: boolean;
}

/** Packs that are small views of a much larger chunk are copied so the cache does not pin it. */
function own(b: Buffer): Buffer {
  return b.buffer.byteLength > 2 * b.length + 4096 ? Buffer.from(b) : b;
}

export function createRelay(config: RelayConfig = {}, deps: RelayDeps = {}): Relay {
  const maxGop = config.maxGopBytes ?? RELAY_DEFAULTS.maxGopBytes;
  const cap = config.maxViewerBufferBytes ?? RELAY_DEFAULTS.maxViewerBufferBytes;
  const drainTimeoutMs = config.drainTimeoutMs ?? RELAY_DEFAULTS.drainTimeoutMs;
  const now = deps.now ?? Date.now;
  const setTimer =
    deps.setTimeout ??
    ((fn: () => void, ms: number) => {
      const t = setTimeout(fn, ms);
      t.unref?.();
      return t;
    });
  const clearTimer =
    deps.clearTimeout ?? ((h: unknown) => clearTimeout(h as ReturnType<typeof setTimeout>));

  const splitter: PsPackSplitter = createPsPackSplitter(
    config.maxPackBytes === undefined ? {} : { maxPackBytes: config.maxPackBytes },
  );
  let remuxer: PsToTs | undefined;
  const viewers = new Set<Viewer>();
  let tsViewers = 0;
  /** The last GOP from its keyframe pack, as PS (bytes owned, not views of device chunks). */
  let gop: PsPack[] = [];
  let gopPs = 0;
  let keyframeWanted = false;
  let ended = false;
  let closed = false;
  const st = {
    bytesIn: 0,
    bytesOut: 0,
    viewersDropped: 0,
    packsDropped: 0,
    keyframes: 0,
    gopOverflows: 0,
    tsBytes: 0,
  };

  const guard = (fn: (() => void) | undefined): void => {
    if (!fn) return;
    try {
      fn();
    } catch {
      // A listener's failure must not break the relay (style: typed events, mediasoup).
    }
  };

  const countChanged = (): void => {
    const n = viewers.size;
    guard(config.onViewerCountChange && (() => config.onViewerCountChange?.(n)));
  };

  const wantKeyframe = (): void => {
    if (keyframeWanted) return;
    keyframeWanted = true;
    guard(config.onKeyframeWanted);
  };

  const clearGop = (): void => {
    gop = [];
    gopPs = 0;
  };

  const buffered = (v: Viewer): number =>
    typeof v.sink.writableLength === "number" ? v.sink.writableLength : v.pending;

  const disarm = (v: Viewer): void => {
    if (v.overTimer !== undefined) clearTimer(v.overTimer);
    v.overTimer = undefined;
    v.overSince = undefined;
  };

  const remove = (v: Viewer, reason: ViewerCloseReason): void => {
    if (v.closed) return;
    v.closed = true;
    disarm(v);
    viewers.delete(v);
    if (v.format === "ts" && --tsViewers === 0) {
      // Nobody wants TS: stop remuxing.
      remuxer = undefined;
    }
    guard(v.onClose && (() => v.onClose?.(reason)));
    countChanged();
  };

  const destroy = (v: Viewer, reason: ViewerCloseReason): void => {
    if (v.closed) return;
    try {
      v.sink.destroy();
    } catch {
      // already torn down
    }
    remove(v, reason);
  };

  const drop = (v: Viewer): void => {
    if (v.closed) return;
    st.viewersDropped++;
    destroy(v, "slow");
  };

  /** The viewer's cap now: the configured one plus what is still queued of its joining GOP. */
  const allowance = (v: Viewer, b: number): number => {
    if (v.burst > 0) v.burst = Math.min(v.burst, Math.max(0, b - cap));
    return cap + v.burst;
  };

  /** Over the cap and not draining: still over when the timer fires → dropped. */
  const stillOver = (v: Viewer): boolean => {
    const b = buffered(v);
    return v.awaitingDrain || b > allowance(v, b);
  };

  const arm = (v: Viewer): void => {
    if (v.overSince === undefined) v.overSince = now();
    if (v.overTimer !== undefined) return;
    v.overTimer = setTimer(() => {
      v.overTimer = undefined;
      if (v.closed) return;
      if (stillOver(v)) drop(v);
      else v.overSince = undefined;
    }, drainTimeoutMs);
  };

  const write = (v: Viewer, data: Buffer): void => {
    if (data.length === 0 || v.closed) return;
    if (v.sink.destroyed === true) {
      remove(v, "disconnected");
      return;
    }
    let ok: boolean;
    try {
      ok = v.sink.write(data);
    } catch {
      destroy(v, "disconnected");
      return;
    }
    st.bytesOut += data.length;
    v.bytesOut += data.length;
    if (v.awaitingDrain) {
      v.pending += data.length;
    } else if (!ok) {
      v.awaitingDrain = true;
      v.pending = data.length;
      v.sink.once("drain", () => {
        v.awaitingDrain = false;
        v.pending = 0;
        // It made progress: the drain timeout starts again if it falls behind again.
        disarm(v);
      });
    }
  };

  const deliver = (v: Viewer, keyframe: boolean, data: Buffer): void => {
    if (v.closed) return;
    if (v.waiting) {
      if (!keyframe) {
        if (v.skipping) st.packsDropped++;
        if (v.overSince !== undefined && now() - v.overSince >= drainTimeoutMs && stillOver(v)) {
          drop(v);
        }
        return;
      }
      v.waiting = false;
      v.skipping = false;
    }
    if (data.length === 0) return;
    const b = buffered(v);
    if (b > 0 && b + data.length > allowance(v, b)) {
      v.waiting = true;
      v.skipping = true;
      st.packsDropped++;
      arm(v);
      if (now() - v.overSince! >= drainTimeoutMs && stillOver(v)) drop(v);
      return;
    }
    disarm(v);
    write(v, data);
  };

  const cache = (pack: PsPack): void => {
    if (pack.keyframe) clearGop();
    else if (gop.length === 0) return;
    if (gopPs + pack.bytes.length > maxGop) {
      // A GOP too long to keep: late viewers wait for the next keyframe (and ask for one).
      st.gopOverflows++;
      clearGop();
      return;
    }
    // Keep the owned copy only, not the view of the device's chunk.
    const ps = own(pack.bytes);
    gop.push(ps === pack.bytes ? pack : { ...pack, bytes: ps });
    gopPs += ps.length;
  };

  const dispatch = (pack: PsPack): void => {
    let ts: Buffer | undefined;
    if (remuxer) {
      ts = remuxer.push(pack);
      st.tsBytes += ts.length;
    }
    if (pack.keyframe) {
      st.keyframes++;
      keyframeWanted = false;
    }
    cache(pack);
    // A snapshot: a viewer added by a callback during this loop already got this pack (GOP).
    for (const v of [...viewers]) deliver(v, pack.keyframe, v.format === "ps" ? pack.bytes : ts!);
  };

  /**
   * The cached GOP as TS for a joining TS viewer. The first TS viewer starts the live remuxer
   * from the cached keyframe (its output is that viewer's GOP); a later one gets the GOP remuxed
   * apart, its continuity counters meeting the live remuxer's.
   */
  const gopAsTs = (): Buffer => {
    let ts: Buffer;
    if (remuxer) {
      ts = gop.length > 0 ? remuxForJoin(gop, remuxer) : Buffer.alloc(0);
    } else {
      const r = createPsToTs();
      remuxer = r;
      ts = Buffer.concat(gop.map((p) => r.push(p)));
    }
    st.tsBytes += ts.length;
    return ts;
  };

  return {
    push(ps) {
      if (ended || closed) return;
      st.bytesIn += ps.byteLength;
      for (const pack of splitter.push(ps)) dispatch(pack);
    },

    end() {
      if (ended || closed) return;
      for (const pack of splitter.end()) dispatch(pack);
      ended = true;
      for (const v of [...viewers]) {
        // A viewer that cannot even take what it has will not take the end either.
        if (v.skipping && stillOver(v)) {
          drop(v);
          continue;
        }
        try {
          v.sink.end();
        } catch {
          // already torn down
        }
        remove(v, "ended");
      }
      clearGop();
    },

    addViewer(sink, format, onClose) {
      const v: Viewer = {
        sink,
        format,
        onClose,
        waiting: false,
        skipping: false,
        pending: 0,
        awaitingDrain: false,
        burst: 0,
        overSince: undefined,
        overTimer: undefined,
        bytesOut: 0,
        closed: false,
      };
      const handle: RelayViewer = {
        format,
        bytesOut: () => v.bytesOut,
        remove: () => destroy(v, "removed"),
      };
      if (closed || ended) {
        v.closed = true;
        try {
          if (closed) sink.destroy();
          else sink.end();
        } catch {
          // already torn down
        }
        guard(onClose && (() => onClose(closed ? "closed" : "ended")));
        return handle;
      }
      viewers.add(v);
      if (format === "ts") tsViewers++;
      sink.once("close", () => remove(v, "disconnected"));
      sink.once("error", () => destroy(v, "disconnected"));
      const first = format === "ts" ? gopAsTs() : undefined;
      if (gop.length > 0) {
        // The joining GOP may pass the cap: it is allowed on top of it while it drains.
        if (first) {
          v.burst = first.length;
          write(v, first);
        } else {
          v.burst = gopPs;
          for (const p of gop) write(v, p.bytes);
        }
      } else {
        v.waiting = true;
        wantKeyframe();
      }
      countChanged();
      return handle;
    },

    stats() {
      return {
        viewers: viewers.size,
        psViewers: viewers.size - tsViewers,
        tsViewers,
        bytesIn: st.bytesIn,
        bytesOut: st.bytesOut,
        viewersDropped: st.viewersDropped,
        packsDropped: st.packsDropped,
        keyframes: st.keyframes,
        gopBytes: gopPs,
        gopOverflows: st.gopOverflows,
        tsBytes: st.tsBytes,
        splitter: splitter.stats(),
      };
    },

    bufferedBytes: () => splitter.bufferedBytes() + gopPs,

    close() {
      if (closed) return;
      closed = true;
      ended = true;
      for (const v of [...viewers]) destroy(v, "closed");
      clearGop();
      remuxer = undefined;
    },
  };
}
