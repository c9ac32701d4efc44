import { connect, type Socket } from "node:net";
import { PassThrough } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import { createFramer, privateHeader } from "../../../edge-agent/media/framer.ts";
import type { StreamStartResult } from "../../../lib/contracts/media.ts";
import { type MediaRig, startMediaRig, until } from "./helpers/media-rig.ts";
import { hikPs } from "./helpers/ps-fixtures.ts";

// ehome-2.0 §2.6 (INVITESTREAM / BYESTREAM), §4.1 (the push), §8 (FORCEIFRAME).

let rig: MediaRig | undefined;

afterEach(async () => {
  await rig?.close(); // checks the pool is full again
  rig = undefined;
});

// Real H.264 access-unit shapes, one pack per frame: the relay starts viewers at keyframes.
const src = hikPs({ frames: 30, keyEvery: 10, frameBytes: 3000, audioType: 0x0f, seed: 7 });
/** The relay hands a pack on once the next one starts: all but the last until the stream ends. */
const allButLast = src.ps.length - src.packs.at(-1)!.length;

/** The device pushes the PS as §4.1 frames it, in 1000-byte writes; the socket stays open. */
function pushLive(socket: Socket, session: number, withHeader = true, ssrc = session): void {
  const framer = createFramer({ ssrc });
  const wire = Buffer.concat([
    ...(withHeader ? [privateHeader({ session })] : []),
    ...src.packs.flatMap((p, i) => framer.frame(p, { timestamp: i * 3600 })),
  ]);
  for (let i = 0; i < wire.length; i += 1000) socket.write(wire.subarray(i, i + 1000));
}

function viewer(): { sink: PassThrough; bytes: () => Buffer; ended: Promise<void> } {
  const sink = new PassThrough();
  const chunks: Buffer[] = [];
  sink.on("data", (c: Buffer) => chunks.push(c));
  const ended = new Promise<void>((r) => sink.once("end", () => r()));
  return { sink, bytes: () => Buffer.concat(chunks), ended };
}

const live = (streamId: string, channel = 1, streamType: "main" | "sub" = "main") => ({
  streamId,
  kind: "live" as const,
  channel,
  streamType,
  transport: "tcp" as const,
});

