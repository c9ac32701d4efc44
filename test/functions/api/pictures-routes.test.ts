import { PutObjectCommand } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AgentRecord } from "../../../lib/contracts/agent-messages.ts";
import { useLocalBackends } from "../../helpers/local-backends.ts";
import { pictureEvent } from "../alarms/fixtures.ts";
import { type ApiHarness, createApiHarness, deviceEvent, type Json } from "./harness.ts";

/**
 * Stored pictures on the local backends (ehome-2.0 §8 rows QUERYPICTURES and UPLOADPIC): the
 * search is a waited `picture-search` command whose result becomes a page with an opaque cursor;
 * the fetch is a capture whose command is `picture-fetch`. The agent is played by draining its
 * queue and answering through the command-results and alarm-events handlers.
 */
const backends = useLocalBackends();
let api: ApiHarness;
let agent: AgentRecord;

beforeAll(async () => {
  api = createApiHarness(backends());
  agent = await api.startAgent("agent-pics");
  await api.deviceEvents(
    deviceEvent("cam-pics", 1, { type: "registered", address: "198.51.100.9:5000" }, "agent-pics"),
    deviceEvent("cam-pics", 2, { type: "device-info", channelCount: 2 }, "agent-pics"),
  );
});
afterAll(() => api?.close());

