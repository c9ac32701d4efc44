import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { scanPs } from "../../../edge-agent/media/ps.ts";
import {
  BASE_PTS,
  buildPs,
  crc32Mpeg2,
  packSizes,
  packStuffing,
} from "../../../edge-agent/simulator/media-ps.ts";
import {
  DEFAULT_FIXTURE_DIR,
  FIXTURE_NAMES,
  loadFixture,
  NAL_AUD,
  NAL_FILLER,
  NAL_IDR,
  NAL_PPS,
  NAL_SPS,
  padFixture,
  readFixtureFacts,
  splitAccessUnits,
} from "../../../edge-agent/simulator/media-source.ts";
import {
  createRecordStore,
  RECORD_PERIOD_MS,
  recordLine,
} from "../../../edge-agent/simulator/records.ts";
import { hasSystemHeader, packPts, packs } from "./media-sink.ts";

const facts = readFixtureFacts().streams;
const tmp = mkdtempSync(join(tmpdir(), "sim-media-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** ffprobe's view of a file: codec, size, frames it decodes. */
function probe(path: string, format?: string) {
  const out = execFileSync(
    "ffprobe",
    [
      "-v",
      "error",
      ...(format ? ["-f", format] : []),
      "-count_frames",
      "-select_streams",
      "v:0",
      "-show_entries",
      "stream=codec_name,width,height,nb_read_frames",
      "-of",
      "json",
      path,
    ],
    { encoding: "utf8" },
  );
  return JSON.parse(out).streams[0] as {
    codec_name: string;
    width: number;
    height: number;
    nb_read_frames: string;
  };
}

/** What ffmpeg reports decoding a file in full ("" = no error). */
function decodeErrors(path: string): string {
  const r = spawnSync("ffmpeg", ["-v", "error", "-i", path, "-f", "null", "-"], {
    encoding: "utf8",
  });
  return r.status === 0 ? r.stderr : `exit ${r.status}: ${r.stderr}`;
}

describe("H.264 fixtures (scripts/make-media-fixtures.sh)", () => {
  it.each(FIXTURE_NAMES)("%s splits into the access units fixtures.json records", (name) => {
    const f = loadFixture(name);
    const want = facts[name];
    expect(f.frames).toHaveLength(want.frames);
    expect(f.idrIndexes).toHaveLength(want.idrFrames);
    // GOP 25, no scene-cut IDRs: an IDR every `gop` frames.
    expect(f.idrIndexes).toEqual(Array.from({ length: want.idrFrames }, (_, i) => i * want.gop));
    for (const au of f.frames) {
      expect(au.nalTypes[0]).toBe(NAL_AUD);
      // SPS/PPS repeated before every IDR, so a stream joined at any GOP decodes.
      if (au.idr) expect(au.nalTypes).toEqual(expect.arrayContaining([NAL_SPS, NAL_PPS, NAL_IDR]));
    }
    const bytes = readFileSync(new URL(want.file, DEFAULT_FIXTURE_DIR));
    expect(bytes.length).toBe(want.bytes);
    expect(Buffer.concat(f.frames.map((a) => a.data)).equals(bytes)).toBe(true);
  });

  it.each(FIXTURE_NAMES)("ffprobe agrees with fixtures.json about %s", (name) => {
    const want = facts[name];
    const path = fileURLToPath(new URL(want.file, DEFAULT_FIXTURE_DIR));
    const got = probe(path);
    expect(got.codec_name).toBe(want.codec);
    expect([got.width, got.height]).toEqual([want.width, want.height]);
    expect(Number(got.nb_read_frames)).toBe(want.frames);
  });

  it("splits a stream without AUDs at the first slice of each picture", () => {
    const f = loadFixture("sub");
    // Strip the AUD NAL (00 00 00 01 09 xx) from every access unit.
    const noAud = Buffer.concat(f.frames.map((a) => a.data.subarray(6)));
    expect(f.frames[1]!.data.subarray(0, 5)).toEqual(Buffer.from([0, 0, 0, 1, 0x09]));
    const units = splitAccessUnits(noAud);
    expect(units).toHaveLength(f.frames.length);
    expect(units.filter((u) => u.idr)).toHaveLength(f.idrIndexes.length);
  });
});

describe("PS packetiser (ehome-2.0 §4.1 item 4)", () => {
  const main = loadFixture("main");

  it("one pack per frame, system header + PSM before each IDR, PES 0xE0 with a 90 kHz PTS", () => {
    const ps = buildPs(main, { frames: 80 });
    const scan = scanPs(ps);
    expect(scan.error).toBeUndefined();
    expect(scan.packs).toBe(80);
    expect(scan.systemHeaders).toBe(4); // frames 0, 25, 50, 75 (the loop restarts at 75)
    expect(scan.video).toBe(80);
    expect(scan.audio).toBe(0);
    const p = packs(ps);
    expect(p).toHaveLength(80);
    p.forEach((pack, i) => {
      expect(hasSystemHeader(pack), `pack ${i}`).toBe(i % 25 === 0);
      expect(packPts(pack)).toBe(BASE_PTS + i * 3600);
      // Stuffing: 6 bytes, `ff ff` + a pack counter, so not all 0xFF (like the capture).
      expect(pack[13]! & 0x07).toBe(6);
      expect(pack.subarray(14, 20)).toEqual(Buffer.from([0xff, 0xff, 0, 0x7d, 0x49, 0x09 + i]));
    });
    // packSizes: the size of every fixture frame's pack, whatever its position and counter.
    const sizes = packSizes(main);
    expect(p.map((pack) => pack.length)).toEqual(p.map((_, i) => sizes[i % sizes.length]));
  });

  it("pack stuffing never reads as a start code (00 00 01)", () => {
    for (const n of [0, 1, 0x82b6f7, 0xff82b6f7, 0xff82b6f8]) {
      const s = packStuffing(n);
      expect(s.subarray(0, 2)).toEqual(Buffer.from([0xff, 0xff]));
      expect(Buffer.concat([s, Buffer.from([0, 0, 1])]).indexOf(Buffer.from([0, 0, 1]))).toBe(6);
    }
  });

  it("the program stream map declares H.264 (0x1B) and carries a valid CRC-32", () => {
    const first = packs(buildPs(main, { frames: 1, audio: true }))[0]!;
    const psm = first.indexOf(Buffer.from([0, 0, 1, 0xbc]));
    expect(psm).toBeGreaterThan(0);
    const len = first.readUInt16BE(psm + 4);
    const body = first.subarray(psm, psm + 6 + len);
    expect(crc32Mpeg2(body.subarray(0, body.length - 4))).toBe(body.readUInt32BE(body.length - 4));
    // Elementary stream map: H.264 video 0xE0, G.711 (Hikvision 0x90) audio 0xC0.
    expect([...body.subarray(12, 20)]).toEqual([0x1b, 0xe0, 0, 0, 0x90, 0xc0, 0, 0]);
    expect(scanPs(buildPs(main, { frames: 3, audio: true })).audio).toBe(3);
  });

  it("splits a frame larger than maxPesPayload over several PES packets, the PTS on the first", () => {
    const ps = buildPs(main, { frames: 2, maxPesPayload: 1000 });
    const scan = scanPs(ps);
    expect(scan.error).toBeUndefined();
    const expected = main.frames
      .slice(0, 2)
      .reduce((n, au) => n + Math.ceil(au.data.length / 1000), 0);
    expect(scan.video).toBe(expected);
    // The ES comes back whole: PES payloads in order.
    const es: Buffer[] = [];
    for (let i = 0; i + 9 < ps.length; ) {
      if (ps.readUInt32BE(i) === 0x1e0) {
        const len = ps.readUInt16BE(i + 4);
        es.push(ps.subarray(i + 9 + ps[i + 8]!, i + 6 + len));
        i += 6 + len;
      } else i++;
    }
    expect(
      Buffer.concat(es).equals(Buffer.concat(main.frames.slice(0, 2).map((a) => a.data))),
    ).toBe(true);
  });

  it("ffprobe decodes the PS: h264 at the fixture's size, every frame", () => {
    for (const name of FIXTURE_NAMES) {
      const f = loadFixture(name);
      const path = join(tmp, `${name}.ps`);
      writeFileSync(path, buildPs(f, { frames: 100 }));
      const got = probe(path, "mpeg");
      expect(got.codec_name).toBe("h264");
      expect([got.width, got.height]).toEqual([f.width, f.height]);
      expect(Number(got.nb_read_frames)).toBe(100);
      expect(decodeErrors(path)).toBe("");
    }
    // With G.711 packs interleaved the video still comes out whole (the audio ffmpeg misreads).
    const path = join(tmp, "audio.ps");
    writeFileSync(path, buildPs(loadFixture("sub"), { frames: 100, audio: true }));
    expect(Number(probe(path, "mpeg").nb_read_frames)).toBe(100);
  });
});

describe("benchmark bitrate (mediaBitrateKbps)", () => {
  it("pads frames with filler NAL units up to the bitrate; the stream still decodes cleanly", () => {
    const main = loadFixture("main");
    const padded = padFixture(main, 4000); // 20,000 bytes a frame at 25 fps
    for (const [i, au] of padded.frames.entries()) {
      expect(au.data.length).toBe(Math.max(20_000, main.frames[i]!.data.length));
      expect(au.data.subarray(0, main.frames[i]!.data.length)).toEqual(main.frames[i]!.data);
      expect(au.nalTypes.at(-1)).toBe(NAL_FILLER);
    }
    expect(splitAccessUnits(Buffer.concat(padded.frames.map((a) => a.data)))).toHaveLength(75);
    const path = join(tmp, "padded.ps");
    writeFileSync(path, buildPs(padded, { frames: 75 }));
    const got = probe(path, "mpeg");
    expect([got.codec_name, got.width, Number(got.nb_read_frames)]).toEqual(["h264", 640, 75]);
    expect(decodeErrors(path)).toBe("");
  });
});

describe("record files (ehome-2.0 §2.5)", () => {
  const main = loadFixture("main");
  const store = createRecordStore(main, { recordSeconds: 4, audio: false });
  const day = Date.UTC(2024, 4, 1);

  it("one file per channel per hour, its size the bytes DOWNLOAD pushes", () => {
    const r = store.record(2, day + 5 * RECORD_PERIOD_MS);
    expect(r.fileName).toMatch(/^ch0002_\d{17}$/);
    expect(recordLine(r)).toBe(
      `${r.fileName} 2024-05-01 05:00:00 2024-05-01 05:00:04 ${r.sizeBytes} 0`,
    );
    expect(r.frames).toBe(100);
    expect(store.ps(r).length).toBe(r.sizeBytes);
    expect(store.ps(r).equals(buildPs(main, { frames: 100 }))).toBe(true);
    expect(store.byName(r.fileName, 4)).toEqual(r);
    expect(store.byName(r.fileName, 1)).toBeUndefined();
    expect(store.byName("ch0001_123", 1)).toBeUndefined();
  });

  it("lists the files overlapping a range, paged by StartIdx and ChunkSize", () => {
    // 00:00:02 is inside the 00:00 file; 00:00:05 would not be (it ends at 00:00:04).
    const all = store.list(1, day + 2000, day + 10 * RECORD_PERIOD_MS, 0, 100);
    expect(all.map((r) => r.startMs)).toEqual(
      Array.from({ length: 11 }, (_, i) => day + i * RECORD_PERIOD_MS),
    );
    expect(store.list(1, day + 5000, day + 10 * RECORD_PERIOD_MS, 0, 100)).toHaveLength(10);
    expect(store.list(1, day, day + 10 * RECORD_PERIOD_MS, 9, 8).map((r) => r.startMs)).toEqual([
      day + 9 * RECORD_PERIOD_MS,
      day + 10 * RECORD_PERIOD_MS,
    ]);
  });

  it("a time range plays from the IDR at or before its start, across files", () => {
    const plan = store.planForRange(1, day + 1500, day + RECORD_PERIOD_MS + 1000)!;
    // File 00:00: frames 25 (the IDR before 1.5 s = frame 37) to 100; file 01:00: frames 0 to 25.
    expect(plan.length).toBe(75 + 25);
    expect(plan.recFrame[0]).toBe(25);
    expect(plan.recStart[74]).toBe(day);
    expect(plan.recStart[75]).toBe(day + RECORD_PERIOD_MS);
    expect(plan.gopStarts).toEqual([0, 25, 50, 75]);
    expect(store.planForRange(1, day + 5000, day + 6000)).toBeUndefined();
  });
});
