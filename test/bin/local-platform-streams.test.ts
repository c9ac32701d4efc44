import { describe, expect, it } from "vitest";
import { ENV } from "../../lib/contracts/env.ts";
import { verifyStreamToken } from "../../lib/contracts/media.ts";
import { parseFirmwareTokenKey } from "../../lib/contracts/upgrades.ts";
import { eventually, usePlatform } from "../e2e/helpers/platform.ts";

/**
 * Media end to end on the platform `npm start` runs (bin/local-platform.ts): a simulator device,
 * the API's record search, a live stream whose TS URL on the agent's viewer port plays, its state
 * through the media-events queue, stop, and a download that lands in the local bucket and is
 * served by its presigned URL.
 */
const mediaBase = 40_000 + Math.floor(Math.random() * 200) * 20;
const p = usePlatform({
  agentEnv: {
    EHOME_PUBLIC_HOST: "127.0.0.1",
    EHOME_KEEPALIVE_SECONDS: "1",
    EHOME_MEDIA_PORTS: `${mediaBase}-${mediaBase + 19}`,
    EHOME_VIEWER_PORT: "0",
  },
});

// biome-ignore lint/suspicious/noExplicitAny: tests navigate response JSON freely; assertions check it
type Json = Record<string, any>;

async function onlineDevice(idPrefix = "med-", mediaSpeed = 0): Promise<string> {
  const sim = await p().simulator({ devices: 1, idPrefix, mediaSpeed, recordSeconds: 2 });
  await sim.start();
  await sim.waitFor("all-online", 10_000);
  const deviceId = sim.devices[0]!.id;
  await eventually(
    async () => {
      const res = await p().api<Json>("GET", `/devices/${deviceId}`);
      return res.body.status === "online" ? true : undefined;
    },
    { timeoutMs: 10_000 },
  );
  return deviceId;
}

/** The first `bytes` bytes of a viewer URL. */
async function firstBytes(url: string, bytes: number): Promise<Buffer> {
  const controller = new AbortController();
  const res = await fetch(url, { signal: controller.signal });
  expect(res.status).toBe(200);
  const chunks: Buffer[] = [];
  let total = 0;
  const reader = res.body!.getReader();
  while (total < bytes) {
    const { value, done } = await reader.read();
    if (done) break;
    chunks.push(Buffer.from(value));
    total += value.length;
  }
  controller.abort();
  await reader.cancel().catch(() => {});
  return Buffer.concat(chunks);
}

describe("media through the npm start platform", () => {
  it("records, a live stream played from its TS URL, stop, and a download to S3", async () => {
    const deviceId = await onlineDevice();

    const records = await p().api<Json>(
      "GET",
      `/devices/${deviceId}/records?channel=1&start=2026-11-24%2000:00:00&end=2026-11-24%2002:30:00`,
    );
    expect(records.status).toBe(200);
    expect(records.body.files.length).toBeGreaterThanOrEqual(2);
    const file = records.body.files[0];
    expect(file.start >= "2026-11-24 00:00:00").toBe(true);

    const live = await p().api<Json>("POST", `/devices/${deviceId}/streams`, {
      kind: "live",
      channel: 1,
      streamType: "sub",
    });
    expect(live.status).toBe(201);
    const key = parseFirmwareTokenKey(p().platform.env[ENV.STREAM_TOKEN_KEY]!);
    const ts = new URL(live.body.urls.ts);
    expect(verifyStreamToken(key, ts.searchParams.get("token")!).ok).toBe(true);
    const bytes = await firstBytes(live.body.urls.ts, 188 * 50);
    expect(bytes.length).toBeGreaterThanOrEqual(188 * 50);
    for (let i = 0; i < 50; i++) expect(bytes[i * 188]).toBe(0x47);
    const active = await eventually(
      async () => {
        const res = await p().api<Json>("GET", `/streams/${live.body.streamId}`);
        return res.body.state === "active" && res.body.bytesIn > 0 ? res.body : undefined;
      },
      { timeoutMs: 15_000 },
    );
    expect(active).toMatchObject({ kind: "live", deviceId });
    const stopped = await p().api<Json>("DELETE", `/streams/${live.body.streamId}`);
    expect(stopped.status).toBe(200);
    expect(stopped.body.state).toBe("stopped");

    const download = await p().api<Json>("POST", `/devices/${deviceId}/streams`, {
      kind: "download",
      channel: 1,
      file: file.fileName,
    });
    expect(download.status).toBe(201);
    const done = await eventually(
      async () => {
        const res = await p().api<Json>("GET", download.body.downloadUrl);
        return res.body.state === "completed" ? res.body : undefined;
      },
      { timeoutMs: 20_000 },
    );
    expect(done.object.bytes).toBe(file.sizeBytes);
    expect(done.bytesReceived).toBe(file.sizeBytes);
    const object = await fetch(done.url);
    expect(object.status).toBe(200);
    const body = Buffer.from(await object.arrayBuffer());
    expect(body.length).toBe(file.sizeBytes);
    // MPEG-PS: a pack header first.
    expect(body.subarray(0, 4).equals(Buffer.from([0, 0, 1, 0xba]))).toBe(true);
  });

  it("a playback in real time is paused and resumed through POST /streams/{id}/control", async () => {
    const deviceId = await onlineDevice("pb-", 1);
    const playback = await p().api<Json>("POST", `/devices/${deviceId}/streams`, {
      kind: "playback",
      channel: 1,
      start: "2026-11-24 00:00:00",
      end: "2026-11-24 03:30:00",
    });
    expect(playback.status).toBe(201);
    const { streamId } = playback.body;
    // A viewer keeps it from idling; the first bytes mean the device is pushing.
    const bytes = await firstBytes(playback.body.urls.ps, 2048);
    expect(bytes.subarray(0, 4).equals(Buffer.from([0, 0, 1, 0xba]))).toBe(true);
    await eventually(
      async () => {
        const res = await p().api<Json>("GET", `/streams/${streamId}`);
        return res.body.state === "active" ? true : undefined;
      },
      { timeoutMs: 10_000 },
    );
    const pause = await p().api<Json>("POST", `/streams/${streamId}/control`, { action: "pause" });
    expect(pause.status).toBe(200);
    await eventually(
      async () => {
        const res = await p().api<Json>("GET", `/streams/${streamId}`);
        return res.body.state === "paused" ? true : undefined;
      },
      { timeoutMs: 10_000 },
    );
    const seek = await p().api<Json>("POST", `/streams/${streamId}/control`, {
      action: "seek",
      seekTime: "2026-11-24 02:00:00",
    });
    expect(seek.status).toBe(200);
    const resume = await p().api<Json>("POST", `/streams/${streamId}/control`, {
      action: "resume",
    });
    expect(resume.status).toBe(200);
    const live = await p().api<Json>("POST", `/streams/${streamId}/control`, {
      action: "force-iframe",
    });
    expect(live.status).toBe(409);
    expect(live.body.code).toBe("STREAM_NOT_PLAYBACK");
    expect((await p().api<Json>("DELETE", `/streams/${streamId}`)).body.state).toBe("stopped");
  });
});
