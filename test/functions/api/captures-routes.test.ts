import { PutObjectCommand } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AgentRecord } from "../../../lib/contracts/agent-messages.ts";
import { useLocalBackends } from "../../helpers/local-backends.ts";
import { pictureEvent } from "../alarms/fixtures.ts";
import { type ApiHarness, createApiHarness, deviceEvent } from "./harness.ts";

/**
 * Capture lifecycle on the local backends: the api function, the agent played by draining its
 * queue and answering through the command-results and alarm-events handlers.
 */
const backends = useLocalBackends();
let api: ApiHarness;
let agent: AgentRecord;

beforeAll(async () => {
  api = createApiHarness(backends());
  agent = await api.startAgent("agent-cap");
  await api.deviceEvents(
    deviceEvent("cam-cap", 1, { type: "registered", address: "198.51.100.9:5000" }, "agent-cap"),
    deviceEvent("cam-gone", 1, { type: "registered", address: "198.51.100.8:5000" }, "agent-cap"),
    deviceEvent("cam-gone", 2, { type: "offline", reason: "keepalive-timeout" }, "agent-cap"),
  );
});
afterAll(() => api?.close());

/** Plays the agent: takes the capture command off its queue and returns it. */
async function takeCaptureCommand() {
  const [message, ...rest] = await api.drainAgentQueue(agent);
  expect(rest).toEqual([]);
  if (message?.kind !== "command") throw new Error("no command on the agent queue");
  return message;
}

const JPEG = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.from("capture bytes")]);

