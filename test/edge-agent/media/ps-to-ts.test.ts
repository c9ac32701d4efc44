import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { packHeader, pesPacket } from "../../../edge-agent/media/ps.ts";
import { createPsPackSplitter, type PsPack } from "../../../edge-agent/media/ps-packs.ts";
import {
  AUDIO_PID,
  crc32Mpeg,
  createPsToTs,
  PMT_PID,
  TS_PACKET,
  VIDEO_PID,
} from "../../../edge-agent/media/ps-to-ts.ts";
import { seededRandom } from "../../../edge-agent/simulator/random.ts";
import { type MediaDir, mediaDir } from "./helpers/ffprobe.ts";
import {
  accessUnit,
  h264AccessUnits,
  h265AccessUnits,
  hikPs,
  psFromUnits,
  psm,
} from "./helpers/ps-fixtures.ts";

interface TsPacket {
  pid: number;
  pusi: boolean;
  cc: number;
  hasPayload: boolean;
  pcr: number | undefined;
  randomAccess: boolean;
  payload: Buffer;
}

function parseTs(ts: Buffer): TsPacket[] {
  expect(ts.length % TS_PACKET).toBe(0);
  const out: TsPacket[] = [];
  for (let o = 0; o < ts.length; o += TS_PACKET) {
    const p = ts.subarray(o, o + TS_PACKET);
    expect(p[0]).toBe(0x47);
    const afc = (p[3]! >> 4) & 3;
    let payloadAt = 4;
    let pcr: number | undefined;
    let randomAccess = false;
    if (afc & 2) {
      const len = p[4]!;
      if (len > 0) {
        randomAccess = (p[5]! & 0x40) !== 0;
        if (p[5]! & 0x10) pcr = p.readUInt32BE(6) * 2 + (p[10]! >> 7);
      }
      payloadAt = 5 + len;
    }
    out.push({
      pid: ((p[1]! & 0x1f) << 8) | p[2]!,
      pusi: (p[1]! & 0x40) !== 0,
      cc: p[3]! & 0x0f,
      hasPayload: (afc & 1) !== 0,
      pcr,
      randomAccess,
      payload: p.subarray(payloadAt),
    });
  }
  return out;
}

function expectContinuity(packets: TsPacket[]): void {
  const last = new Map<number, number>();
  for (const p of packets) {
    const prev = last.get(p.pid);
    if (prev !== undefined) expect(p.cc).toBe((prev + 1) & 0x0f);
    last.set(p.pid, p.cc);
  }
}

/** The PSI section a PAT/PMT packet carries, with its CRC checked. */
function section(p: TsPacket): Buffer {
  expect(p.pusi).toBe(true);
  const s = p.payload.subarray(1 + p.payload[0]!);
  const len = 3 + (s.readUInt16BE(1) & 0x0fff);
  expect(crc32Mpeg(s, 0, len)).toBe(0);
  return s.subarray(0, len);
}

function pmtStreams(p: TsPacket): { type: number; pid: number }[] {
  const s = section(p);
  const streams: { type: number; pid: number }[] = [];
  for (let o = 12; o + 5 <= s.length - 4; o += 5 + (s.readUInt16BE(o + 3) & 0x0fff)) {
    streams.push({ type: s[o]!, pid: s.readUInt16BE(o + 1) & 0x1fff });
  }
  return streams;
}

function remux(ps: Buffer, chunk = 1400, from = 0): { ts: Buffer; packs: PsPack[] } {
  const splitter = createPsPackSplitter();
  const packs: PsPack[] = [];
  for (let at = 0; at < ps.length; at += chunk)
    packs.push(...splitter.push(ps.subarray(at, at + chunk)));
  packs.push(...splitter.end());
  const remuxer = createPsToTs();
  const ts = Buffer.concat(packs.slice(from).map((p) => remuxer.push(p)));
  return { ts, packs };
}

function adtsFrames(aac: Buffer): Buffer[] {
  const frames: Buffer[] = [];
  for (let o = 0; o + 7 <= aac.length; ) {
    expect(aac.readUInt16BE(o) & 0xfff0).toBe(0xfff0);
    const len = ((aac[o + 3]! & 3) << 11) | (aac[o + 4]! << 3) | (aac[o + 5]! >> 5);
    frames.push(aac.subarray(o, o + len));
    o += len;
  }
  return frames;
}

