import { createHash } from "node:crypto";
import { request } from "node:http";
import { GetObjectCommand, ListObjectsV2Command, S3Client } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  createDeviceHttpServer,
  type DeviceHttpServer,
} from "../../../edge-agent/http/device-http.ts";
import { createUploadRoutes, type UploadRoutes } from "../../../edge-agent/http/uploads.ts";
import { type AlarmQueueMessage, MediaUploadedEvent } from "../../../lib/contracts/alarms.ts";
import { LOCAL_CREDENTIALS, LOCAL_REGION } from "../../../lib/local/clients.ts";
import { type LocalFauxqs, startFauxqs } from "../../../lib/local/fauxqs.ts";
import { ensureBucket } from "../../../lib/local/resources.ts";
import { uniquePrefix } from "../../helpers/local-backends.ts";

// ehome-2.0 §8 "Picture / video upload": POST /pictures, POST /videos on the picture server.

const JPEG = Buffer.concat([
  Buffer.from([0xff, 0xd8, 0xff, 0xe0]),
  Buffer.alloc(2000, 7),
  Buffer.from([0xff, 0xd9]),
]);
const MAX_PICTURE = 4096;

let fauxqs: LocalFauxqs;
let s3: S3Client;
let deadS3: S3Client;
let bucket: string;

interface Server {
  http: DeviceHttpServer;
  uploads: UploadRoutes;
  events: AlarmQueueMessage[];
  port: number;
}

async function startServer(
  opts: { s3?: S3Client; allowed?: boolean; maxConcurrentUploads?: number } = {},
): Promise<Server> {
  const events: AlarmQueueMessage[] = [];
  const uploads = createUploadRoutes(
    {
      agentId: "agent-u",
      bucket,
      maxPictureBytes: MAX_PICTURE,
      maxVideoBytes: 8 * 1024 * 1024,
      maxConcurrentUploads: opts.maxConcurrentUploads,
    },
    {
      s3: () => opts.s3 ?? s3,
      isDeviceAddress: (deviceId, host) =>
        (opts.allowed ?? true) && deviceId.startsWith("cam-") && host === "127.0.0.1",
      events: { emit: (e) => void events.push(e) },
      uuid: () => "ev-1",
    },
  );
  const http = createDeviceHttpServer(
    { host: "127.0.0.1", port: 0 },
    { health: () => ({ ok: true }), routes: uploads.routes },
  );
  const { port } = await http.start();
  return { http, uploads, events, port };
}

interface Answer {
  status: number;
  text: string;
}

/** POSTs `body` in chunks (no Content-Length unless given), resolving with the answer. */
function post(
  port: number,
  path: string,
  body: Buffer,
  headers: Record<string, string | number> = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path, method: "POST", headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () =>
        resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString() }),
      );
      res.on("error", reject);
    });
    // The server may answer early and close; a write error after that is expected.
    req.on("error", (err) => reject(err));
    for (let i = 0; i < body.length; i += 1024) req.write(body.subarray(i, i + 1024));
    req.end();
  });
}

async function keysUnder(prefix: string): Promise<string[]> {
  const out = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
  return (out.Contents ?? []).map((o) => o.Key!);
}

async function objectBytes(key: string): Promise<Buffer> {
  const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return Buffer.from(await out.Body!.transformToByteArray());
}

async function eventuallyTrue(probe: () => boolean): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error("condition not met within 5 s");
    await new Promise((r) => setTimeout(r, 20));
  }
}

const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");

let server: Server;

beforeAll(async () => {
  fauxqs = await startFauxqs();
  const common = { region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS, forcePathStyle: true };
  s3 = new S3Client({ ...common, endpoint: fauxqs.endpoint });
  // Nothing listens on port 9 (discard) locally: every call fails fast.
  deadS3 = new S3Client({ ...common, endpoint: "http://127.0.0.1:9", maxAttempts: 1 });
  bucket = uniquePrefix("media");
  await ensureBucket(s3, bucket);
  server = await startServer();
});

afterAll(async () => {
  await server?.http.close();
  s3?.destroy();
  deadS3?.destroy();
  await fauxqs?.close();
});