describe("POST /devices/{deviceId}/captures", () => {
  it("sends MANUALSNAP's capture command with a short platform-chosen PicID; the upload makes it ready with a presigned image/jpeg URL", async () => {
    await api.drainAgentQueue(agent);
    const created = await api.request("POST", "/devices/cam-cap/captures", {
      channel: 1,
      resolution: "1920*1080",
      quality: 0,
    });
    expect(created.status).toBe(202);
    const capture = created.body;
    expect(capture).toMatchObject({ deviceId: "cam-cap", channel: 1, state: "pending" });
    expect(capture.picId).toBe(capture.captureId);
    expect(capture.picId).toMatch(/^[\x21-\x7e]{1,32}$/);

    const command = await takeCaptureCommand();
    expect(command).toMatchObject({
      type: "capture",
      deviceId: "cam-cap",
      commandId: capture.commandId,
      params: { channel: 1, picId: capture.picId, resolution: "1920*1080", quality: 0 },
    });

    // The device uploads; the agent streams it to S3 and reports it.
    const { bucket } = backends().resources;
    const key = `pictures/cam-cap/${capture.picId}.jpg`;
    await backends().clients.s3.send(
      new PutObjectCommand({ Bucket: bucket, Key: key, Body: JPEG, ContentType: "image/jpeg" }),
    );
    await api.commandResult({
      commandId: command.commandId,
      deviceId: "cam-cap",
      agentId: "agent-cap",
      state: "succeeded",
      result: { picId: capture.picId, channel: 1 },
      at: new Date().toISOString(),
    });
    await api.alarmEvents({
      ...pictureEvent("cam-cap", capture.picId, key),
      bucket,
      size: JPEG.length,
    });

    const ready = await api.request("GET", `/captures/${capture.captureId}`);
    expect(ready.status).toBe(200);
    expect(ready.body).toMatchObject({ state: "ready", picture: { key, size: JPEG.length } });
    const url = new URL(ready.body.picture.url);
    expect(url.searchParams.get("X-Amz-Expires")).toBe("900");
    expect(url.searchParams.get("response-content-type")).toBe("image/jpeg");
    expect(Date.parse(ready.body.picture.urlExpiresAt) - api.clock.now()).toBeGreaterThan(890_000);
    // fauxqs ignores the signature but serves the object: the URL names the right bytes.
    const fetched = await fetch(url);
    expect(fetched.status).toBe(200);
    expect(Buffer.from(await fetched.arrayBuffer()).equals(JPEG)).toBe(true);
  });

  it("?wait=N returns the ready capture inline (200) when the upload arrives in time", async () => {
    await api.drainAgentQueue(agent);
    const agentPlays = (async () => {
      for (let i = 0; i < 100; i++) {
        const [message] = await api.drainAgentQueue(agent);
        if (message?.kind === "command") {
          const picId = String(message.params.picId);
          await api.alarmEvents(pictureEvent("cam-cap", picId));
          return picId;
        }
        await new Promise((r) => setTimeout(r, 20));
      }
      throw new Error("no capture command arrived");
    })();
    const { status, body } = await api.request("POST", "/devices/cam-cap/captures?wait=5", {
      channel: 2,
    });
    const picId = await agentPlays;
    expect(status).toBe(200);
    expect(body).toMatchObject({ state: "ready", picId, channel: 2 });
    expect(body.picture.url).toContain("X-Amz-Signature=");
  });

  it("an offline device: 409 DEVICE_OFFLINE and a final device-offline capture with its reason", async () => {
    const { status, body } = await api.request("POST", "/devices/cam-gone/captures", {
      channel: 1,
    });
    expect(status).toBe(409);
    expect(body.code).toBe("DEVICE_OFFLINE");
    expect(body.details.capture).toMatchObject({ state: "device-offline", deviceId: "cam-gone" });
    expect(body.details.capture.reason).toMatch(/offline/);
    const read = await api.request("GET", `/captures/${body.details.capture.captureId}`);
    expect(read.body.state).toBe("device-offline");
  });

  it("a failed MANUALSNAP makes the capture device-error with the device's description", async () => {
    await api.drainAgentQueue(agent);
    const { body } = await api.request("POST", "/devices/cam-cap/captures", { channel: 3 });
    const command = await takeCaptureCommand();
    await api.commandResult({
      commandId: command.commandId,
      deviceId: "cam-cap",
      agentId: "agent-cap",
      state: "failed",
      error: { code: "DEVICE_ERROR", message: "channel 3 has no sensor", status: 400 },
      at: new Date().toISOString(),
    });
    const read = await api.request("GET", `/captures/${body.captureId}`);
    expect(read.body).toMatchObject({ state: "device-error" });
    expect(read.body.reason).toContain("channel 3 has no sensor");
    // Final: a picture arriving now changes nothing.
    await api.alarmEvents(pictureEvent("cam-cap", body.picId));
    expect((await api.request("GET", `/captures/${body.captureId}`)).body.state).toBe(
      "device-error",
    );
  });

  it("no upload by the deadline: upload-timeout, final, explained", async () => {
    await api.drainAgentQueue(agent);
    const { body } = await api.request("POST", "/devices/cam-cap/captures", { channel: 1 });
    const command = await takeCaptureCommand();
    await api.commandResult({
      commandId: command.commandId,
      deviceId: "cam-cap",
      agentId: "agent-cap",
      state: "succeeded",
      at: new Date().toISOString(),
    });
    expect((await api.request("GET", `/captures/${body.captureId}`)).body.state).toBe("pending");
    api.clock.advance(61_000);
    const read = await api.request("GET", `/captures/${body.captureId}`);
    expect(read.body.state).toBe("upload-timeout");
    expect(read.body.reason).toMatch(/no picture was uploaded within 60 s/);
    await api.alarmEvents(pictureEvent("cam-cap", body.picId));
    expect((await api.request("GET", `/captures/${body.captureId}`)).body.state).toBe(
      "upload-timeout",
    );
  });

  it("refuses a bad body (422), an unknown device (404) and an unknown capture (404)", async () => {
    const bad = await api.request("POST", "/devices/cam-cap/captures", {
      channel: 0,
      resolution: "big",
    });
    expect(bad.status).toBe(422);
    expect(bad.body.details.map((d: { path: string }) => d.path).sort()).toEqual([
      "channel",
      "resolution",
    ]);
    const unknown = await api.request("POST", "/devices/nope/captures", { channel: 1 });
    expect(unknown.status).toBe(404);
    expect(unknown.body.code).toBe("DEVICE_NOT_FOUND");
    const missing = await api.request("GET", "/captures/cap-00000000000000000000");
    expect(missing.status).toBe(404);
    expect(missing.body.code).toBe("CAPTURE_NOT_FOUND");
  });
});