describe("PS → TS remux (ISO/IEC 13818-1), hand-built streams", () => {
  it("starts with PAT and PMT (program 1, PMT PID 0x1000, H.264 on 0x100) and keeps CCs per PID", () => {
    const stream = hikPs({ frames: 30, keyEvery: 25, frameBytes: 500 });
    const packets = parseTs(remux(stream.ps).ts);
    expect(packets[0]!.pid).toBe(0);
    const pat = section(packets[0]!);
    expect(pat[0]).toBe(0x00);
    expect(pat.readUInt16BE(8)).toBe(1); // program_number
    expect(pat.readUInt16BE(10) & 0x1fff).toBe(PMT_PID);
    expect(packets[1]!.pid).toBe(PMT_PID);
    expect(pmtStreams(packets[1]!)).toEqual([{ type: 0x1b, pid: VIDEO_PID }]);
    expect(section(packets[1]!).readUInt16BE(8) & 0x1fff).toBe(VIDEO_PID); // PCR_PID
    expectContinuity(packets);
    // Keyframes start with a random-access video packet carrying a PCR.
    const firstVideo = packets.find((p) => p.pid === VIDEO_PID)!;
    expect(firstVideo).toMatchObject({ pusi: true, randomAccess: true });
    expect(firstVideo.pcr).toBe(90_000 - 3600); // PCR base = the pack's SCR
  });

  it("repeats PAT/PMT before every keyframe and at least every 100 ms of PTS", () => {
    const stream = hikPs({ frames: 60, keyEvery: 20, frameBytes: 300 });
    const packets = parseTs(remux(stream.ps).ts);
    // PSI positions in frame units: a video PES start follows each.
    let frame = -1;
    const psiFrames: number[] = [];
    for (const p of packets) {
      if (p.pid === VIDEO_PID && p.pusi) frame++;
      if (p.pid === 0) psiFrames.push(frame + 1);
    }
    for (const key of [0, 20, 40]) expect(psiFrames).toContain(key);
    // 40 ms per frame: never more than 3 frames (120 ms ≥ 100 ms) without PAT/PMT.
    for (let k = 1; k < psiFrames.length; k++) {
      expect(psiFrames[k]! - psiFrames[k - 1]!).toBeLessThanOrEqual(3);
    }
    // Audio packs whose SCR is a little behind the last video PTS do not bring extra PAT/PMT.
    const withAudio = hikPs({ frames: 60, keyEvery: 20, frameBytes: 300, audioType: 0x0f });
    const psi = parseTs(remux(withAudio.ps).ts).filter((p) => p.pid === 0).length;
    expect(psi).toBe(psiFrames.length);
  });

  it("keeps one TS PES per frame when a large frame spans several PS PES packets", () => {
    const random = seededRandom(5);
    const big = accessUnit(random, "h264", true, 150_000);
    const small = accessUnit(random, "h264", false, 100);
    const stream = psFromUnits([big, small], { keyframes: [true, false] });
    const { ts, packs } = remux(stream.ps);
    expect(packs[0]!.pes.length).toBe(3); // 65 000 + 65 000 + rest
    const packets = parseTs(ts);
    const video = packets.filter((p) => p.pid === VIDEO_PID);
    expect(video.filter((p) => p.pusi).length).toBe(2);
    // Reassemble the first PES: header (9 + 5) then exactly the access unit.
    const second = video.findIndex((p, k) => k > 0 && p.pusi);
    const pes = Buffer.concat(video.slice(0, second).map((p) => p.payload));
    expect(pes.readUInt16BE(4)).toBe(0); // unbounded, allowed for video in TS
    expect(pes.subarray(14)).toEqual(big);
  });

  it("announces AAC audio on PID 0x101 and drops G.711 (0x90) instead of announcing it", () => {
    const aac = hikPs({ frames: 6, keyEvery: 25, frameBytes: 200, audioType: 0x0f });
    const withAac = parseTs(remux(aac.ps).ts);
    expect(pmtStreams(withAac[1]!)).toEqual([
      { type: 0x1b, pid: VIDEO_PID },
      { type: 0x0f, pid: AUDIO_PID },
    ]);
    expect(withAac.filter((p) => p.pid === AUDIO_PID && p.pusi).length).toBe(3);

    const g711 = hikPs({ frames: 6, keyEvery: 25, frameBytes: 200, audioType: 0x90 });
    const splitter = createPsPackSplitter();
    const remuxer = createPsToTs();
    const packets = parseTs(
      Buffer.concat(
        splitter
          .push(g711.ps)
          .concat(splitter.end())
          .map((p) => remuxer.push(p)),
      ),
    );
    expect(pmtStreams(packets[1]!)).toEqual([{ type: 0x1b, pid: VIDEO_PID }]);
    expect(packets.some((p) => p.pid === AUDIO_PID)).toBe(false);
    expect(remuxer.stats().pesDropped).toBe(3);
  });

  it("declares H.265 as stream_type 0x24 and bumps the PMT version when the PSM changes", () => {
    const h265 = hikPs({ frames: 3, keyEvery: 2, codec: "h265", frameBytes: 100 });
    const packets = parseTs(remux(h265.ps).ts);
    expect(pmtStreams(packets[1]!)).toEqual([{ type: 0x24, pid: VIDEO_PID }]);

    const au = accessUnit(seededRandom(1), "h264", true, 50);
    const ps = Buffer.concat([
      packHeader(0),
      psm([{ type: 0x1b, id: 0xe0 }]),
      pesPacket(0xe0, au, 3600),
      packHeader(3600),
      psm(
        [
          { type: 0x1b, id: 0xe0 },
          { type: 0x0f, id: 0xc0 },
        ],
        1,
      ),
      pesPacket(0xe0, au, 7200),
    ]);
    const pmts = parseTs(remux(ps).ts).filter((p) => p.pid === PMT_PID);
    const versions = pmts.map((p) => (section(p)[5]! >> 1) & 0x1f);
    expect(versions).toEqual([0, 1]);
    expect(pmtStreams(pmts[1]!).length).toBe(2);
  });

  it("never throws on packs cut by garbage and always outputs whole TS packets", () => {
    const stream = hikPs({ frames: 10, keyEvery: 4, frameBytes: 400, audioType: 0x0f });
    const random = seededRandom(11);
    for (let run = 0; run < 200; run++) {
      const b = Buffer.from(stream.ps);
      for (let n = 0; n < 20; n++) b[Math.floor(random() * b.length)] = Math.floor(random() * 256);
      const { ts } = remux(b, 1 + Math.floor(random() * 3000));
      expect(ts.length % TS_PACKET).toBe(0);
    }
  });
});

