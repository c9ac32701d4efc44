import { createServer, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { S3Client } from "@aws-sdk/client-s3";
import { afterEach, describe, expect, it } from "vitest";
import {
  createDeviceHttpServer,
  type DeviceHttpServer,
} from "../../../edge-agent/http/device-http.ts";
import { createUploadRoutes, type UploadRoutes } from "../../../edge-agent/http/uploads.ts";
import type { AlarmQueueMessage } from "../../../lib/contracts/alarms.ts";
import { LOCAL_CREDENTIALS, LOCAL_REGION } from "../../../lib/local/clients.ts";

/**
 * Uploads when S3 cannot take them (issue 7 item 1) and per-address upload limits (item 3):
 * unreachable S3 (a closed port, the SDK's default retries) and throttling S3 (503 SlowDown on
 * every call) both answer 503 with Retry-After and emit nothing; beyond the rate, 429 with
 * Retry-After before anything reaches S3.
 */

const JPEG = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.alloc(2000, 7)]);
const common = { region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS, forcePathStyle: true };

interface Answer {
  status: number;
  retryAfter: string | undefined;
  text: string;
}

function post(port: number, path: string, body: Buffer): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path, method: "POST" }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () =>
        resolve({
          status: res.statusCode ?? 0,
          retryAfter: res.headers["retry-after"] as string | undefined,
          text: Buffer.concat(chunks).toString(),
        }),
      );
    });
    req.on("error", reject);
    req.end(body);
  });
}

const closers: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

async function startUploads(
  s3: S3Client,
  extra: { ratePerAddress?: number; limitLoopback?: boolean } = {},
): Promise<{ port: number; uploads: UploadRoutes; events: AlarmQueueMessage[]; s3Calls: number }> {
  const events: AlarmQueueMessage[] = [];
  const state = { s3Calls: 0 };
  const uploads = createUploadRoutes(
    {
      agentId: "agent-u",
      bucket: "media",
      maxPictureBytes: 64 * 1024,
      maxVideoBytes: 1 << 20,
      ...extra,
    },
    {
      s3: () => {
        state.s3Calls++;
        return s3;
      },
      isDeviceAddress: (_id, host) => host === "127.0.0.1",
      events: { emit: (e) => void events.push(e) },
    },
  );
  const http: DeviceHttpServer = createDeviceHttpServer(
    { host: "127.0.0.1", port: 0 },
    { health: () => ({ ok: true }), routes: uploads.routes },
  );
  const { port } = await http.start();
  closers.push(() => http.close());
  return {
    port,
    uploads,
    events,
    get s3Calls() {
      return state.s3Calls;
    },
  };
}

/** A port nothing listens on: bind one, then close it. */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, "127.0.0.1", resolve));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

describe("uploads when S3 is down", () => {
  it("answers 503 with Retry-After when S3 is unreachable (after the SDK's retries), never 200", async () => {
    const s3 = new S3Client({ ...common, endpoint: `http://127.0.0.1:${await closedPort()}` });
    closers.push(() => s3.destroy());
    const u = await startUploads(s3);
    for (const path of [
      "/pictures?DeviceID=cam-1&PicID=p-1",
      "/videos?DeviceID=cam-1&VideoID=v-1",
    ]) {
      const a = await post(u.port, path, JPEG);
      expect(a.status).toBe(503);
      expect(a.retryAfter).toBe("5");
      expect(a.text).toContain("<Status>503</Status>");
    }
    expect(u.events).toEqual([]);
    expect(u.uploads.counters()).toMatchObject({ storageFailed: 2, accepted: 0 });
  });

  it("answers 503 with Retry-After when S3 throttles every call (SlowDown)", async () => {
    let s3Requests = 0;
    const throttling: Server = createServer((req, res) => {
      s3Requests++;
      req.resume();
      const body =
        '<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>' +
        "<Message>Please reduce your request rate.</Message></Error>";
      res.writeHead(503, { "content-type": "application/xml", "content-length": body.length });
      res.end(body);
    });
    await new Promise<void>((resolve) => throttling.listen(0, "127.0.0.1", resolve));
    closers.push(
      () =>
        new Promise<void>((resolve) => {
          throttling.closeAllConnections();
          throttling.close(() => resolve());
        }),
    );
    const { port } = throttling.address() as AddressInfo;
    const s3 = new S3Client({ ...common, endpoint: `http://127.0.0.1:${port}`, maxAttempts: 2 });
    closers.push(() => s3.destroy());
    const u = await startUploads(s3);
    const a = await post(u.port, "/pictures?DeviceID=cam-1&PicID=p-slow", JPEG);
    expect(a.status).toBe(503);
    expect(a.retryAfter).toBe("5");
    expect(s3Requests).toBeGreaterThanOrEqual(1);
    expect(u.events).toEqual([]);
  });
});

describe("upload rate per address", () => {
  it("refuses uploads beyond the bucket with 429 and Retry-After, before touching S3", async () => {
    const s3 = new S3Client({
      ...common,
      endpoint: `http://127.0.0.1:${await closedPort()}`,
      maxAttempts: 1,
    });
    closers.push(() => s3.destroy());
    // 1 per second, a bucket of 5.
    const u = await startUploads(s3, { ratePerAddress: 1, limitLoopback: true });
    const answers: Answer[] = [];
    for (let i = 0; i < 8; i++) {
      answers.push(await post(u.port, `/pictures?DeviceID=cam-1&PicID=p-${i}`, JPEG));
    }
    const limited = answers.filter((a) => a.status === 429);
    expect(limited.length).toBeGreaterThanOrEqual(2);
    expect(limited.length).toBeLessThanOrEqual(3);
    expect(Number(limited[0]!.retryAfter)).toBeGreaterThanOrEqual(1);
    expect(u.uploads.counters().rateLimited).toBe(limited.length);
    // The refused ones never reached S3 (the others did, and failed: S3 is down here).
    expect(u.s3Calls).toBe(8 - limited.length);
  });

  it("exempts loopback by default and is off at 0", async () => {
    const s3 = new S3Client({
      ...common,
      endpoint: `http://127.0.0.1:${await closedPort()}`,
      maxAttempts: 1,
    });
    closers.push(() => s3.destroy());
    const u = await startUploads(s3, { ratePerAddress: 1 });
    for (let i = 0; i < 8; i++) {
      const a = await post(u.port, `/pictures?DeviceID=cam-1&PicID=p-${i}`, JPEG);
      expect(a.status).toBe(503);
    }
    expect(u.uploads.counters().rateLimited).toBe(0);
  });
});