/** Plays the agent: waits for the next command on its queue. */
async function nextCommand() {
  for (let i = 0; i < 100; i++) {
    const [message] = await api.drainAgentQueue(agent);
    if (message?.kind === "command") return message;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error("no command on the agent queue");
}

const result = (commandId: string, value: unknown) =>
  api.commandResult({
    commandId,
    deviceId: "cam-pics",
    agentId: "agent-pics",
    state: "succeeded",
    result: value,
    at: new Date().toISOString(),
  });

const PICTURES = [
  { fileName: "ch0002_00000000000123000", time: "2026-02-01 00:00:00", size: 20001 },
  { fileName: "ch0002_00000000000123001", time: "2026-02-01 04:00:00", size: 20002 },
  { fileName: "ch0002_00000000000123002", time: "2026-02-01 08:00:00", size: 20003 },
];

describe("GET /devices/{deviceId}/pictures", () => {
  it("waits for the agent's picture-search and pages on with nextCursor from where it stopped", async () => {
    await api.drainAgentQueue(agent);
    const path =
      "/devices/cam-pics/pictures?channel=2&start=2026-02-01T00:00:00&end=2026-02-02%2000:00:00&limit=3";
    const pending = api.request("GET", path);
    const command = await nextCommand();
    expect(command).toMatchObject({
      type: "picture-search",
      params: {
        channel: 2,
        startTime: "2026-02-01 00:00:00",
        stopTime: "2026-02-02 00:00:00",
        startIdx: 0,
        limit: 3,
      },
    });
    await result(command.commandId, { pictures: PICTURES, nextIdx: 3, pages: 1, unparsed: 0 });
    const page = await pending;
    expect(page.status).toBe(200);
    expect(page.body.items).toEqual(PICTURES.map((p) => ({ channel: 2, ...p })));
    expect(typeof page.body.nextCursor).toBe("string");

    const second = api.request("GET", `${path}&cursor=${page.body.nextCursor}`);
    const next = await nextCommand();
    expect(next.params).toMatchObject({ startIdx: 3, limit: 3 });
    await result(next.commandId, { pictures: [], pages: 1, unparsed: 0 });
    const last = await second;
    expect(last.status).toBe(200);
    expect(last.body).toEqual({ items: [] });
  });

  it("refuses bad input with a clear 4xx before any command is sent", async () => {
    await api.drainAgentQueue(agent);
    const q = "start=2026-02-01T00:00:00&end=2026-02-02T00:00:00";
    const cases: Array<[string, number, string]> = [
      [`/devices/nobody/pictures?channel=1&${q}`, 404, "DEVICE_NOT_FOUND"],
      [`/devices/cam-pics/pictures?channel=3&${q}`, 422, "VALIDATION_FAILED"],
      [`/devices/cam-pics/pictures?channel=0&${q}`, 422, "VALIDATION_FAILED"],
      [`/devices/cam-pics/pictures?channel=x&${q}`, 422, "VALIDATION_FAILED"],
      [`/devices/cam-pics/pictures?${q}`, 422, "VALIDATION_FAILED"],
      [
        "/devices/cam-pics/pictures?channel=1&start=2026-02-31T00:00:00&end=2026-03-01T00:00:00",
        422,
        "VALIDATION_FAILED",
      ],
      [
        "/devices/cam-pics/pictures?channel=1&start=yesterday&end=2026-03-01T00:00:00",
        422,
        "VALIDATION_FAILED",
      ],
      [
        "/devices/cam-pics/pictures?channel=1&start=2026-02-02T00:00:00&end=2026-02-01T00:00:00",
        422,
        "VALIDATION_FAILED",
      ],
      [`/devices/cam-pics/pictures?channel=1&${q}&limit=1000`, 422, "VALIDATION_FAILED"],
      [`/devices/cam-pics/pictures?channel=1&${q}&cursor=bm9wZQ`, 422, "VALIDATION_FAILED"],
    ];
    // A cursor of another listing (other channel) is refused too.
    const other = Buffer.from(JSON.stringify({ s: "pictures:cam-pics:2:x:y", k: { i: 3 } }));
    cases.push([
      `/devices/cam-pics/pictures?channel=1&${q}&cursor=${other.toString("base64url")}`,
      422,
      "VALIDATION_FAILED",
    ]);
    for (const [path, status, code] of cases) {
      const res = await api.request("GET", path);
      expect(res.status, path).toBe(status);
      expect(res.body.code, path).toBe(code);
    }
    expect(await api.drainAgentQueue(agent)).toEqual([]);
  });
});

describe("POST /devices/{deviceId}/pictures/fetch", () => {
  it("is a capture whose command is picture-fetch (UPLOADPIC with the capture id as PicID); the upload makes it ready", async () => {
    await api.drainAgentQueue(agent);
    const fileName = PICTURES[1]!.fileName;
    const created = await api.request("POST", "/devices/cam-pics/pictures/fetch", {
      channel: 2,
      fileName,
    });
    expect(created.status).toBe(202);
    const capture: Json = created.body;
    expect(capture).toMatchObject({ deviceId: "cam-pics", channel: 2, fileName, state: "pending" });
    expect(capture.picId).toBe(capture.captureId);
    const command = await nextCommand();
    expect(command).toMatchObject({
      type: "picture-fetch",
      commandId: capture.commandId,
      params: { channel: 2, fileName, picId: capture.picId },
    });

    const bytes = Buffer.from([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3, 0xff, 0xd9]);
    const { bucket } = backends().resources;
    const key = `pictures/cam-pics/${capture.picId}.jpg`;
    await backends().clients.s3.send(
      new PutObjectCommand({ Bucket: bucket, Key: key, Body: bytes, ContentType: "image/jpeg" }),
    );
    await result(command.commandId, { picId: capture.picId, channel: 2, fileName });
    await api.alarmEvents({ ...pictureEvent("cam-pics", capture.picId, key), bucket, size: 9 });

    const ready = await api.request("GET", `/captures/${capture.captureId}`);
    expect(ready.body).toMatchObject({ state: "ready", fileName, picture: { size: 9 } });
    const got = Buffer.from(await (await fetch(ready.body.picture.url)).arrayBuffer());
    expect(got.equals(bytes)).toBe(true);
  });

  it("a failed UPLOADPIC makes the capture device-error naming UPLOADPIC", async () => {
    await api.drainAgentQueue(agent);
    const created = await api.request("POST", "/devices/cam-pics/pictures/fetch", {
      channel: 1,
      fileName: "ch0001_00000000000000001",
    });
    const command = await nextCommand();
    await api.commandResult({
      commandId: command.commandId,
      deviceId: "cam-pics",
      agentId: "agent-pics",
      state: "failed",
      error: { code: "DEVICE_ERROR", message: "no such file", status: 400 },
      at: new Date().toISOString(),
    });
    const read = await api.request("GET", `/captures/${created.body.captureId}`);
    expect(read.body).toMatchObject({ state: "device-error" });
    expect(read.body.reason).toContain("UPLOADPIC failed: no such file");
  });

  it("refuses bad input with a clear 4xx before anything is recorded or sent", async () => {
    await api.drainAgentQueue(agent);
    const good = "ch0001_00000000000000001";
    const cases: Array<[string, unknown, number, string]> = [
      ["/devices/nobody/pictures/fetch", { channel: 1, fileName: good }, 404, "DEVICE_NOT_FOUND"],
      [
        "/devices/cam-pics/pictures/fetch",
        { channel: 3, fileName: good },
        422,
        "VALIDATION_FAILED",
      ],
      [
        "/devices/cam-pics/pictures/fetch",
        { channel: 0, fileName: good },
        422,
        "VALIDATION_FAILED",
      ],
      ["/devices/cam-pics/pictures/fetch", { channel: 1 }, 422, "VALIDATION_FAILED"],
      [
        "/devices/cam-pics/pictures/fetch",
        { channel: 1, fileName: "../../etc/passwd" },
        422,
        "VALIDATION_FAILED",
      ],
      [
        "/devices/cam-pics/pictures/fetch",
        { channel: 1, fileName: "a b<c>" },
        422,
        "VALIDATION_FAILED",
      ],
      [
        "/devices/cam-pics/pictures/fetch",
        { channel: 1, fileName: "x".repeat(200) },
        422,
        "VALIDATION_FAILED",
      ],
      [
        "/devices/cam-pics/pictures/fetch",
        { channel: 1, fileName: good, picId: "mine" },
        422,
        "VALIDATION_FAILED",
      ],
    ];
    for (const [path, body, status, code] of cases) {
      const res = await api.request("POST", path, body);
      expect(res.status, JSON.stringify(body)).toBe(status);
      expect(res.body.code, JSON.stringify(body)).toBe(code);
    }
    expect(await api.drainAgentQueue(agent)).toEqual([]);
  });
});