describe("PS → TS remux validated by ffprobe", () => {
  let dir: MediaDir;
  let es: Buffer;
  let aac: Buffer;
  let vob: Buffer;
  let hevc: Buffer;

  beforeAll(async () => {
    dir = await mediaDir();
    const video = ["-f", "lavfi", "-i", "testsrc=size=640x360:rate=25", "-t", "2"];
    const x264 = ["-c:v", "libx264", "-g", "25", "-bf", "0"];
    [es, aac, hevc] = await Promise.all([
      dir.ffmpeg([...video, ...x264, "-f", "h264"], "in.h264"),
      dir.ffmpeg(
        [
          ...["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "2"],
          ...["-c:a", "aac", "-f", "adts"],
        ],
        "in.aac",
      ),
      dir.ffmpeg(
        [
          ...video,
          ...["-c:v", "libx265", "-preset", "ultrafast", "-x265-params"],
          "keyint=25:min-keyint=25:bframes=0:log-level=error",
          ...["-f", "hevc"],
        ],
        "in.hevc",
      ),
    ]);
    // ffmpeg's own MPEG-2 PS of the same H.264 (stream copy, no second encode).
    vob = await dir.ffmpeg(
      ["-framerate", "25", "-f", "h264", "-i", `${dir.path}/in.h264`, "-c", "copy", "-f", "vob"],
      "in.vob",
    );
  }, 60_000);

  afterAll(async () => {
    await dir?.remove();
  });

  it("remuxes a Hikvision-shaped PS of a real H.264 stream: h264 640x360, every frame, no errors", async () => {
    const { units, keyframes } = h264AccessUnits(es);
    expect(units.length).toBe(50);
    const ps = psFromUnits(units, { keyframes }).ps;
    const probe = await dir.probe(remux(ps, 977).ts, "hik.ts");
    expect(probe.errors).toBe("");
    expect(probe.streams.length).toBe(1);
    expect(probe.streams[0]).toMatchObject({ codec_name: "h264", width: 640, height: 360 });
    expect(Number(probe.streams[0]!.nb_read_frames)).toBe(50);
  });

  it("remuxes H.264 with AAC audio into two streams ffprobe decodes", async () => {
    const { units, keyframes } = h264AccessUnits(es);
    const frames = adtsFrames(aac);
    // Audio goes with odd video frames: share the ADTS frames out over those 25 slots.
    const perSlot = Math.ceil(frames.length / 25);
    const audioFrames = units.map((_, f) =>
      Buffer.concat(frames.slice(((f - 1) / 2) * perSlot, ((f + 1) / 2) * perSlot)),
    );
    const ps = psFromUnits(units, { keyframes, audio: { type: 0x0f, frames: audioFrames } }).ps;
    const probe = await dir.probe(remux(ps).ts, "aac.ts");
    expect(probe.errors).toBe("");
    const byType = Object.fromEntries(probe.streams.map((s) => [s.codec_type, s]));
    expect(byType.video).toMatchObject({ codec_name: "h264", width: 640, height: 360 });
    expect(Number(byType.video!.nb_read_frames)).toBe(50);
    expect(byType.audio).toMatchObject({ codec_name: "aac" });
    expect(Number(byType.audio!.nb_read_frames)).toBe(frames.length);
  });

  it("starting at a later keyframe (a fresh remuxer, as for a late TS viewer) gives a valid stream", async () => {
    const { units, keyframes } = h264AccessUnits(es);
    const ps = psFromUnits(units, { keyframes }).ps;
    const { packs } = remux(ps);
    const second = packs.findIndex((p, k) => k > 0 && p.keyframe);
    expect(second).toBe(25);
    const probe = await dir.probe(remux(ps, 1400, second).ts, "late.ts");
    expect(probe.errors).toBe("");
    expect(Number(probe.streams[0]!.nb_read_frames)).toBe(25);
  });

  it("remuxes ffmpeg's own MPEG-2 PS (VOB: 2 KiB packs, frames across packs, nav packets)", async () => {
    const { ts, packs } = remux(vob, 2048);
    expect(packs.filter((p) => p.keyframe).length).toBe(2);
    const probe = await dir.probe(ts, "vob.ts");
    expect(probe.errors).toBe("");
    expect(probe.streams[0]).toMatchObject({ codec_name: "h264", width: 640, height: 360 });
    expect(Number(probe.streams[0]!.nb_read_frames)).toBe(50);
  });

  it("remuxes a real H.265 stream (stream_type 0x24) from the start and from its second keyframe", async () => {
    const { units, keyframes } = h265AccessUnits(hevc);
    expect(units.length).toBe(50);
    const ps = psFromUnits(units, { codec: "h265", keyframes }).ps;
    const { ts, packs } = remux(ps);
    expect(packs.filter((p) => p.keyframe).length).toBe(2);
    expect(pmtStreams(parseTs(ts)[1]!)).toEqual([{ type: 0x24, pid: VIDEO_PID }]);
    const whole = await dir.probe(ts, "hevc.ts");
    expect(whole.errors).toBe("");
    expect(whole.streams[0]).toMatchObject({ codec_name: "hevc", width: 640, height: 360 });
    expect(Number(whole.streams[0]!.nb_read_frames)).toBe(50);
    const second = packs.findIndex((p, k) => k > 0 && p.keyframe);
    const late = await dir.probe(remux(ps, 1400, second).ts, "hevc-late.ts");
    expect(late.errors).toBe("");
    expect(Number(late.streams[0]!.nb_read_frames)).toBe(50 - second);
  });
});
