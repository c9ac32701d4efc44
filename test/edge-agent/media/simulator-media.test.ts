import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { get, type IncomingMessage } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GetObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createEdgeAgent, type EdgeAgent } from "../../../edge-agent/agent.ts";
import { loadConfig } from "../../../edge-agent/config.ts";
import {
  type AgentMedia,
  createAgentMedia,
  mediaConfigFromEnv,
} from "../../../edge-agent/media/index.ts";
import { createUdpTransport } from "../../../edge-agent/signalling/server.ts";
import { createSimulator, type Simulator } from "../../../edge-agent/simulator/index.ts";
import { CommandResult } from "../../../lib/contracts/commands.ts";
import {
  downloadObjectKey,
  mintStreamToken,
  RecordSearchResult,
  StreamEvent,
  StreamStartResult,
  streamUrl,
} from "../../../lib/contracts/media.ts";
import { LOCAL_CREDENTIALS, LOCAL_REGION } from "../../../lib/local/clients.ts";
import { type LocalFauxqs, startFauxqs } from "../../../lib/local/fauxqs.ts";
import { ensureBucket } from "../../../lib/local/resources.ts";
import { uniquePrefix } from "../../helpers/local-backends.ts";
import { until } from "./helpers/media-rig.ts";
import { freePortRange } from "./helpers/port-range.ts";

/**
 * The agent's media module against the device simulator (issue 4, Show): a live main stream from
 * real H.264 framed as a device frames it, viewed as PS (byte-identical to what the device sent)
 * and as TS (decoded by ffprobe); a record search and a download landing in S3 byte-identical.
 */

const KEY = randomBytes(32);
const tmp = mkdtempSync(join(tmpdir(), "agent-media-"));
let fauxqs: LocalFauxqs;
let s3: S3Client;
let bucket: string;
let agent: EdgeAgent | undefined;
let media: AgentMedia | undefined;
let sim: Simulator | undefined;

beforeAll(async () => {
  fauxqs = await startFauxqs();
  s3 = new S3Client({
    region: LOCAL_REGION,
    credentials: LOCAL_CREDENTIALS,
    forcePathStyle: true,
    endpoint: fauxqs.endpoint,
  });
  bucket = uniquePrefix("media");
  await ensureBucket(s3, bucket);
});

afterAll(async () => {
  s3?.destroy();
  await fauxqs?.close();
  rmSync(tmp, { recursive: true, force: true });
});

afterEach(async () => {
  await sim?.close();
  if (media) {
    await media.close();
    expect(media.pool.available()).toBe(media.pool.size);
  }
  await agent?.close();
  sim = undefined;
  media = undefined;
  agent = undefined;
});

async function start(simOptions: Record<string, unknown> = {}) {
  const config = loadConfig(
    {
      EHOME_HOST: "127.0.0.1",
      EHOME_SIGNAL_PORT: "0",
      EHOME_VIEWER_PORT: "0",
      EHOME_AGENT_ID: "agent-sim-media",
      EHOME_LEARN_DEVICES: "false",
    },
    { hostname: "t", pid: 1 },
  );
  const events: StreamEvent[] = [];
  const a = createEdgeAgent(config, {
    transport: createUdpTransport({ host: "127.0.0.1", port: 0 }),
    events: { emit() {} },
    media: () => media?.manager,
  });
  agent = a;
  media = createAgentMedia(
    {
      ...mediaConfigFromEnv({}, { ...config, mediaPorts: await freePortRange(4) }),
      tokenKey: KEY,
      bucket,
    },
    {
      send: (id, command, values) => a.commands.send(id, command, values),
      device: (id) => a.sessions.get(id),
      s3: () => s3,
      events: { emit: (e) => void events.push(StreamEvent.parse(e)) },
    },
  );
  await a.start();
  const { viewerPort } = await media.start();
  sim = await createSimulator(
    { agent: a.signalAddress(), devices: 1, seed: 5, mediaCapture: true, ...simOptions },
    { onError: () => {} },
  );
  await sim.start();
  await sim.waitFor("all-online", 10_000);
  const device = sim.devices[0]!;
  return { a, events, viewerPort: viewerPort!, device };
}