describe("live preview", { timeout: 20_000 }, () => {
  it("INVITESTREAM carries Channel, ChannelType, SinkIP and the leased SinkPort; the viewer gets the exact PS; stop sends BYESTREAM and frees the port", async () => {
    // Trace mode (ehome-2.0 §8 rule 4): the first 4 KiB of the media connection.
    const traced: Array<{ direction: string; host: string; port: number; bytes: Uint8Array }> = [];
    rig = await startMediaRig({
      deps: {
        trace: {
          record: (direction, host, port, bytes) =>
            void traced.push({ direction, host, port, bytes }),
          dropped: 0,
          close: async () => {},
        },
      },
    });
    const r = rig;
    r.device.scripts.inviteStream = [{ push: (s, session) => pushLive(s, session) }];
    const v = viewer();
    const started = await r.manager.startStream(r.device.deviceId, live("s-1", 2, "sub"));
    expect(started.kind).toBe("ok");
    const result = (started as { result: StreamStartResult }).result;
    expect(result).toMatchObject({ streamId: "s-1", transport: "tcp", sharedWith: "s-1" });
    const [invite] = r.device.requestsOf("inviteStream");
    expect(invite!.fields).toEqual({
      channel: "2",
      channelType: "SUB",
      sinkIp: "127.0.0.1",
      sinkPort: String(result.port),
    });
    expect(r.manager.attachViewer("s-1", r.device.deviceId, "ps", v.sink)).toBe("ok");
    await until(() => v.bytes().length >= allButLast);
    expect(v.bytes().equals(src.ps.subarray(0, allButLast))).toBe(true);
    expect(r.pool.available()).toBe(r.pool.size - 1);
    expect(traced).toHaveLength(1);
    expect(traced[0]).toMatchObject({ direction: "in", host: "127.0.0.1", port: result.port });
    expect(traced[0]!.bytes.length).toBe(4096);
    expect([...traced[0]!.bytes.subarray(0, 4)]).toEqual([1, 0, 1, 0]); // the private header

    const stopped = await r.manager.stopStream("s-1", r.device.deviceId);
    expect(stopped).toMatchObject({ kind: "ok", result: { state: "stopped", byeSent: true } });
    const [bye] = r.device.requestsOf("byeStream");
    expect(bye!.fields.session).toBe(result.session);
    // The stream's end flushes the last pack: the viewer got exactly what the device embedded.
    await v.ended;
    expect(v.bytes().equals(src.ps)).toBe(true);
    await until(() => r.pool.available() === r.pool.size);
    const states = r.eventsOf("s-1").map((e) => e.state);
    expect(states[0]).toBe("starting");
    expect(states).toContain("active");
    expect(states.at(-1)).toBe("stopped");
    expect(r.eventsOf("s-1").at(-1)!.reason?.code).toBe("STOPPED");
    expect(r.eventsOf("s-1").at(-1)!.counters.bytesIn).toBe(src.ps.length);
    const seqs = r.eventsOf("s-1").map((e) => e.seq);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect(new Set(seqs).size).toBe(seqs.length);
  });

  it("two stream ids of the same channel and type share one device stream; the last stop sends BYESTREAM", async () => {
    rig = await startMediaRig();
    const r = rig;
    r.device.scripts.inviteStream = [{ push: (s, session) => pushLive(s, session) }];
    const a = await r.manager.startStream(r.device.deviceId, live("s-a"));
    const b = await r.manager.startStream(r.device.deviceId, live("s-b"));
    expect(a.kind).toBe("ok");
    expect(b).toMatchObject({ kind: "ok", result: { streamId: "s-b", sharedWith: "s-a" } });
    expect((b as { result: StreamStartResult }).result.port).toBe(
      (a as { result: StreamStartResult }).result.port,
    );
    expect(r.device.requestsOf("inviteStream")).toHaveLength(1);
    expect(r.pool.available()).toBe(r.pool.size - 1);
    const vb = viewer();
    expect(r.manager.attachViewer("s-b", r.device.deviceId, "ps", vb.sink)).toBe("ok");
    await until(() => vb.bytes().length >= allButLast);

    // The sub stream of the same channel is another device stream.
    const c = await r.manager.startStream(r.device.deviceId, live("s-c", 1, "sub"));
    expect(c).toMatchObject({ kind: "ok", result: { sharedWith: "s-c" } });
    expect(r.device.requestsOf("inviteStream")).toHaveLength(2);

    await r.manager.stopStream("s-a");
    expect(r.device.requestsOf("byeStream")).toHaveLength(0);
    expect(
      r.manager
        .streams()
        .map((s) => s.streamId)
        .sort(),
    ).toEqual(["s-b", "s-c"]);
    await r.manager.stopStream("s-b");
    expect(r.device.requestsOf("byeStream")).toHaveLength(1);
    await r.manager.stopStream("s-c");
    expect(r.device.requestsOf("byeStream")).toHaveLength(2);
    await until(() => r.pool.available() === r.pool.size);
  });

  it("a stream with no viewer stops itself after the idle time (counted from the start), a viewer keeps it", async () => {
    rig = await startMediaRig({ config: { idleSeconds: 0.3 } });
    const r = rig;
    r.device.scripts.inviteStream = [{ push: (s, session) => pushLive(s, session) }];
    await r.manager.startStream(r.device.deviceId, live("idle-1"));
    await r.manager.startStream(r.device.deviceId, live("watched", 3));
    const v = viewer();
    expect(r.manager.attachViewer("watched", r.device.deviceId, "ps", v.sink)).toBe("ok");
    await until(() => r.eventsOf("idle-1").some((e) => e.state === "stopped"));
    expect(r.eventsOf("idle-1").at(-1)!.reason?.code).toBe("IDLE");
    await until(() => r.device.requestsOf("byeStream").length === 1);
    await new Promise((res) => setTimeout(res, 400));
    expect(r.manager.streams().map((s) => s.streamId)).toEqual(["watched"]);
    // The viewer leaves: the idle clock starts again.
    v.sink.destroy();
    await until(() => r.eventsOf("watched").some((e) => e.state === "stopped"));
    expect(r.eventsOf("watched").at(-1)!.reason?.code).toBe("IDLE");
    await until(() => r.pool.available() === r.pool.size);
  });

  it("a device that never connects fails the stream with MEDIA_ACCEPT_TIMEOUT, gets BYESTREAM, and the port is back", async () => {
    rig = await startMediaRig({ acceptTimeoutMs: 200 });
    const r = rig;
    r.device.scripts.inviteStream = [{}]; // answers 200 + Session, never pushes
    const started = await r.manager.startStream(r.device.deviceId, live("late"));
    expect(started.kind).toBe("ok");
    await until(() => r.eventsOf("late").some((e) => e.state === "failed"));
    expect(r.eventsOf("late").at(-1)!.reason?.code).toBe("MEDIA_ACCEPT_TIMEOUT");
    await until(() => r.device.requestsOf("byeStream").length === 1);
    await until(() => r.pool.available() === r.pool.size);
    expect(r.pool.stats().acceptTimeouts).toBe(1);
  });

  it("another address is refused and counted; the device's own connection is served", async () => {
    rig = await startMediaRig();
    const r = rig;
    let intruderRefused = false;
    r.device.scripts.inviteStream = [
      { connectDelayMs: 300, push: (s, session) => pushLive(s, session) },
    ];
    // The intruder connects first from 127.0.0.2 (any loopback address works on Linux).
    const started = r.manager.startStream(r.device.deviceId, live("guarded"));
    await until(() => r.device.requestsOf("inviteStream").length === 1);
    const port = Number(r.device.requestsOf("inviteStream")[0]!.fields.sinkPort);
    await new Promise<void>((resolve) => {
      const s = connect({ port, host: "127.0.0.1", localAddress: "127.0.0.2" });
      s.on("error", () => {
        intruderRefused = true;
        resolve();
      });
      s.on("close", () => {
        intruderRefused = true;
        resolve();
      });
    });
    expect(intruderRefused).toBe(true);
    expect((await started).kind).toBe("ok");
    const v = viewer();
    r.manager.attachViewer("guarded", r.device.deviceId, "ps", v.sink);
    await until(() => v.bytes().length >= allButLast);
    expect(v.bytes().equals(src.ps.subarray(0, allButLast))).toBe(true);
    expect(r.pool.stats().refused).toBe(1);
  });

  it("with every port leased the next stream fails MEDIA_PORTS_EXHAUSTED at once", async () => {
    rig = await startMediaRig({ poolSize: 1 });
    const r = rig;
    r.device.scripts.inviteStream = [{ push: (s, session) => pushLive(s, session) }];
    expect((await r.manager.startStream(r.device.deviceId, live("one", 1))).kind).toBe("ok");
    const second = await r.manager.startStream(r.device.deviceId, live("two", 2));
    expect(second).toMatchObject({ kind: "failed", code: "MEDIA_PORTS_EXHAUSTED" });
    expect(r.device.requestsOf("inviteStream")).toHaveLength(1);
    expect(r.eventsOf("two").map((e) => e.state)).toEqual(["starting", "failed"]);
    expect(r.eventsOf("two").at(-1)!.reason?.code).toBe("MEDIA_PORTS_EXHAUSTED");
    // Sharing needs no port.
    expect((await r.manager.startStream(r.device.deviceId, live("one-b", 1))).kind).toBe("ok");
  });

  it("a device refusal fails the stream with its status and frees the port; a missing Session is MEDIA_NO_SESSION", async () => {
    rig = await startMediaRig();
    const r = rig;
    r.device.scripts.inviteStream = [{ status: 500 }, { session: "" }];
    const refused = await r.manager.startStream(r.device.deviceId, live("no-1"));
    expect(refused).toMatchObject({ kind: "device-error", status: 500 });
    expect(r.eventsOf("no-1").at(-1)).toMatchObject({
      state: "failed",
      reason: { code: "DEVICE_ERROR" },
    });
    const noSession = await r.manager.startStream(r.device.deviceId, live("no-2"));
    expect(noSession).toMatchObject({ kind: "failed", code: "MEDIA_NO_SESSION" });
    await until(() => r.pool.available() === r.pool.size);
    expect(await r.manager.startStream("cam-unknown", live("no-3"))).toEqual({ kind: "offline" });
  });

  it("a viewer waiting for a keyframe asks FORCEIFRAME (rate-limited); force-iframe control sends Channel and ChannelType", async () => {
    // A GOP cache too small to keep any GOP: every late viewer waits for the next keyframe.
    rig = await startMediaRig({
      config: { keyframeMinIntervalMs: 60_000, relay: { maxGopBytes: 1000 } },
    });
    const r = rig;
    r.device.scripts.inviteStream = [{ push: (s, session) => pushLive(s, session, false) }];
    await r.manager.startStream(r.device.deviceId, live("kf", 4, "sub"));
    const first = viewer();
    // Nothing cached yet: the first viewer waits for a keyframe and the device is asked for one.
    r.manager.attachViewer("kf", r.device.deviceId, "ps", first.sink);
    await until(() => r.device.requestsOf("forceIFrame").length === 1);
    expect(r.device.requestsOf("forceIFrame")[0]!.fields).toEqual({
      channel: "4",
      channelType: "SUB",
    });
    await until(() => first.bytes().length >= allButLast);
    // A late viewer finds no GOP cached: asked again, but within the minimum interval.
    r.manager.attachViewer("kf", r.device.deviceId, "ps", viewer().sink);
    await until(() => r.manager.counters().keyframeRateLimited === 1);
    expect(r.device.requestsOf("forceIFrame")).toHaveLength(1);
    const forced = await r.manager.control({ streamId: "kf", action: "force-iframe" });
    expect(forced).toMatchObject({ kind: "ok", result: { action: "force-iframe" } });
    expect(r.device.requestsOf("forceIFrame")).toHaveLength(2);
    expect(await r.manager.control({ streamId: "kf", action: "pause" })).toMatchObject({
      kind: "failed",
      code: "STREAM_NOT_PLAYBACK",
    });
    // Viewer limits: 4 per stream.
    r.manager.attachViewer("kf", r.device.deviceId, "ps", viewer().sink);
    r.manager.attachViewer("kf", r.device.deviceId, "ps", viewer().sink);
    expect(r.manager.attachViewer("kf", r.device.deviceId, "ps", viewer().sink)).toBe("full");
  });

  it("close() stops every stream with BYESTREAM (AGENT_SHUTDOWN) and releases every port", async () => {
    rig = await startMediaRig();
    const r = rig;
    r.device.scripts.inviteStream = [{ push: (s, session) => pushLive(s, session) }];
    await r.manager.startStream(r.device.deviceId, live("c-1", 1));
    await r.manager.startStream(r.device.deviceId, live("c-2", 2));
    await until(() => r.eventsOf("c-2").some((e) => e.state === "active"));
    await r.manager.close();
    expect(r.device.requestsOf("byeStream")).toHaveLength(2);
    for (const id of ["c-1", "c-2"]) {
      expect(r.eventsOf(id).at(-1)).toMatchObject({
        state: "stopped",
        reason: { code: "AGENT_SHUTDOWN" },
      });
    }
    expect(r.pool.available()).toBe(r.pool.size);
    expect(await r.manager.startStream(r.device.deviceId, live("c-3"))).toMatchObject({
      kind: "failed",
    });
  });

  it("reports an active stream every interval with growing counters and increasing seq", async () => {
    rig = await startMediaRig({ config: { reportIntervalMs: 100 } });
    const r = rig;
    r.device.scripts.inviteStream = [{ push: (s, session) => pushLive(s, session) }];
    await r.manager.startStream(r.device.deviceId, live("rep"));
    const v = viewer();
    r.manager.attachViewer("rep", r.device.deviceId, "ps", v.sink);
    await until(() => r.eventsOf("rep").filter((e) => e.state === "active").length >= 4);
    const active = r.eventsOf("rep").filter((e) => e.state === "active");
    expect(active.at(-1)!.counters).toMatchObject({ viewers: 1, bytesIn: src.ps.length });
    expect(active.at(-1)!.counters.bytesOut).toBeGreaterThan(0);
    expect(active.some((e) => e.counters.bitrateBps > 0)).toBe(true);
    const seqs = r.eventsOf("rep").map((e) => e.seq);
    expect(seqs).toEqual(seqs.map((_, i) => i));
  });

  it("a device whose SSRC is not the Session is followed from the connection's first byte (§9 item 5)", async () => {
    rig = await startMediaRig();
    const r = rig;
    r.device.scripts.inviteStream = [
      { push: (s, session) => pushLive(s, session, true, 0x0a689ebc) },
    ];
    await r.manager.startStream(r.device.deviceId, live("ssrc"));
    const v = viewer();
    r.manager.attachViewer("ssrc", r.device.deviceId, "ps", v.sink);
    await until(() => v.bytes().length >= allButLast);
    expect(v.bytes().equals(src.ps.subarray(0, allButLast))).toBe(true);
    expect(r.manager.counters().ssrcFallbacks).toBe(1);
  });

  it("a device that never answers INVITESTREAM: the start times out, and close() during it leaves no port leased", async () => {
    rig = await startMediaRig();
    const r = rig;
    r.device.scripts.inviteStream = [{ silent: true }];
    const first = await r.manager.startStream(r.device.deviceId, live("mute-1"));
    expect(first).toEqual({ kind: "timeout" });
    expect(r.eventsOf("mute-1").at(-1)).toMatchObject({
      state: "failed",
      reason: { code: "DEVICE_TIMEOUT" },
    });
    expect(r.pool.available()).toBe(r.pool.size);
    // Closing while a start waits for the device: the start ends, the port is back.
    const pending = r.manager.startStream(r.device.deviceId, live("mute-2", 2));
    await until(() => r.device.requestsOf("inviteStream").length >= 2);
    await r.manager.close();
    expect((await pending).kind).not.toBe("ok");
    expect(r.pool.available()).toBe(r.pool.size);
  });
});
