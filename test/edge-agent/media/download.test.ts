import { PassThrough } from "node:stream";
import {
  GetObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  S3Client,
} from "@aws-sdk/client-s3";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { downloadObjectKey } from "../../../lib/contracts/media.ts";
import { LOCAL_CREDENTIALS, LOCAL_REGION } from "../../../lib/local/clients.ts";
import { type LocalFauxqs, startFauxqs } from "../../../lib/local/fauxqs.ts";
import { ensureBucket } from "../../../lib/local/resources.ts";
import { uniquePrefix } from "../../helpers/local-backends.ts";
import { type MediaRig, startMediaRig, until } from "./helpers/media-rig.ts";

// ehome-2.0 §8 Download row: DOWNLOAD (Channel, FileName, SinkIP, SinkPort); the device pushes the
// whole file, then closes. Issue 4 item 6: streamed into S3 with a multipart upload.

let fauxqs: LocalFauxqs;
let s3: S3Client;
let bucket: string;
let rig: MediaRig | undefined;
/** S3 calls by command name. */
const calls = new Map<string, number>();

beforeAll(async () => {
  fauxqs = await startFauxqs();
  s3 = new S3Client({
    region: LOCAL_REGION,
    credentials: LOCAL_CREDENTIALS,
    forcePathStyle: true,
    endpoint: fauxqs.endpoint,
  });
  s3.middlewareStack.add(
    (next, context) => (args) => {
      calls.set(context.commandName!, (calls.get(context.commandName!) ?? 0) + 1);
      return next(args);
    },
    { step: "initialize" },
  );
  bucket = uniquePrefix("media");
  await ensureBucket(s3, bucket);
});

afterAll(async () => {
  s3?.destroy();
  await fauxqs?.close();
});

afterEach(async () => {
  await rig?.close(); // checks the pool is full again
  rig = undefined;
  calls.clear();
});

async function objectBytes(key: string): Promise<Buffer> {
  const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return Buffer.from(await out.Body!.transformToByteArray());
}

/** 6.5 MiB of raw PS-looking bytes (a pack header first, so the de-framer passes it through). */
function file(size: number): Buffer {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i++) b[i] = (i * 131 + (i >> 9)) & 0xff;
  b.set([0, 0, 1, 0xba], 0);
  return b;
}

const spec = (streamId: string) => ({
  streamId,
  kind: "download" as const,
  channel: 1,
  file: "ch0001_00000000001000000",
  transport: "tcp" as const,
});

