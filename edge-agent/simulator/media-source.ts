import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";

/**
 * The simulator's video source: real H.264 Annex-B elementary streams (test/fixtures/media/, made
 * by scripts/make-media-fixtures.sh) split into access units. A simulated device pushes these
 * frames packed as MPEG-PS (media-ps.ts) for live, playback and download (ehome-2.0 §4.1, §8).
 */

/** NAL unit types this module cares about (ITU-T H.264 table 7-1). */
export const NAL_SLICE = 1;
export const NAL_IDR = 5;
export const NAL_SEI = 6;
export const NAL_SPS = 7;
export const NAL_PPS = 8;
export const NAL_AUD = 9;
export const NAL_FILLER = 12;

/** The two fixtures: `main` for MAIN (and records), `sub` for SUB and THIRD. */
export const FIXTURE_NAMES = ["main", "sub"] as const;
export type FixtureName = (typeof FIXTURE_NAMES)[number];

export interface AccessUnit {
  /** The access unit's bytes as in the elementary stream (start codes included). */
  data: Buffer;
  /** Contains an IDR slice (a GOP starts here). */
  idr: boolean;
  /** NAL unit types in order. */
  nalTypes: number[];
}

export interface MediaFixture {
  name: FixtureName;
  width: number;
  height: number;
  fps: number;
  /** Frames between IDRs. */
  gop: number;
  frames: readonly AccessUnit[];
  /** Indexes of the IDR access units, ascending (the first is 0). */
  idrIndexes: readonly number[];
}

/** What test/fixtures/media/fixtures.json says about a stream (tests assert against it). */
export interface FixtureFacts {
  file: string;
  codec: string;
  profile: string;
  width: number;
  height: number;
  fps: number;
  gop: number;
  frames: number;
  idrFrames: number;
  bytes: number;
}

export const DEFAULT_FIXTURE_DIR = new URL("../../test/fixtures/media/", import.meta.url);

interface Nal {
  /** Offset of the start code (3 or 4 bytes) in the stream. */
  at: number;
  /** Offset of the NAL header byte. */
  header: number;
  type: number;
}

/** Every NAL unit of an Annex-B stream (start codes `00 00 01` / `00 00 00 01`). */
export function annexBNals(es: Uint8Array): Nal[] {
  const out: Nal[] = [];
  const n = es.length;
  for (let i = 0; i + 3 < n; i++) {
    if (es[i] !== 0 || es[i + 1] !== 0) continue;
    let header: number;
    if (es[i + 2] === 1) header = i + 3;
    else if (es[i + 2] === 0 && es[i + 3] === 1) header = i + 4;
    else continue;
    if (header >= n) break;
    const at = i > 0 && es[i - 1] === 0 && header === i + 3 ? i - 1 : i;
    out.push({ at, header, type: es[header]! & 0x1f });
    i = header;
  }
  return out;
}

/** first_mb_in_slice == 0: the ue(v) right after the NAL header starts with a 1 bit. */
function firstSliceOfPicture(es: Uint8Array, header: number): boolean {
  return header + 1 < es.length && (es[header + 1]! & 0x80) !== 0;
}

const isVcl = (type: number) => type === NAL_SLICE || type === NAL_IDR;

/**
 * Splits an Annex-B stream into access units: a new one starts at an AUD, or (for streams without
 * AUDs) at an SEI/SPS/PPS or first slice of a picture that follows a slice (H.264 §7.4.1.2.3).
 */
export function splitAccessUnits(es: Uint8Array): AccessUnit[] {
  const nals = annexBNals(es);
  const buf = Buffer.from(es.buffer, es.byteOffset, es.byteLength);
  const units: AccessUnit[] = [];
  let start = -1;
  let types: number[] = [];
  let hasVcl = false;
  const flush = (end: number) => {
    if (start >= 0 && hasVcl) {
      units.push({
        data: buf.subarray(start, end),
        idr: types.includes(NAL_IDR),
        nalTypes: types,
      });
    }
  };
  for (const nal of nals) {
    const t = nal.type;
    const boundary =
      start < 0 ||
      t === NAL_AUD ||
      (hasVcl && (t === NAL_SEI || t === NAL_SPS || t === NAL_PPS)) ||
      (hasVcl && isVcl(t) && firstSliceOfPicture(es, nal.header));
    if (boundary) {
      flush(nal.at);
      start = nal.at;
      types = [];
      hasVcl = false;
    }
    types.push(t);
    if (isVcl(t)) hasVcl = true;
  }
  flush(es.length);
  return units;
}

/** A directory (path relative to the working directory, or URL) as a URL ending in `/`. */
function dirUrl(dir: URL | string): URL {
  if (typeof dir !== "string") return dir;
  return pathToFileURL(`${resolve(dir)}/`);
}

export function readFixtureFacts(dir: URL | string = DEFAULT_FIXTURE_DIR): {
  source: string;
  streams: Record<FixtureName, FixtureFacts>;
} {
  const base = dirUrl(dir);
  return JSON.parse(readFileSync(new URL("fixtures.json", base), "utf8"));
}

/** Loads and splits one fixture; throws when it disagrees with fixtures.json. */
export function loadFixture(
  name: FixtureName,
  dir: URL | string = DEFAULT_FIXTURE_DIR,
): MediaFixture {
  const base = dirUrl(dir);
  const facts = readFixtureFacts(base).streams[name];
  const frames = splitAccessUnits(readFileSync(new URL(facts.file, base)));
  const idrIndexes = frames.flatMap((f, i) => (f.idr ? [i] : []));
  if (frames.length !== facts.frames || idrIndexes[0] !== 0) {
    throw new Error(
      `fixture ${name}: ${frames.length} access units (first IDR at ${idrIndexes[0]}), fixtures.json says ${facts.frames}`,
    );
  }
  return {
    name,
    width: facts.width,
    height: facts.height,
    fps: facts.fps,
    gop: facts.gop,
    frames,
    idrIndexes,
  };
}

/**
 * The fixture at (at least) `kbps`: every access unit smaller than the per-frame share of that
 * bitrate gets a filler-data NAL unit (type 12: `0xFF`s, then the RBSP stop bit) after its slices
 * (H.264 §7.4.1.2.3), which decoders skip. Makes benchmark-sized streams from the small fixtures.
 */
export function padFixture(fixture: MediaFixture, kbps: number): MediaFixture {
  const target = Math.round((kbps * 1000) / 8 / fixture.fps);
  // Start code (4) + NAL header (1) + at least one 0xFF + the stop-bit byte.
  const overhead = 6;
  const frames = fixture.frames.map((au) => {
    const missing = target - au.data.length;
    if (missing < overhead + 1) return au;
    const filler = Buffer.alloc(missing, 0xff);
    filler.set([0, 0, 0, 1, NAL_FILLER], 0);
    filler[missing - 1] = 0x80;
    return {
      data: Buffer.concat([au.data, filler]),
      idr: au.idr,
      nalTypes: [...au.nalTypes, NAL_FILLER],
    };
  });
  return { ...fixture, frames };
}

/** Loads each fixture once, on first use (one per simulator; not module state). */
export function createFixtureCache(
  dir: URL | string = DEFAULT_FIXTURE_DIR,
  kbps = 0,
): (name: FixtureName) => MediaFixture {
  const loaded = new Map<FixtureName, MediaFixture>();
  return (name) => {
    let f = loaded.get(name);
    if (!f) {
      f = loadFixture(name, dir);
      if (kbps > 0) f = padFixture(f, kbps);
      loaded.set(name, f);
    }
    return f;
  };
}