beforeEach(() => {
  server.events.length = 0;
});

describe("POST /pictures", () => {
  it("stores a raw JPEG under pictures/{device}/{yyyy}/{mm}/{dd}/{PicID}.jpg, answers 200 XML, then emits media-uploaded", async () => {
    const a = await post(
      server.port,
      "/pictures?DeviceID=cam-1&PicID=p-raw&Channel=2&Time=2026-01-02%2010:00:00",
      JPEG,
      {
        "content-type": "image/jpeg",
      },
    );
    expect(a.status).toBe(200);
    expect(a.text).toContain("<Status>200</Status>");
    expect(server.events).toHaveLength(1);
    const e = MediaUploadedEvent.parse(server.events[0]);
    expect(e).toMatchObject({
      type: "media-uploaded",
      kind: "picture",
      picId: "p-raw",
      deviceId: "cam-1",
      agentId: "agent-u",
      channel: 2,
      time: "2026-01-02 10:00:00",
      bucket,
      size: JPEG.length,
      contentType: "image/jpeg",
      sha256: sha256(JPEG),
    });
    expect(e.key).toMatch(/^pictures\/cam-1\/\d{4}\/\d{2}\/\d{2}\/p-raw\.jpg$/);
    expect(await objectBytes(e.key)).toEqual(JPEG);
  });

  it("takes the first file part of multipart/form-data, names from headers, byte-identical", async () => {
    const boundary = "----ehome-boundary-42";
    const body = Buffer.concat([
      Buffer.from(
        `--${boundary}\r\nContent-Disposition: form-data; name="note"\r\n\r\nhello\r\n` +
          `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="snap.jpg"\r\nContent-Type: image/jpeg\r\n\r\n`,
      ),
      JPEG,
      Buffer.from(
        `\r\n--${boundary}\r\nContent-Disposition: form-data; name="x"\r\n\r\ny\r\n--${boundary}--\r\n`,
      ),
    ]);
    const a = await post(server.port, "/pictures", body, {
      "content-type": `multipart/form-data; boundary=${boundary}`,
      deviceid: "cam-1",
      picid: "p-multi",
    });
    expect(a.status).toBe(200);
    const e = MediaUploadedEvent.parse(server.events[0]);
    expect(await objectBytes(e.key)).toEqual(JPEG);
    expect(e.size).toBe(JPEG.length);
  });

  it("refuses a picture over the cap with 413 (streamed, and by Content-Length) and leaves nothing", async () => {
    const big = Buffer.concat([JPEG, Buffer.alloc(MAX_PICTURE, 1)]);
    const streamed = await post(server.port, "/pictures?DeviceID=cam-1&PicID=p-big", big);
    expect(streamed.status).toBe(413);
    const declared = await post(server.port, "/pictures?DeviceID=cam-1&PicID=p-big2", big, {
      "content-length": big.length,
    });
    expect(declared.status).toBe(413);
    expect(await keysUnder("pictures/cam-1/")).not.toEqual(
      expect.arrayContaining([expect.stringContaining("p-big")]),
    );
    expect(server.events).toHaveLength(0);
    expect(server.uploads.counters().tooLarge).toBe(2);
  });

  it("refuses a body that is not a JPEG with 415 and leaves nothing", async () => {
    const png = Buffer.from("\x89PNG\r\n\x1a\n not a jpeg at all", "latin1");
    const a = await post(server.port, "/pictures?DeviceID=cam-1&PicID=p-png", png);
    expect(a.status).toBe(415);
    expect(a.text).toContain("<Status>415</Status>");
    expect((await keysUnder("pictures/cam-1/")).some((k) => k.includes("p-png"))).toBe(false);
    expect(server.events).toHaveLength(0);
  });

  it("refuses an upload from an address that is not the device's with 403", async () => {
    const a = await post(server.port, "/pictures?DeviceID=stranger&PicID=p-x", JPEG);
    expect(a.status).toBe(403);
    expect(server.uploads.counters().unknownAddress).toBeGreaterThan(0);
    expect(server.events).toHaveLength(0);
  });

  it("refuses an upload without DeviceID or PicID with 400", async () => {
    expect((await post(server.port, "/pictures?PicID=p-1", JPEG)).status).toBe(400);
    expect((await post(server.port, "/pictures?DeviceID=cam-1", JPEG)).status).toBe(400);
    const noFile = await post(
      server.port,
      "/pictures?DeviceID=cam-1&PicID=p-nofile",
      Buffer.from('--b\r\nContent-Disposition: form-data; name="a"\r\n\r\nx\r\n--b--\r\n'),
      {
        "content-type": "multipart/form-data; boundary=b",
      },
    );
    expect(noFile.status).toBe(400);
  });

  it("answers 503 (never 200) when S3 fails, and emits nothing", async () => {
    const down = await startServer({ s3: deadS3 });
    try {
      const a = await post(down.port, "/pictures?DeviceID=cam-1&PicID=p-down", JPEG);
      expect(a.status).toBe(503);
      expect(down.events).toHaveLength(0);
      expect(down.uploads.counters().storageFailed).toBe(1);
    } finally {
      await down.http.close();
    }
  });
});

