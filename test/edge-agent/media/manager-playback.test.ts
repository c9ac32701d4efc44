import { PassThrough } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import { CommandResult } from "../../../lib/contracts/commands.ts";
import { StreamStartResult } from "../../../lib/contracts/media.ts";
import { type MediaRig, startMediaRig, until } from "./helpers/media-rig.ts";
import { hikPs } from "./helpers/ps-fixtures.ts";

// ehome-2.0 §8: PLAYBACK (by name or time, Direction), PLAYBACKCONTROL (Session, Action, Speed,
// SeekTime), raw MPEG-PS for playback.

let rig: MediaRig | undefined;

afterEach(async () => {
  await rig?.close(); // checks the pool is full again
  rig = undefined;
});

const src = hikPs({ frames: 20, keyEvery: 10, frameBytes: 2000, seed: 3 });

function viewer() {
  const sink = new PassThrough();
  const chunks: Buffer[] = [];
  sink.on("data", (c: Buffer) => chunks.push(c));
  const ended = new Promise<void>((r) => sink.once("end", () => r()));
  return { sink, bytes: () => Buffer.concat(chunks), ended };
}

const byFile = {
  streamId: "pb-1",
  kind: "playback" as const,
  channel: 2,
  file: "ch0002_00000000009000000",
  direction: "forward" as const,
  transport: "tcp" as const,
};

describe("playback", { timeout: 20_000 }, () => {
  it("PLAYBACK by file name; raw PS reaches the viewer unchanged; the device closing ends it (DEVICE_CLOSED)", async () => {
    rig = await startMediaRig();
    const r = rig;
    let release!: () => void;
    const go = new Promise<void>((res) => {
      release = res;
    });
    r.device.scripts.playback = [
      {
        push: async (s) => {
          await go;
          for (let i = 0; i < src.ps.length; i += 1500) s.write(src.ps.subarray(i, i + 1500));
          s.end();
        },
      },
    ];
    const started = await r.manager.startStream(r.device.deviceId, byFile);
    expect(started.kind).toBe("ok");
    const result = StreamStartResult.parse((started as { result: unknown }).result);
    expect(result.sharedWith).toBeUndefined();
    expect(r.device.requestsOf("playback")[0]!.fields).toEqual({
      channel: "2",
      fileName: "ch0002_00000000009000000",
      direction: "FORWARD",
      sinkIp: "127.0.0.1",
      sinkPort: String(result.port),
    });
    const v = viewer();
    expect(r.manager.attachViewer("pb-1", r.device.deviceId, "ps", v.sink)).toBe("ok");
    release();
    await v.ended;
    expect(v.bytes().equals(src.ps)).toBe(true);
    await until(() => r.eventsOf("pb-1").some((e) => e.state === "stopped"));
    expect(r.eventsOf("pb-1").at(-1)!.reason?.code).toBe("DEVICE_CLOSED");
    expect(r.eventsOf("pb-1").at(-1)!.counters.bytesIn).toBe(src.ps.length);
    await until(() => r.pool.available() === r.pool.size);
    // Ended: a viewer is told so, a control too; a repeated stop succeeds.
    expect(r.manager.attachViewer("pb-1", r.device.deviceId, "ps", viewer().sink)).toBe("ended");
    expect(await r.manager.control({ streamId: "pb-1", action: "pause" })).toMatchObject({
      kind: "failed",
      code: "STREAM_ENDED",
    });
    expect(await r.manager.stopStream("pb-1")).toMatchObject({ kind: "ok" });
  });

  it("PLAYBACK by time range, reverse: StartTime, StopTime and Direction REVERSE", async () => {
    rig = await startMediaRig();
    const r = rig;
    r.device.scripts.playback = [{ push: (s) => void s.write(src.ps) }];
    const started = await r.manager.startStream(r.device.deviceId, {
      streamId: "pb-t",
      kind: "playback",
      channel: 1,
      start: "2024-05-01 10:00:00",
      end: "2024-05-01 11:00:00",
      direction: "reverse",
      transport: "tcp",
    });
    expect(started.kind).toBe("ok");
    expect(r.device.requestsOf("playback")[0]!.fields).toMatchObject({
      channel: "1",
      startTime: "2024-05-01 10:00:00",
      stopTime: "2024-05-01 11:00:00",
      direction: "REVERSE",
    });
    expect(r.device.requestsOf("playback")[0]!.fields.fileName).toBeUndefined();
  });

  it("controls send PLAYBACKCONTROL with Session, Action, Speed and SeekTime; pause and resume change the state", async () => {
    rig = await startMediaRig();
    const r = rig;
    r.device.scripts.playback = [{ push: (s) => void s.write(src.ps) }];
    const started = await r.manager.startStream(r.device.deviceId, byFile);
    const { session } = StreamStartResult.parse((started as { result: unknown }).result);
    await until(() => r.eventsOf("pb-1").some((e) => e.state === "active"));
    const control = (p: object) =>
      r.manager.control({ streamId: "pb-1", ...p } as never, r.device.deviceId);

    expect(await control({ action: "pause" })).toMatchObject({
      kind: "ok",
      result: { state: "paused" },
    });
    expect(r.eventsOf("pb-1").at(-1)!.state).toBe("paused");
    expect(await control({ action: "resume" })).toMatchObject({ result: { state: "active" } });
    await control({ action: "fast", speed: 4 });
    await control({ action: "slow", speed: 2 });
    await control({ action: "slow", speed: -8 }); // already the wire value
    await control({ action: "normal" });
    await control({ action: "seek", seekTime: "2024-05-01 10:30:00" });
    await control({ action: "reverse" });
    await control({ action: "forward" });
    expect(r.device.requestsOf("playbackControl").map((q) => q.fields)).toEqual([
      { session, action: "PAUSE" },
      { session, action: "RESUME" },
      { session, action: "FAST", speed: "4" },
      { session, action: "SLOW", speed: "-2" },
      { session, action: "SLOW", speed: "-8" },
      { session, action: "NORMAL", speed: "1" },
      { session, action: "SEEK", seekTime: "2024-05-01 10:30:00" },
      { session, action: "REVERSE" },
      { session, action: "FORWARD" },
    ]);
    expect(await control({ action: "force-iframe" })).toMatchObject({
      kind: "failed",
      code: "STREAM_NOT_PLAYBACK",
    });
    expect(
      await r.manager.control({ streamId: "pb-1", action: "pause" }, "cam-other"),
    ).toMatchObject({ kind: "failed", code: "STREAM_NOT_FOUND" });
  });
});

