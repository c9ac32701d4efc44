import { createHash, randomBytes } from "node:crypto";
import { CreateBucketCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  createDeviceHttpServer,
  type DeviceHttpServer,
} from "../../../edge-agent/http/device-http.ts";
import { createFirmwareRoute, parseRange } from "../../../edge-agent/http/firmware.ts";
import { createUpgradeProgress } from "../../../edge-agent/upgrades/progress.ts";
import { firmwareObjectKey } from "../../../lib/contracts/storage.ts";
import { mintFirmwareToken, type UpgradeProgressEvent } from "../../../lib/contracts/upgrades.ts";
import { LOCAL_CREDENTIALS, LOCAL_REGION } from "../../../lib/local/clients.ts";
import { type LocalFauxqs, startFauxqs } from "../../../lib/local/fauxqs.ts";

const key = randomBytes(32);
const bucket = "fw-test-media";
const image = randomBytes(300_000);
const firmwareId = "fw-1";

let fauxqs: LocalFauxqs;
let s3: S3Client;
beforeAll(async () => {
  fauxqs = await startFauxqs();
  s3 = new S3Client({
    region: LOCAL_REGION,
    endpoint: fauxqs.endpoint,
    credentials: LOCAL_CREDENTIALS,
    forcePathStyle: true,
  });
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  await s3.send(
    new PutObjectCommand({ Bucket: bucket, Key: firmwareObjectKey(firmwareId), Body: image }),
  );
});
afterAll(async () => {
  s3?.destroy();
  await fauxqs?.close();
});

let server: DeviceHttpServer | undefined;
let progress: ReturnType<typeof createUpgradeProgress> | undefined;
afterEach(async () => {
  progress?.close();
  await server?.close();
  server = undefined;
});

/** The /fw/ route on a real device HTTP port; DEV-A is online from 127.0.0.1, DEV-B elsewhere. */
async function serve() {
  const events: UpgradeProgressEvent[] = [];
  progress = createUpgradeProgress(
    { agentId: "agent-1", bytesIntervalMs: 60_000 },
    { sink: { emit: (e) => events.push(e) } },
  );
  const hosts: Record<string, string> = { "DEV-A": "127.0.0.1", "DEV-B": "10.1.2.3" };
  const route = createFirmwareRoute(
    { key, bucket },
    {
      s3: () => s3,
      sessions: { get: (id) => (hosts[id] ? { host: hosts[id] } : undefined) },
      progress,
    },
  );
  server = createDeviceHttpServer(
    { host: "127.0.0.1", port: 0 },
    { health: () => ({ ok: true }), routes: [route] },
  );
  const { port } = await server.start();
  const url = (deviceId: string, over: Partial<{ expiresAt: number; firmwareId: string }> = {}) =>
    `http://127.0.0.1:${port}/fw/${mintFirmwareToken(key, {
      deviceId,
      campaignId: "camp-1",
      firmwareId,
      expiresAt: Math.floor(Date.now() / 1000) + 600,
      attempt: 1,
      ...over,
    })}`;
  return { url, events, route };
}

const md5 = (b: Uint8Array) => createHash("md5").update(b).digest("hex");