const command = (deviceId: string, type: string, params: Record<string, unknown>) => ({
  commandId: `${type}-${randomBytes(3).toString("hex")}`,
  deviceId,
  type: type as "reboot",
  params,
  deadline: Date.now() + 30_000,
});

function fetch(url: string) {
  return new Promise<{ res: IncomingMessage; bytes: () => Buffer; ended: Promise<void> }>(
    (resolve, reject) => {
      get(url, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        const ended = new Promise<void>((r) => res.once("close", () => r()));
        resolve({ res, bytes: () => Buffer.concat(chunks), ended });
      }).on("error", reject);
    },
  );
}

function probe(bytes: Buffer, format: "mpeg" | "mpegts") {
  const path = join(tmp, `${randomBytes(4).toString("hex")}.${format}`);
  writeFileSync(path, bytes);
  const r = spawnSync(
    "ffprobe",
    [
      "-v",
      "error",
      "-f",
      format,
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
  const out = JSON.parse(r.stdout).streams[0];
  // -v error: anything on stderr is a decode or demux error.
  expect(r.stderr, `${format} errors`).toBe("");
  return {
    codec: out.codec_name as string,
    width: out.width as number,
    height: out.height as number,
    frames: Number(out.nb_read_frames),
  };
}

describe("agent media × device simulator", () => {
  it("live main stream: PS viewer byte-identical to what the device sent, TS viewer decodes (h264 640x360, same frames)", async () => {
    const { a, events, viewerPort, device } = await start({ mediaSpeed: 4, mediaHeader: true });
    const started = CommandResult.parse(
      await a.commands.execute(
        command(device.id, "stream-start", {
          streamId: "live-main",
          kind: "live",
          channel: 1,
          streamType: "main",
        }),
      ),
    );
    expect(started.state).toBe("succeeded");
    StreamStartResult.parse(started.result);
    const token = mintStreamToken(KEY, {
      streamId: "live-main",
      deviceId: device.id,
      expiresAt: Math.floor(Date.now() / 1000) + 60,
    });
    const ps = await fetch(streamUrl("127.0.0.1", viewerPort, "live-main", "ps", token));
    const ts = await fetch(streamUrl("127.0.0.1", viewerPort, "live-main", "ts", token));
    expect(ps.res.statusCode).toBe(200);
    expect(ts.res.statusCode).toBe(200);
    // About 2 s of video (50 frames) at 4× real time.
    await until(() => ps.bytes().length > 400_000, 10_000);
    const stop = CommandResult.parse(
      await a.commands.execute(command(device.id, "stream-stop", { streamId: "live-main" })),
    );
    expect(stop.state).toBe("succeeded");
    await ps.ended;
    await ts.ended;

    const session = device.mediaSessions().find((s) => s.kind === "live")!;
    expect(session.endReason).toBe("bye");
    const sent = session.captured!;
    const got = ps.bytes();
    expect(got.length).toBeGreaterThan(400_000);
    expect(got.equals(sent.subarray(0, got.length))).toBe(true);

    const psProbe = probe(got, "mpeg");
    const tsProbe = probe(ts.bytes(), "mpegts");
    expect(tsProbe).toMatchObject({ codec: "h264", width: 640, height: 360 });
    expect(psProbe).toMatchObject({ codec: "h264", width: 640, height: 360 });
    expect(Math.abs(tsProbe.frames - psProbe.frames)).toBeLessThanOrEqual(
      Math.ceil(psProbe.frames * 0.01),
    );
    const states = events.filter((e) => e.streamId === "live-main").map((e) => e.state);
    expect(states[0]).toBe("starting");
    expect(states).toContain("active");
    expect(states.at(-1)).toBe("stopped");
  }, 30_000);

  it("record search lists the device's files; a download lands in S3 byte-identical to the record", async () => {
    const { a, events, device } = await start({ recordSeconds: 8 });
    const search = CommandResult.parse(
      await a.commands.execute(
        command(device.id, "record-search", {
          channel: 1,
          start: "2024-05-01 00:00:00",
          end: "2024-05-01 02:59:59",
        }),
      ),
    );
    expect(search.state).toBe("succeeded");
    const { files } = RecordSearchResult.parse(search.result);
    expect(files).toHaveLength(3);
    const file = files[1]!;
    const started = CommandResult.parse(
      await a.commands.execute(
        command(device.id, "stream-start", {
          streamId: "dl-sim",
          kind: "download",
          channel: 1,
          file: file.fileName,
        }),
      ),
    );
    expect(started.state).toBe("succeeded");
    await until(
      () => events.some((e) => e.streamId === "dl-sim" && e.state === "completed"),
      15_000,
    );
    const done = events.filter((e) => e.streamId === "dl-sim").at(-1)!;
    const key = downloadObjectKey(device.id, "dl-sim");
    expect(done.object).toEqual({ key, bytes: file.sizeBytes });
    const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    const stored = Buffer.from(await out.Body!.transformToByteArray());
    expect(stored.equals(device.recordPs(file.fileName)!)).toBe(true);
  }, 30_000);

  it("playback with controls: PAUSE stops the push, RESUME, FAST ×4 and SEEK are honoured by the device", async () => {
    const { a, events, viewerPort, device } = await start({ recordSeconds: 20, mediaSpeed: 2 });
    const search = CommandResult.parse(
      await a.commands.execute(
        command(device.id, "record-search", {
          channel: 1,
          start: "2024-05-01 00:00:00",
          end: "2024-05-01 00:59:59",
        }),
      ),
    );
    const file = RecordSearchResult.parse(search.result).files[0]!;
    const started = CommandResult.parse(
      await a.commands.execute(
        command(device.id, "stream-start", {
          streamId: "pb-sim",
          kind: "playback",
          channel: 1,
          file: file.fileName,
        }),
      ),
    );
    expect(started.state).toBe("succeeded");
    const token = mintStreamToken(KEY, {
      streamId: "pb-sim",
      deviceId: device.id,
      expiresAt: Math.floor(Date.now() / 1000) + 60,
    });
    const ps = await fetch(streamUrl("127.0.0.1", viewerPort, "pb-sim", "ps", token));
    await until(() => ps.bytes().length > 50_000);
    const control = async (params: Record<string, unknown>) =>
      CommandResult.parse(
        await a.commands.execute(
          command(device.id, "stream-control", { streamId: "pb-sim", ...params }),
        ),
      );
    expect((await control({ action: "pause" })).state).toBe("succeeded");
    const push = () => device.mediaSessions().find((m) => m.kind === "playback")!;
    await until(() => push().state === "paused");
    await new Promise((r) => setTimeout(r, 150));
    const held = ps.bytes().length;
    await new Promise((r) => setTimeout(r, 300));
    expect(ps.bytes().length).toBe(held);
    expect(events.filter((e) => e.streamId === "pb-sim").at(-1)!.state).toBe("paused");
    expect((await control({ action: "resume" })).state).toBe("succeeded");
    await until(() => ps.bytes().length > held);
    expect((await control({ action: "fast", speed: 4 })).state).toBe("succeeded");
    await until(() => push().rate === 4);
    expect((await control({ action: "seek", seekTime: file.start })).state).toBe("succeeded");
    expect(push().controls.map((c) => [c.action, c.speed, c.seekTime])).toEqual([
      ["pause", undefined, undefined],
      ["resume", undefined, undefined],
      ["fast", 4, undefined],
      ["seek", undefined, file.start],
    ]);
    expect(
      CommandResult.parse(
        await a.commands.execute(command(device.id, "stream-stop", { streamId: "pb-sim" })),
      ).state,
    ).toBe("succeeded");
    await ps.ended;
  }, 30_000);
});
