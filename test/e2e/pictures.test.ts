import { describe, expect, it } from "vitest";
import {
  parseStoredPictureName,
  STORED_PICTURE_PERIOD_MS,
  storedPicture,
  storedPictureBytes,
} from "../../edge-agent/simulator/stored-pictures.ts";
import { freePort } from "../../lib/local/net.ts";
import { eventually, usePlatform } from "./helpers/platform.ts";

/**
 * Pictures stored on a simulated device, end to end on the platform `npm start` composes
 * (ehome-2.0 §8 rows QUERYPICTURES and UPLOADPIC): the API's search reaches the device through
 * the agent, paged by StartIdx; a fetch is a capture whose UPLOADPIC makes the device upload the
 * stored file to the agent's picture server, into S3, and the presigned URL serves those bytes.
 */

// The agent announces EHOME_HTTP_PORT as PictureServerPort as configured: pick a free one.
const httpPort = await freePort();
const p = usePlatform({
  agentEnv: { EHOME_KEEPALIVE_SECONDS: "2", EHOME_HTTP_PORT: String(httpPort) },
});

// biome-ignore lint/suspicious/noExplicitAny: response JSON is navigated freely; assertions check it
type Json = any;

async function onlineDevice(idPrefix: string) {
  const sim = await p().simulator({ devices: 1, idPrefix, channels: 2 });
  await sim.start();
  await sim.waitFor("all-online", 10_000);
  const deviceId = sim.devices[0]!.id;
  // Online, and its channel count learned (the API refuses channels beyond it).
  await eventually(async () => {
    const res = await p().api<Json>("GET", `/devices/${deviceId}`);
    return res.body.status === "online" && res.body.channelCount === 2 ? true : undefined;
  });
  return { sim, deviceId };
}

describe("pictures stored on a simulated device", () => {
  it("search pages through the device's pictures; fetch → UPLOADPIC → upload → a presigned URL serving the exact stored bytes", async () => {
    const { sim, deviceId } = await onlineDevice("e2e-pics-");
    const start = "2026-03-01T00:00:00";
    const end = "2026-03-02T23:59:59";
    const base = `/devices/${deviceId}/pictures?channel=2&start=${start}&end=${end}&limit=5`;
    const listed: Json[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const res = await p().api<Json>("GET", cursor ? `${base}&cursor=${cursor}` : base);
      expect(res.status).toBe(200);
      listed.push(...res.body.items);
      cursor = res.body.nextCursor;
      pages++;
    } while (cursor && pages < 10);
    const firstSlot = Date.UTC(2026, 2, 1) / STORED_PICTURE_PERIOD_MS;
    const expected = Array.from({ length: 12 }, (_, i) => storedPicture(2, firstSlot + i));
    expect(listed).toEqual(
      expected.map((f) => ({ channel: 2, fileName: f.fileName, time: f.time, size: f.size })),
    );
    expect(pages).toBe(3);

    for (const item of [listed[0], listed[7]]) {
      const res = await p().api<Json>("POST", `/devices/${deviceId}/pictures/fetch?wait=15`, {
        channel: 2,
        fileName: item.fileName,
      });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ state: "ready", fileName: item.fileName, channel: 2 });
      expect(res.body.picture.size).toBe(item.size);
      const bytes = Buffer.from(await (await fetch(res.body.picture.url)).arrayBuffer());
      const file = parseStoredPictureName(item.fileName, 2)!;
      expect(bytes.equals(storedPictureBytes(file))).toBe(true);
      // The same capture, read again.
      const again = await p().api<Json>("GET", `/captures/${res.body.captureId}`);
      expect(again.body).toMatchObject({ state: "ready", fileName: item.fileName });
    }
    expect(sim.stats().storedPicturesUploaded).toBe(2);
  }, 60_000);

  it("bad input: unknown device 404, a channel the device lacks or a bad file name 422 (nothing sent); a file the device lacks ends device-error", async () => {
    const { sim, deviceId } = await onlineDevice("e2e-pics-bad-");
    const before = sim.devices[0]!.commands.length;
    const q = "start=2026-03-01T00:00:00&end=2026-03-02T00:00:00";
    const refused: Array<[string, string, unknown, number]> = [
      ["GET", `/devices/e2e-nobody/pictures?channel=1&${q}`, undefined, 404],
      ["GET", `/devices/${deviceId}/pictures?channel=3&${q}`, undefined, 422],
      ["POST", "/devices/e2e-nobody/pictures/fetch", { channel: 1, fileName: "ch0001_1" }, 404],
      [
        "POST",
        `/devices/${deviceId}/pictures/fetch`,
        { channel: 3, fileName: "ch0003_00000000000000001" },
        422,
      ],
      ["POST", `/devices/${deviceId}/pictures/fetch`, { channel: 1, fileName: "../x y" }, 422],
    ];
    for (const [method, path, body, status] of refused) {
      const res = await p().api<Json>(method, path, body);
      expect(res.status, `${method} ${path}`).toBe(status);
    }
    expect(sim.devices[0]!.commands.length).toBe(before);

    // Well-formed, but not on the device (in its future): UPLOADPIC answered 400.
    const future = storedPicture(1, Math.ceil(Date.now() / STORED_PICTURE_PERIOD_MS) + 100);
    const res = await p().api<Json>("POST", `/devices/${deviceId}/pictures/fetch?wait=10`, {
      channel: 1,
      fileName: future.fileName,
    });
    expect(res.status).toBe(502);
    expect(res.body.code).toBe("DEVICE_ERROR");
    expect(res.body.details.capture).toMatchObject({ state: "device-error" });
    expect(res.body.details.capture.reason).toContain("UPLOADPIC");
    expect(sim.stats().storedPicturesUploaded).toBe(0);
  }, 60_000);
});