describe("an upload the device abandons", () => {
  it("is counted as aborted (not a storage failure), stores nothing and emits nothing", async () => {
    const before = server.uploads.counters();
    await new Promise<void>((resolve) => {
      const req = request({
        host: "127.0.0.1",
        port: server.port,
        method: "POST",
        path: "/videos?DeviceID=cam-3&VideoId=v-gone",
        headers: { "content-length": 1024 * 1024 },
      });
      req.on("error", () => resolve());
      req.write(Buffer.alloc(64 * 1024, 3), () => setTimeout(() => req.destroy(), 50));
    });
    await eventuallyTrue(() => server.uploads.counters().aborted > before.aborted);
    expect(server.uploads.counters().storageFailed).toBe(before.storageFailed);
    expect(await keysUnder("videos/cam-3/")).toEqual([]);
    expect(server.events).toHaveLength(0);
  });
});

describe("concurrent uploads", () => {
  it("beyond maxConcurrentUploads are answered 503 (retry), the running one completes", async () => {
    const one = await startServer({ maxConcurrentUploads: 1 });
    try {
      const req = request({
        host: "127.0.0.1",
        port: one.port,
        method: "POST",
        path: "/pictures?DeviceID=cam-4&PicID=p-slow",
        headers: { "content-length": JPEG.length },
      });
      const answer = new Promise<Answer>((resolve, reject) => {
        req.on("response", (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () =>
            resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString() }),
          );
        });
        req.on("error", reject);
      });
      req.write(JPEG.subarray(0, 100));
      await eventuallyTrue(() => one.uploads.counters().inFlight === 1);
      const busy = await post(one.port, "/pictures?DeviceID=cam-4&PicID=p-second", JPEG);
      expect(busy.status).toBe(503);
      req.end(JPEG.subarray(100));
      expect((await answer).status).toBe(200);
      expect(one.uploads.counters()).toMatchObject({ busy: 1, accepted: 1, inFlight: 0 });
    } finally {
      await one.http.close();
    }
  });
});

describe("POST /videos", () => {
  it("streams a video larger than one S3 part through a multipart upload", async () => {
    const video = Buffer.alloc(6 * 1024 * 1024);
    for (let i = 0; i < video.length; i += 4096) video[i] = i % 251;
    const a = await post(server.port, "/videos?DeviceID=cam-2&VideoId=v-1&Channel=1", video, {
      "content-type": "video/mp2p",
      "content-length": video.length,
    });
    expect(a.status).toBe(200);
    const e = MediaUploadedEvent.parse(server.events[0]);
    expect(e).toMatchObject({
      kind: "video",
      videoId: "v-1",
      size: video.length,
      contentType: "video/mp2p",
    });
    expect(e.key).toMatch(/^videos\/cam-2\/\d{4}\/\d{2}\/\d{2}\/v-1\.ps$/);
    expect(sha256(await objectBytes(e.key))).toBe(sha256(video));
  });
});