describe("download to S3", () => {
  it("a file larger than one part lands byte-identical through a multipart upload; completed carries key and size", async () => {
    rig = await startMediaRig({
      config: { download: { bucket } },
      deps: { s3: () => s3 },
    });
    const r = rig;
    const body = file(6.5 * 1024 * 1024);
    r.device.scripts.download = [
      {
        push: async (s) => {
          for (let i = 0; i < body.length; i += 64 * 1024) {
            if (!s.write(body.subarray(i, i + 64 * 1024))) {
              await new Promise((res) => s.once("drain", res));
            }
          }
          s.end();
        },
      },
    ];
    const started = await r.manager.startStream(r.device.deviceId, spec("dl-1"));
    expect(started.kind).toBe("ok");
    expect(r.device.requestsOf("download")[0]!.fields).toMatchObject({
      channel: "1",
      fileName: "ch0001_00000000001000000",
      sinkIp: "127.0.0.1",
    });
    await until(() => r.eventsOf("dl-1").some((e) => e.state === "completed"), 15_000);
    const key = downloadObjectKey(r.device.deviceId, "dl-1");
    const done = r.eventsOf("dl-1").at(-1)!;
    expect(done.object).toEqual({ key, bytes: body.length });
    expect(done.counters.bytesIn).toBe(body.length);
    expect((await objectBytes(key)).equals(body)).toBe(true);
    expect(calls.get("CreateMultipartUploadCommand")).toBe(1);
    expect(calls.get("UploadPartCommand")).toBe(2);
    expect(calls.get("CompleteMultipartUploadCommand")).toBe(1);
    // A download has no viewers.
    expect(r.manager.attachViewer("dl-1", r.device.deviceId, "ps", new PassThrough())).toBe(
      "ended",
    );
    await until(() => r.pool.available() === r.pool.size);
  }, 30_000);

  it("a connection that breaks mid-file fails the download and leaves nothing in S3", async () => {
    rig = await startMediaRig({
      config: { download: { bucket } },
      deps: { s3: () => s3 },
    });
    const r = rig;
    const body = file(6 * 1024 * 1024);
    r.device.scripts.download = [
      {
        push: async (s) => {
          s.write(body.subarray(0, 5.5 * 1024 * 1024));
          await new Promise((res) => setTimeout(res, 100));
          s.resetAndDestroy();
        },
      },
    ];
    await r.manager.startStream(r.device.deviceId, spec("dl-2"));
    await until(() => r.eventsOf("dl-2").some((e) => e.state === "failed"), 15_000);
    expect(r.eventsOf("dl-2").at(-1)!.reason?.code).toBe("MEDIA_SOCKET_ERROR");
    const prefix = `downloads/${r.device.deviceId}/dl-2`;
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
    expect(listed.Contents ?? []).toHaveLength(0);
    await until(
      () =>
        calls.get("AbortMultipartUploadCommand") === 1 ||
        !calls.has("CreateMultipartUploadCommand"),
    );
    const open = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
    expect((open.Uploads ?? []).filter((u) => u.Key?.startsWith(prefix))).toHaveLength(0);
  }, 30_000);

  it("stopping a download aborts the upload (stopped, nothing stored)", async () => {
    rig = await startMediaRig({
      config: { download: { bucket } },
      deps: { s3: () => s3 },
    });
    const r = rig;
    r.device.scripts.download = [{ push: (s) => void s.write(file(1024 * 1024)) }];
    await r.manager.startStream(r.device.deviceId, spec("dl-3"));
    await until(() =>
      r.eventsOf("dl-3").some((e) => e.counters.bytesIn > 0 || e.state === "active"),
    );
    expect(await r.manager.stopStream("dl-3")).toMatchObject({ kind: "ok" });
    expect(r.eventsOf("dl-3").at(-1)).toMatchObject({
      state: "stopped",
      reason: { code: "STOPPED" },
    });
    const listed = await s3.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: `downloads/${r.device.deviceId}/dl-3` }),
    );
    expect(listed.Contents ?? []).toHaveLength(0);
  }, 30_000);

  it("a slow S3 pauses the device's socket (backpressure) and the file still lands whole", async () => {
    // Every part upload waits 300 ms: S3 is slower than the device.
    const slow = new S3Client({
      region: LOCAL_REGION,
      credentials: LOCAL_CREDENTIALS,
      forcePathStyle: true,
      endpoint: fauxqs.endpoint,
    });
    slow.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === "UploadPartCommand") {
          await new Promise((res) => setTimeout(res, 300));
        }
        return next(args);
      },
      { step: "initialize" },
    );
    rig = await startMediaRig({
      config: { download: { bucket, queueSize: 1 } },
      deps: { s3: () => slow },
    });
    const r = rig;
    const body = file(16 * 1024 * 1024);
    r.device.scripts.download = [
      {
        push: async (s) => {
          for (let i = 0; i < body.length; i += 256 * 1024) {
            if (!s.write(body.subarray(i, i + 256 * 1024))) {
              await new Promise((res) => s.once("drain", res));
            }
          }
          s.end();
        },
      },
    ];
    await r.manager.startStream(r.device.deviceId, spec("dl-4"));
    await until(() => r.eventsOf("dl-4").some((e) => e.state === "completed"), 20_000);
    expect(r.manager.counters().downloadPauses).toBeGreaterThan(0);
    const key = downloadObjectKey(r.device.deviceId, "dl-4");
    expect((await objectBytes(key)).equals(body)).toBe(true);
    slow.destroy();
  }, 30_000);

  it("S3 failing fails the download (MEDIA_UPLOAD_FAILED) and frees the port", async () => {
    // Nothing listens on port 9 (discard) locally: every call fails fast.
    const dead = new S3Client({
      region: LOCAL_REGION,
      credentials: LOCAL_CREDENTIALS,
      forcePathStyle: true,
      endpoint: "http://127.0.0.1:9",
      maxAttempts: 1,
    });
    rig = await startMediaRig({ config: { download: { bucket } }, deps: { s3: () => dead } });
    const r = rig;
    const body = file(7 * 1024 * 1024);
    r.device.scripts.download = [
      {
        push: async (s) => {
          s.write(body);
          s.end();
        },
      },
    ];
    await r.manager.startStream(r.device.deviceId, spec("dl-5"));
    await until(() => r.eventsOf("dl-5").some((e) => e.state === "failed"), 15_000);
    expect(r.eventsOf("dl-5").at(-1)!.reason?.code).toBe("MEDIA_UPLOAD_FAILED");
    expect(r.manager.counters().downloadsFailed).toBe(1);
    await until(() => r.pool.available() === r.pool.size);
    dead.destroy();
  }, 30_000);
});
