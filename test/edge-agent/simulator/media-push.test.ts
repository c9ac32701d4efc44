import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { DEFAULT_VIEW } from "../../../edge-agent/signalling/catalogue.ts";
import { childText, childTexts } from "../../../edge-agent/signalling/codec/index.ts";
import type { SimulatedDevice, SimulatorOptions } from "../../../edge-agent/simulator/index.ts";
import { BASE_PTS, buildPs } from "../../../edge-agent/simulator/media-ps.ts";
import type { MediaSessionInfo } from "../../../edge-agent/simulator/media-push.ts";
import { loadFixture } from "../../../edge-agent/simulator/media-source.ts";
import type { FakePlatform } from "./fake-platform.ts";
import { sleep, useHarness } from "./harness.ts";
import { hasSystemHeader, MediaSink, packPts, packs } from "./media-sink.ts";

const c = DEFAULT_VIEW.commands;
const main = loadFixture("main");
const sub = loadFixture("sub");
const tmp = mkdtempSync(join(tmpdir(), "sim-push-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Frames ffprobe decodes from a program stream, and their size. */
function probePs(ps: Buffer): { frames: number; width: number; height: number } {
  const path = join(tmp, `${Math.random().toString(36).slice(2)}.ps`);
  writeFileSync(path, ps);
  const out = execFileSync(
    "ffprobe",
    [
      "-v",
      "error",
      "-f",
      "mpeg",
      "-count_frames",
      "-select_streams",
      "v:0",
      "-show_entries",
      "stream=width,height,nb_read_frames",
      "-of",
      "json",
      path,
    ],
    { encoding: "utf8" },
  );
  const s = JSON.parse(out).streams[0];
  return { frames: Number(s.nb_read_frames), width: s.width, height: s.height };
}

describe("simulator media pushes (ehome-2.0 §4.1, §8)", () => {
  const harness = useHarness();
  const sinks: MediaSink[] = [];
  afterEach(async () => {
    await Promise.all(sinks.splice(0).map((s) => s.close()));
  });

  async function setup(options: Partial<SimulatorOptions> = {}, sinkOptions = {}) {
    const sink = await MediaSink.start(sinkOptions);
    sinks.push(sink);
    const { platform, sim } = await harness({ mediaSpeed: 0, mediaCapture: true, ...options });
    await sim.start();
    await sim.waitFor("all-online", 2000);
    const d = sim.devices[0]!;
    const sinkFields = { sinkIp: "127.0.0.1", sinkPort: sink.port };
    return { platform, sim, d, sink, sinkFields };
  }

  async function open(
    platform: FakePlatform,
    d: SimulatedDevice,
    command: "inviteStream" | "playback" | "download",
    fields: Record<string, unknown>,
  ): Promise<string> {
    const r = await platform.request(d.id, command, fields);
    expect(r.status, r.description).toBe(200);
    const session = childText(r.params, c[command].reply.session!)!;
    expect(session).toMatch(/^\d+$/);
    return session;
  }

  function info(d: SimulatedDevice, session: string): MediaSessionInfo {
    const i = d.mediaSessions().find((s) => s.session === session);
    if (!i) throw new Error(`no media session ${session}`);
    return i;
  }

  const control = (
    platform: FakePlatform,
    d: SimulatedDevice,
    session: string,
    action: string,
    more: Record<string, unknown> = {},
  ) => platform.request(d.id, "playbackControl", { session, action, ...more });

  async function records(platform: FakePlatform, d: SimulatedDevice, chunkSize = 8) {
    const r = await platform.request(d.id, "queryRecordedFiles", {
      channel: 1,
      fileType: 255,
      startTime: "2024-05-01 00:00:00",
      stopTime: "2024-05-01 02:30:00",
      chunkSize,
      startIdx: 0,
    });
    return childTexts(r.params, c.queryRecordedFiles.reply.recordedFile!).map((line) => {
      const t = line.split(" ");
      return { name: t[0]!, start: `${t[1]} ${t[2]}`, size: Number(t[5]) };
    });
  }

  it("live MAIN: $-RTP with SSRC = Session in 0x1c fragments; the de-framed PS is buildPs byte for byte; BYESTREAM stops and closes", async () => {
    const { platform, d, sink, sinkFields } = await setup();
    const session = await open(platform, d, "inviteStream", {
      channel: 1,
      channelType: "MAIN",
      ...sinkFields,
    });
    await sink.waitFor(() => sink.ps().length > 400_000);
    const bye = await platform.request(d.id, "byeStream", { session });
    expect(childText(bye.params, c.byeStream.reply.session!)).toBe(session);
    await sink.waitFor(() => sink.connections[0]!.closed);
    const got = info(d, session);
    expect(got).toMatchObject({ kind: "live", fixture: "main", state: "ended", endReason: "bye" });
    // Everything the device packed is buildPs of as many frames; the sink got a prefix of it.
    const expected = buildPs(main, { frames: got.framesSent });
    expect(got.captured!.equals(expected)).toBe(true);
    const ps = sink.ps();
    expect(ps.length).toBeGreaterThan(400_000);
    expect(ps.equals(expected.subarray(0, ps.length))).toBe(true);
    const st = sink.connections[0]!.deframer.stats();
    expect(st.ssrc).toBe(Number(session));
    expect(st.markers).toBe("hik");
    expect(st.headerBytes).toBe(0);
    expect(st.fragments).toBeGreaterThan(st.chunks);
    expect(st.reassembled).toBeGreaterThan(100);
    expect(st.recordsDropped + st.garbageBytes + st.resyncs).toBe(0);
    // What arrived decodes: every pack is a 640×360 frame.
    expect(probePs(ps)).toEqual({ frames: packs(ps).length, width: 640, height: 360 });
    // After BYESTREAM nothing more is sent and the session is gone (work status clients).
    await sleep(30);
    expect(sink.ps().length).toBe(ps.length);
    expect(d.mediaSessions().every((s) => s.state === "ended")).toBe(true);
  });

  it("live SUB with --media-header: the 256-byte header first, 0x0d chunks for small frames", async () => {
    const { platform, d, sink, sinkFields } = await setup({ mediaHeader: true });
    const session = await open(platform, d, "inviteStream", {
      channel: 1,
      channelType: "SUB",
      ...sinkFields,
    });
    await sink.waitFor(() => sink.ps().length > 150_000);
    await platform.request(d.id, "byeStream", { session });
    const frames = info(d, session).framesSent;
    const raw = sink.raw();
    expect([...raw.subarray(0, 4)]).toEqual([0x01, 0x00, 0x01, 0x00]);
    expect(raw.readUInt32BE(4)).toBe(Number(session));
    expect(raw[9]).toBe(1); // stream type: sub
    expect(raw[256]).toBe(0x24); // then the first `$` record
    const st = sink.connections[0]!.deframer.stats();
    expect(st.headerBytes).toBe(256);
    expect(st.chunks).toBeGreaterThan(0); // P-frames fit in one record
    expect(st.fragments).toBeGreaterThan(0); // IDRs do not
    const ps = sink.ps();
    expect(ps.equals(buildPs(sub, { frames }).subarray(0, ps.length))).toBe(true);
    expect(probePs(ps)).toEqual({ frames: packs(ps).length, width: 320, height: 180 });
  });

  it("FORCEIFRAME: the next frame sent is the start of the fixture's next GOP", async () => {
    // Real time (40 ms a frame), so the FORCEIFRAME lands mid-GOP.
    const { platform, d, sink, sinkFields } = await setup({ mediaSpeed: 1 });
    const session = await open(platform, d, "inviteStream", {
      channel: 1,
      channelType: "MAIN",
      ...sinkFields,
    });
    await sink.waitFor(() => info(d, session).framesSent >= 4);
    // Another stream type of the channel is not this push.
    expect(
      (await platform.request(d.id, "forceIFrame", { channel: 1, channelType: "SUB" })).status,
    ).toBe(200);
    expect(info(d, session).forcedIdrs).toEqual([]);
    const r = await platform.request(d.id, "forceIFrame", { channel: 1, channelType: "MAIN" });
    expect(r.status).toBe(200);
    const forced = info(d, session).forcedIdrs[0]!;
    expect(forced.fixtureFrame).toBe(25);
    expect(forced.atFrame % 25).not.toBe(0);
    await sink.waitFor(() => packs(sink.ps()).length >= forced.atFrame + 3);
    await platform.request(d.id, "byeStream", { session });
    const got = info(d, session);
    const k = forced.atFrame;
    expect(got.sentFrames.slice(k - 1, k + 2)).toEqual([k - 1, 25, 26]);
    const p = packs(sink.ps());
    expect(hasSystemHeader(p[k - 1]!)).toBe(false);
    expect(hasSystemHeader(p[k]!)).toBe(true);
    // PTS keeps counting through the jump.
    expect(packPts(p[k]!)).toBe(BASE_PTS + k * 3600);
    expect(sink.ps().equals(got.captured!.subarray(0, sink.ps().length))).toBe(true);
  });

  it("QUERYRECORDEDFILES pages the record files with StartIdx/ChunkSize (ehome-2.0 §2.5)", async () => {
    const { platform, d } = await setup({ recordSeconds: 4, channels: 2 });
    const page = async (channel: number, startIdx: number, startTime = "2024-05-01 00:00:00") => {
      const r = await platform.request(d.id, "queryRecordedFiles", {
        channel,
        fileType: 255,
        startTime,
        stopTime: "2024-05-01 10:30:00",
        chunkSize: 3,
        startIdx,
      });
      expect(r.status).toBe(200);
      return childTexts(r.params, c.queryRecordedFiles.reply.recordedFile!);
    };
    const lines: string[] = [];
    for (let idx = 0; ; ) {
      const got = await page(2, idx);
      lines.push(...got);
      idx += got.length;
      if (got.length < 3) break;
    }
    expect(lines).toHaveLength(11);
    const size = d.recordPs(lines[0]!.split(" ")[0]!)!.length;
    lines.forEach((line, h) => {
      const hh = String(h).padStart(2, "0");
      expect(line).toMatch(
        new RegExp(`^ch0002_\\d{17} 2024-05-01 ${hh}:00:00 2024-05-01 ${hh}:00:04 ${size} 0$`),
      );
    });
    // A range starting after the 00:00 file ended does not list it.
    expect((await page(1, 0, "2024-05-01 00:00:05"))[0]).toMatch(/ 01:00:00 /);
  });

  it("DOWNLOAD pushes the record file raw, byte for byte, then closes; its size is the listed size", async () => {
    const { platform, d, sink, sinkFields } = await setup({ recordSeconds: 6, mediaHeader: false });
    const [file] = await records(platform, d);
    const session = await open(platform, d, "download", {
      channel: 1,
      fileName: file!.name,
      ...sinkFields,
    });
    await sink.waitFor(() => sink.connections[0]?.closed === true);
    const raw = sink.raw();
    expect(sink.connections[0]!.ended).toBe(true); // the device closed it (FIN)
    expect(raw.length).toBe(file!.size);
    expect(raw.equals(d.recordPs(file!.name)!)).toBe(true);
    expect([...raw.subarray(0, 4)]).toEqual([0, 0, 1, 0xba]);
    // The device sees the platform's FIN a moment after the platform closed.
    await sink.waitFor(() => info(d, session).state === "ended");
    expect(info(d, session).endReason).toBe("completed");
  });

  it("DOWNLOAD respects backpressure: a sink that does not read holds the device back", async () => {
    // A 300 s file (23 MB): more than the kernel buffers of a loopback connection (~4 MB here).
    const { platform, d, sink, sinkFields } = await setup({ recordSeconds: 300 }, { paused: true });
    const [file] = await records(platform, d);
    const session = await open(platform, d, "download", {
      channel: 1,
      fileName: file!.name,
      ...sinkFields,
    });
    await sleep(200);
    const held = info(d, session);
    expect(held.state).toBe("streaming");
    expect(held.psBytes).toBeLessThan(file!.size / 2);
    expect(held.bufferedBytes).toBeLessThan(256 * 1024);
    sink.resume();
    await sink.waitFor(() => sink.connections[0]?.closed === true);
    expect(sink.raw().equals(d.recordPs(file!.name)!)).toBe(true);
  });

  it("PLAYBACK of a file sends its PS raw and closes at the end; by time range it starts at an IDR", async () => {
    const { platform, d, sink, sinkFields } = await setup({ recordSeconds: 4 });
    const [file] = await records(platform, d);
    await open(platform, d, "playback", { channel: 1, fileName: file!.name, ...sinkFields });
    await sink.waitFor(() => sink.connections[0]?.closed === true);
    expect(sink.raw().equals(d.recordPs(file!.name)!)).toBe(true);
    // 00:00:01.5–00:00:03: frames 25 (the IDR before frame 37) to 75.
    const s2 = await open(platform, d, "playback", {
      channel: 1,
      startTime: "2024-05-01 00:00:01",
      stopTime: "2024-05-01 00:00:03",
      ...sinkFields,
    });
    await sink.waitFor(() => sink.connections[1]?.closed === true);
    const p = packs(sink.raw(1));
    expect(p).toHaveLength(50);
    expect(hasSystemHeader(p[0]!)).toBe(true);
    expect(info(d, s2).framesSent).toBe(50);
    const none = await platform.request(d.id, "playback", {
      channel: 1,
      startTime: "2024-05-01 00:00:05",
      stopTime: "2024-05-01 00:00:09",
      ...sinkFields,
    });
    expect(none.status).toBe(400);
  });

  it("PLAYBACK with --playback-framing rtp and --media-header: $-RTP like live, the same PS", async () => {
    const { platform, d, sink, sinkFields } = await setup({
      recordSeconds: 4,
      playbackFraming: "rtp",
      mediaHeader: true,
    });
    const [file] = await records(platform, d);
    const session = await open(platform, d, "playback", {
      channel: 1,
      fileName: file!.name,
      ...sinkFields,
    });
    await sink.waitFor(() => sink.connections[0]?.closed === true);
    expect(sink.raw()[256]).toBe(0x24);
    const st = sink.connections[0]!.deframer.stats();
    expect(st).toMatchObject({ headerBytes: 256, mode: "rtp", ssrc: Number(session) });
    expect(sink.ps().equals(d.recordPs(file!.name)!)).toBe(true);
  });

  it("a BYESTREAM after the last byte of a playback (the platform's clean-up) leaves it completed", async () => {
    const { platform, d, sink, sinkFields } = await setup({ recordSeconds: 2 }, { holdOpen: true });
    const [file] = await records(platform, d);
    const session = await open(platform, d, "playback", {
      channel: 1,
      fileName: file!.name,
      ...sinkFields,
    });
    await sink.waitFor(() => sink.connections[0]?.ended === true);
    expect(info(d, session).state).toBe("streaming"); // half-closed, waiting for the platform
    expect((await platform.request(d.id, "byeStream", { session })).status).toBe(200);
    expect(info(d, session)).toMatchObject({ state: "ended", endReason: "completed" });
    expect(sink.raw().equals(d.recordPs(file!.name)!)).toBe(true);
  });

  it("PLAYBACK Direction REVERSE sends the GOPs last to first", async () => {
    const { platform, d, sink, sinkFields } = await setup({ recordSeconds: 4 });
    const [file] = await records(platform, d);
    const session = await open(platform, d, "playback", {
      channel: 1,
      fileName: file!.name,
      direction: "REVERSE",
      ...sinkFields,
    });
    await sink.waitFor(() => sink.connections[0]?.closed === true);
    const gops = [75, 50, 25, 0].flatMap((g) => Array.from({ length: 25 }, (_, i) => g + i));
    expect(info(d, session).sentFrames).toEqual(gops);
    const pts = packs(sink.raw()).map((p) => packPts(p));
    expect(pts).toEqual(gops.map((i) => BASE_PTS + i * 3600));
  });

  it("PLAYBACKCONTROL: pause, resume, fast, slow, normal, seek and reverse are honoured and recorded", async () => {
    // ×2 real time: a frame every 20 ms; a 20 s file (500 frames, 20 GOPs).
    const { platform, d, sink, sinkFields } = await setup({ recordSeconds: 20, mediaSpeed: 2 });
    const [file] = await records(platform, d);
    const session = await open(platform, d, "playback", {
      channel: 1,
      fileName: file!.name,
      ...sinkFields,
    });
    const frames = () => info(d, session).framesSent;
    await sink.waitFor(() => frames() >= 5);

    expect((await control(platform, d, session, "PAUSE")).status).toBe(200);
    const paused = frames();
    expect(info(d, session).state).toBe("paused");
    await sleep(150);
    expect(frames()).toBe(paused);
    await control(platform, d, session, "RESUME");
    await sink.waitFor(() => frames() >= paused + 3);

    await control(platform, d, session, "FAST", { speed: 8 });
    let t0 = performance.now();
    let n0 = frames();
    await sleep(200);
    // ×16 → 2.5 ms a frame: ~80 in 200 ms (×2 would be 10).
    const fast = ((frames() - n0) * 200) / (performance.now() - t0);
    expect(fast).toBeGreaterThan(25);
    expect(info(d, session).rate).toBe(8);

    await control(platform, d, session, "SLOW", { speed: -4 });
    t0 = performance.now();
    n0 = frames();
    await sleep(300);
    // ×0.5 → 80 ms a frame: at most 4 (+1 due at once) in 300 ms.
    expect(((frames() - n0) * 300) / (performance.now() - t0)).toBeLessThanOrEqual(5);
    expect(info(d, session).rate).toBe(0.25);
    await control(platform, d, session, "NORMAL");

    // SEEK to 12 s into the file: frame 300, an IDR (GOP 25).
    const seek = await control(platform, d, session, "SEEK", {
      seekTime: `${file!.start.slice(0, 17)}12`,
    });
    expect(seek.status).toBe(200);
    const atSeek = info(d, session).controls.at(-1)!.atFrame;
    await sink.waitFor(() => frames() >= atSeek + 2);
    expect(info(d, session).sentFrames.slice(atSeek, atSeek + 2)).toEqual([300, 301]);

    // REVERSE: the current GOP (300–324) finishes, then 275–299.
    await control(platform, d, session, "REVERSE");
    await control(platform, d, session, "FAST", { speed: 8 });
    await sink.waitFor(() => info(d, session).sentFrames.includes(275), 3000);
    const sent = info(d, session).sentFrames;
    expect(sent.slice(sent.indexOf(324), sent.indexOf(324) + 2)).toEqual([324, 275]);
    expect((await control(platform, d, session, "JUMP")).status).toBe(400);

    await platform.request(d.id, "byeStream", { session });
    await sink.waitFor(() => sink.connections[0]!.closed);
    const got = info(d, session);
    expect(got.controls.map((x) => x.action)).toEqual([
      "pause",
      "resume",
      "fast",
      "slow",
      "normal",
      "seek",
      "reverse",
      "fast",
    ]);
    expect(got.controls[3]!.speed).toBe(-4);
    // Playback is raw PS: what arrived is what the device packed.
    expect(sink.raw().equals(got.captured!.subarray(0, sink.raw().length))).toBe(true);
  });

  it("the platform closing the socket ends the push; a refused connection fails it and forgets the Session", async () => {
    const { platform, sim, d, sink, sinkFields } = await setup({ mediaSpeed: 1 });
    const live = await open(platform, d, "inviteStream", { channel: 1, ...sinkFields });
    await sink.waitFor(() => sink.ps().length > 0);
    // PLAYBACKCONTROL on a live push: answered and recorded, not applied.
    expect((await control(platform, d, live, "PAUSE")).status).toBe(200);
    const at = info(d, live).framesSent;
    await sink.waitFor(() => info(d, live).framesSent > at + 1);
    expect(info(d, live)).toMatchObject({ state: "streaming", controls: [{ action: "pause" }] });
    sink.connections[0]!.socket.destroy();
    await sink.waitFor(() => info(d, live).state === "ended");
    expect(info(d, live).endReason).toBe("peer-closed");

    const closed = net.createServer();
    await new Promise<void>((r) => closed.listen(0, "127.0.0.1", () => r()));
    const port = (closed.address() as net.AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const refused = await open(platform, d, "inviteStream", {
      channel: 1,
      sinkIp: "127.0.0.1",
      sinkPort: port,
    });
    await sink.waitFor(() => info(d, refused).state === "failed");
    expect(info(d, refused).error).toMatch(/ECONNREFUSED/);
    expect(sim.stats().mediaFailures).toBe(1);
    expect((await control(platform, d, refused, "PAUSE")).status).toBe(400);
  });

  it("closing the simulator ends every push and leaves no TCP socket or timer behind", async () => {
    const handles = (kind: string) =>
      process.getActiveResourcesInfo().filter((r) => r === kind).length;
    const tcpBefore = handles("TCPSocketWrap");
    const { platform, sim, d, sink, sinkFields } = await setup({ mediaSpeed: 1 });
    await open(platform, d, "inviteStream", { channel: 1, channelType: "SUB", ...sinkFields });
    await sink.waitFor(() => sink.ps().length > 0);
    await sim.close();
    await sink.waitFor(() => sink.connections[0]!.closed);
    expect(d.mediaSessions().map((s) => s.endReason)).toEqual(["device-closed"]);
    expect(sim.stats().mediaStreams).toBe(1);
    expect(sim.stats().mediaBytesSent).toBe(d.mediaSessions()[0]!.wireBytes);
    const timersAfterClose = handles("Timeout");
    const framesAtClose = d.mediaSessions()[0]!.framesSent;
    await sink.close();
    await sink.waitFor(() => handles("TCPSocketWrap") === tcpBefore);
    // The push's pacing timer went with the simulator's scheduler: nothing fires later.
    await sleep(60);
    expect(handles("Timeout")).toBeLessThanOrEqual(timersAfterClose);
    expect(d.mediaSessions()[0]!.framesSent).toBe(framesAtClose);
  });

  it("refuses what it cannot push: no sink, unknown LinkMode, ChannelType or record", async () => {
    const { platform, d, sinkFields } = await setup();
    const status = async (command: "inviteStream" | "playback" | "download", f: object) =>
      (await platform.request(d.id, command, f as Record<string, unknown>)).status;
    expect(await status("inviteStream", { channel: 1 })).toBe(400);
    // LinkMode UDP is pushed since issue 8 (test/edge-agent/media/udp-media.test.ts); others are refused.
    expect(await status("inviteStream", { channel: 1, linkMode: "SCTP", ...sinkFields })).toBe(400);
    expect(await status("inviteStream", { channel: 1, channelType: "FOURTH", ...sinkFields })).toBe(
      400,
    );
    expect(await status("download", { channel: 1, fileName: "nope", ...sinkFields })).toBe(400);
    expect(
      await status("download", { channel: 2, fileName: "ch0002_00000000000476256", ...sinkFields }),
    ).toBe(400);
    expect(await status("playback", { channel: 1, ...sinkFields })).toBe(400);
    expect(d.mediaSessions()).toEqual([]);
  });
});