describe("GET /fw/<token>", () => {
  it("streams the whole firmware to its device and reports the bytes served", async () => {
    const { url, events } = await serve();
    const r = await fetch(url("DEV-A"));
    expect(r.status).toBe(200);
    expect(r.headers.get("content-length")).toBe(String(image.length));
    expect(r.headers.get("accept-ranges")).toBe("bytes");
    expect(md5(new Uint8Array(await r.arrayBuffer()))).toBe(md5(image));
    await expect
      .poll(() => events.at(-1))
      .toMatchObject({
        kind: "bytes-served",
        deviceId: "DEV-A",
        campaignId: "camp-1",
        attempt: 1,
        agentId: "agent-1",
        bytes: image.length,
        totalBytes: image.length,
        reachedEnd: true,
      });
  });

  it("answers a Range with 206 and Content-Range; a resumed download adds up to the size", async () => {
    const { url, events } = await serve();
    const link = url("DEV-A");
    const head = await fetch(link, { headers: { range: "bytes=0-99999" } });
    expect(head.status).toBe(206);
    expect(head.headers.get("content-range")).toBe(`bytes 0-99999/${image.length}`);
    const first = Buffer.from(await head.arrayBuffer());
    expect(first.equals(image.subarray(0, 100_000))).toBe(true);
    await expect.poll(() => events.at(-1)).toMatchObject({ bytes: 100_000, reachedEnd: false });

    const rest = await fetch(link, { headers: { range: "bytes=100000-" } });
    expect(rest.status).toBe(206);
    expect(rest.headers.get("content-range")).toBe(
      `bytes 100000-${image.length - 1}/${image.length}`,
    );
    const second = Buffer.from(await rest.arrayBuffer());
    expect(Buffer.concat([first, second]).equals(image)).toBe(true);
    await expect
      .poll(() => events.at(-1))
      .toMatchObject({
        bytes: image.length,
        reachedEnd: true,
      });
  });

  it("answers 416 with the size for a range beyond the file", async () => {
    const { url, events } = await serve();
    const r = await fetch(url("DEV-A"), { headers: { range: `bytes=${image.length}-` } });
    expect(r.status).toBe(416);
    expect(r.headers.get("content-range")).toBe(`bytes */${image.length}`);
    expect(await r.json()).toMatchObject({ code: "RANGE_NOT_SATISFIABLE" });
    expect(events).toEqual([]);
  });

  it("refuses expired, tampered and foreign tokens with 403 and serves nothing", async () => {
    const { url, events, route } = await serve();
    const expired = await fetch(url("DEV-A", { expiresAt: Math.floor(Date.now() / 1000) - 1 }));
    expect(expired.status).toBe(403);
    expect(await expired.json()).toMatchObject({ code: "FIRMWARE_TOKEN_EXPIRED" });

    const good = url("DEV-A");
    const tampered = await fetch(`${good.slice(0, -3)}${good.endsWith("AAA") ? "BBB" : "AAA"}`);
    expect(tampered.status).toBe(403);
    expect(await tampered.json()).toMatchObject({ code: "FIRMWARE_TOKEN_INVALID" });

    // DEV-B's session is at another address; DEV-C has none on this agent.
    for (const device of ["DEV-B", "DEV-C"]) {
      const foreign = await fetch(url(device));
      expect(foreign.status, device).toBe(403);
      expect(await foreign.json()).toMatchObject({ code: "FIRMWARE_TOKEN_FOREIGN" });
    }
    expect(events).toEqual([]);
    expect(route.counters()).toMatchObject({
      served: 0,
      refusedExpired: 1,
      refusedInvalid: 1,
      refusedForeign: 2,
    });
  });

  it("answers 404 when the token's firmware has no object", async () => {
    const { url } = await serve();
    const r = await fetch(url("DEV-A", { firmwareId: "missing" }));
    expect(r.status).toBe(404);
    expect(await r.json()).toMatchObject({ code: "FIRMWARE_NOT_FOUND" });
  });
});

describe("Range header parsing", () => {
  it("accepts one range in its three forms and ignores others", () => {
    expect(parseRange("bytes=0-9", 100)).toEqual({ start: 0, end: 9 });
    expect(parseRange("bytes=90-", 100)).toEqual({ start: 90, end: 99 });
    expect(parseRange("bytes=-10", 100)).toEqual({ start: 90, end: 99 });
    expect(parseRange("bytes=50-500", 100)).toEqual({ start: 50, end: 99 });
    expect(parseRange("bytes=100-", 100)).toBe("unsatisfiable");
    expect(parseRange("bytes=0-1,5-6", 100)).toBeUndefined();
    expect(parseRange("items=0-1", 100)).toBeUndefined();
    expect(parseRange(undefined, 100)).toBeUndefined();
  });
});