describe("media commands through the agent (executeCommand)", { timeout: 20_000 }, () => {
  const command = (type: string, params: object) => ({
    commandId: `c-${type}-${Math.random().toString(36).slice(2, 8)}`,
    deviceId: "cam-media-1",
    type: type as never,
    params: params as Record<string, unknown>,
    deadline: Date.now() + 10_000,
  });

  it("stream-start succeeds with a StreamStartResult; stream-stop and stream-control map to results; agent-side failures carry their code", async () => {
    rig = await startMediaRig({ poolSize: 1 });
    const r = rig;
    r.device.scripts.playback = [{ push: (s) => void s.write(src.ps) }];
    const start = CommandResult.parse(
      await r.agent.commands.execute(command("stream-start", { ...byFile, transport: undefined })),
    );
    expect(start.state).toBe("succeeded");
    expect(StreamStartResult.parse(start.result).streamId).toBe("pb-1");

    const exhausted = CommandResult.parse(
      await r.agent.commands.execute(
        command("stream-start", { streamId: "pb-2", kind: "live", channel: 1 }),
      ),
    );
    expect(exhausted).toMatchObject({ state: "failed", error: { code: "MEDIA_PORTS_EXHAUSTED" } });

    const pause = CommandResult.parse(
      await r.agent.commands.execute(
        command("stream-control", { streamId: "pb-1", action: "pause" }),
      ),
    );
    expect(pause).toMatchObject({ state: "succeeded", result: { state: "paused" } });
    const unknown = CommandResult.parse(
      await r.agent.commands.execute(command("stream-stop", { streamId: "nope" })),
    );
    expect(unknown).toMatchObject({ state: "failed", error: { code: "STREAM_NOT_FOUND" } });
    const stop = CommandResult.parse(
      await r.agent.commands.execute(command("stream-stop", { streamId: "pb-1" })),
    );
    expect(stop).toMatchObject({ state: "succeeded", result: { state: "stopped" } });
    const noBucket = CommandResult.parse(
      await r.agent.commands.execute(
        command("stream-start", { streamId: "dl-1", kind: "download", channel: 1, file: "a_1" }),
      ),
    );
    expect(noBucket).toMatchObject({
      state: "failed",
      error: { code: "MEDIA_DOWNLOAD_UNAVAILABLE" },
    });
  });
});
