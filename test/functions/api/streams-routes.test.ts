import { randomBytes } from "node:crypto";
import { PutObjectCommand } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createStreamsRepository } from "../../../functions/api/streams-repository.ts";
import { createMediaHandler } from "../../../functions/media/handler.ts";
import { createMediaEventsRepository } from "../../../functions/media/repository.ts";
import { createMediaEventsService } from "../../../functions/media/service.ts";
import type { AgentQueueMessage, AgentRecord } from "../../../lib/contracts/agent-messages.ts";
import type { CommandResult } from "../../../lib/contracts/commands.ts";
import {
  DOWNLOAD_URL_TTL_SECONDS,
  downloadObjectKey,
  STREAM_TOKEN_TTL_SECONDS,
  type StreamEvent,
  type StreamState,
  verifyStreamToken,
} from "../../../lib/contracts/media.ts";
import { useLocalBackends } from "../../helpers/local-backends.ts";
import { type FunctionClients, functionClients, silentLogger, sqsEvent } from "../support.ts";
import { type ApiHarness, createApiHarness, deviceEvent, type Json } from "./harness.ts";

/**
 * Record search, streams and downloads on the local backends: the api function with its media
 * routes, the media function applying stream events, and the agent played by taking commands off
 * its queue and answering through the command-results handler.
 */
const backends = useLocalBackends();
const tokenKey = randomBytes(32);
const VIEWER_PORT = 18661;
let api: ApiHarness;
let agent: AgentRecord;
let mediaEvents: ReturnType<typeof createMediaHandler>;
let clients: FunctionClients;

beforeAll(async () => {
  const { tables, bucket } = backends().resources;
  clients = functionClients(backends());
  api = createApiHarness(backends(), {
    media: {
      streams: createStreamsRepository(
        { streamsTable: tables.streams },
        { documentClient: clients.documentClient },
      ),
      tokenKey,
      bucket,
      config: { recordSearchWaitSeconds: 2, streamStartWaitSeconds: 2, streamStopWaitSeconds: 1 },
    },
  });
  agent = await api.startAgent("agent-media", 300, {
    publicHost: "203.0.113.10",
    viewerPort: VIEWER_PORT,
  });
  mediaEvents = createMediaHandler({
    service: createMediaEventsService({
      repository: createMediaEventsRepository(
        { streamsTable: tables.streams },
        { documentClient: clients.documentClient },
      ),
      clock: api.clock,
      logger: silentLogger,
    }),
    logger: silentLogger,
  });
  await api.deviceEvents(
    deviceEvent("cam-med", 1, { type: "registered", address: "198.51.100.20:5000" }, "agent-media"),
    deviceEvent("cam-off", 1, { type: "registered", address: "198.51.100.21:5000" }, "agent-media"),
    deviceEvent("cam-off", 2, { type: "offline", reason: "keepalive-timeout" }, "agent-media"),
  );
});
afterAll(() => {
  api?.close();
  clients?.close();
});

type Command = Extract<AgentQueueMessage, { kind: "command" }>;

/** Plays the agent: waits for the next command on its queue. */
async function nextCommand(timeoutMs = 5000): Promise<Command> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    const messages = await api.drainAgentQueue(agent);
    const command = messages.find((m): m is Command => m.kind === "command");
    if (command) return command;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error("no command reached the agent queue");
}

/** Answers a command as the agent would (command-results queue). */
async function answer(command: Command, outcome: Partial<CommandResult>): Promise<void> {
  await api.commandResult({
    commandId: command.commandId,
    deviceId: command.deviceId,
    agentId: agent.agentId,
    state: "succeeded",
    at: new Date().toISOString(),
    ...outcome,
  });
}

/**
 * Sends a request whose route waits for a command, plays the agent for that one command, and
 * returns both the response and the command the agent saw.
 */
async function withAgent(
  method: string,
  path: string,
  body: unknown,
  reply: (command: Command) => Partial<CommandResult> | undefined,
): Promise<{ status: number; body: Json; command: Command }> {
  const response = api.request(method, path, body);
  const command = await nextCommand();
  const outcome = reply(command);
  if (outcome) await answer(command, outcome);
  const { status, body: json } = await response;
  return { status, body: json, command };
}

let seq = 0;
async function streamEvent(
  streamId: string,
  state: StreamState,
  extra: Partial<StreamEvent> = {},
): Promise<void> {
  const event: StreamEvent = {
    type: "stream-state",
    streamId,
    deviceId: "cam-med",
    agentId: agent.agentId,
    seq: ++seq,
    state,
    counters: {
      viewers: 2,
      bytesIn: 65_536,
      bytesOut: 131_072,
      bitrateBps: 4e6,
      viewersDropped: 1,
    },
    at: new Date().toISOString(),
    ...extra,
  };
  const response = await mediaEvents(sqsEvent(event));
  expect(response.batchItemFailures).toEqual([]);
}

const started = (streamId: string, port = 31_000) => ({
  result: { streamId, session: `sess-${port}`, port, transport: "tcp" },
});

async function startLive(channel = 1) {
  const { status, body, command } = await withAgent(
    "POST",
    "/devices/cam-med/streams",
    { kind: "live", channel, streamType: "sub" },
    (c) => started(String(c.params.streamId)),
  );
  expect(status).toBe(201);
  return { stream: body, command };
}

describe("GET /devices/{deviceId}/records", () => {
  const files = [
    {
      fileName: "ch0001_00000000009000000",
      start: "2026-11-24 08:00:00",
      end: "2026-11-24 08:15:00",
      sizeBytes: 1_048_576,
      flag: "0",
    },
    {
      fileName: "ch0001_00000000009000001",
      start: "2026-11-24 08:15:00",
      end: "2026-11-24 08:30:00",
      sizeBytes: 2_097_152,
      flag: "0",
    },
  ];

  it("runs record-search with device-local bounds (T or space) and returns the files as written", async () => {
    const { status, body, command } = await withAgent(
      "GET",
      "/devices/cam-med/records?channel=2&start=2026-11-24T00:00:00&end=2026-11-24%2023:59:59&limit=50",
      undefined,
      () => ({ result: { files, truncated: true, pages: 7 } }),
    );
    expect(command).toMatchObject({
      type: "record-search",
      deviceId: "cam-med",
      params: {
        channel: 2,
        start: "2026-11-24 00:00:00",
        end: "2026-11-24 23:59:59",
        maxFiles: 50,
        fileType: 255,
        pageSize: 8,
      },
    });
    expect(status).toBe(200);
    expect(body).toEqual({
      deviceId: "cam-med",
      channel: 2,
      truncated: true,
      files: files.map(({ flag: _flag, ...f }) => f),
    });
  });

  it("with the device's timeZone (PUT /devices/{id}) adds it and ISO 8601 times with that offset", async () => {
    const put = await api.request("PUT", "/devices/cam-med", { allowed: true, timeZone: "+08:00" });
    expect(put.status).toBe(200);
    expect(put.body.timeZone).toBe("+08:00");
    // Omitted on a later PUT: kept.
    const again = await api.request("PUT", "/devices/cam-med", { allowed: true });
    expect(again.body.timeZone).toBe("+08:00");
    const { body } = await withAgent(
      "GET",
      "/devices/cam-med/records?channel=1&start=2026-11-24%2000:00:00&end=2026-11-25%2000:00:00",
      undefined,
      () => ({ result: { files, truncated: false, pages: 1 } }),
    );
    expect(body.timeZone).toBe("+08:00");
    expect(body.files[0]).toMatchObject({
      start: "2026-11-24 08:00:00",
      startAt: "2026-11-24T08:00:00+08:00",
      endAt: "2026-11-24T08:15:00+08:00",
    });
    expect(Date.parse(body.files[0].startAt)).toBe(Date.parse("2026-11-24T00:00:00Z"));
  });

  it("refuses bad bounds and a bad timeZone (422) and an unknown device (404)", async () => {
    const backwards = await api.request(
      "GET",
      "/devices/cam-med/records?channel=1&start=2026-11-24%2010:00:00&end=2026-11-24%2009:00:00",
    );
    expect(backwards.status).toBe(422);
    const malformed = await api.request(
      "GET",
      "/devices/cam-med/records?channel=0&start=yesterday&end=2026-11-24%2009:00:00",
    );
    expect(malformed.status).toBe(422);
    expect(malformed.body.details.map((d: { path: string }) => d.path).sort()).toEqual([
      "channel",
      "start",
    ]);
    const tz = await api.request("PUT", "/devices/cam-med", { allowed: true, timeZone: "8" });
    expect(tz.status).toBe(422);
    const unknown = await api.request(
      "GET",
      "/devices/nope/records?channel=1&start=2026-11-24%2000:00:00&end=2026-11-24%2001:00:00",
    );
    expect(unknown.status).toBe(404);
    expect(unknown.body.code).toBe("DEVICE_NOT_FOUND");
  });

  it("a time-sync that succeeds within ?wait records its timeZone on the device", async () => {
    const { status } = await withAgent(
      "POST",
      "/devices/cam-med/commands?wait=5",
      { type: "time-sync", params: { time: "2026-11-24 02:00:00", timeZone: "-03:30" } },
      () => ({}),
    );
    expect(status).toBe(200);
    expect((await api.request("GET", "/devices/cam-med")).body.timeZone).toBe("-03:30");
    // A failed one changes nothing.
    const failed = await withAgent(
      "POST",
      "/devices/cam-med/commands?wait=5",
      { type: "time-sync", params: { timeZone: "+05:00" } },
      () => ({ state: "failed", error: { code: "DEVICE_ERROR", message: "no", status: 400 } }),
    );
    expect(failed.status).toBe(502);
    const { body } = await withAgent(
      "GET",
      "/devices/cam-med/records?channel=1&start=2026-11-24%2000:00:00&end=2026-11-25%2000:00:00",
      undefined,
      () => ({ result: { files: files.slice(0, 1), truncated: false, pages: 1 } }),
    );
    expect(body).toMatchObject({ timeZone: "-03:30" });
    expect(body.files[0].startAt).toBe("2026-11-24T08:00:00-03:30");
  });

  it("no answer within the wait: 504 DEVICE_TIMEOUT with the command", async () => {
    const { status, body } = await withAgent(
      "GET",
      "/devices/cam-med/records?channel=1&start=2026-11-24%2000:00:00&end=2026-11-24%2001:00:00",
      undefined,
      () => undefined,
    );
    expect(status).toBe(504);
    expect(body.code).toBe("DEVICE_TIMEOUT");
    expect(body.details.command).toMatchObject({ type: "record-search", state: "sent" });
  });
});

describe("POST /devices/{deviceId}/streams (live)", () => {
  it("runs stream-start with the spec and answers 201 with signed PS and TS URLs on the agent", async () => {
    const before = api.clock.now();
    const { stream, command } = await startLive(3);
    expect(command).toMatchObject({
      type: "stream-start",
      params: {
        streamId: stream.streamId,
        kind: "live",
        channel: 3,
        streamType: "sub",
        transport: "tcp",
      },
    });
    expect(stream).toMatchObject({ kind: "live", state: "starting" });
    const expires = Date.parse(stream.expiresAt);
    expect(expires - before).toBeGreaterThanOrEqual((STREAM_TOKEN_TTL_SECONDS - 2) * 1000);
    expect(expires - before).toBeLessThanOrEqual((STREAM_TOKEN_TTL_SECONDS + 2) * 1000);
    for (const format of ["ps", "ts"] as const) {
      const url = new URL(stream.urls[format]);
      expect(url.host).toBe(`203.0.113.10:${VIEWER_PORT}`);
      expect(url.pathname).toBe(`/streams/${stream.streamId}.${format}`);
      const verified = verifyStreamToken(tokenKey, url.searchParams.get("token")!, api.clock.now());
      expect(verified).toEqual({
        ok: true,
        claims: { streamId: stream.streamId, deviceId: "cam-med", expiresAt: expires / 1000 },
      });
      // Another key does not verify it.
      expect(verifyStreamToken(randomBytes(32), url.searchParams.get("token")!).ok).toBe(false);
    }

    const read = await api.request("GET", `/streams/${stream.streamId}`);
    expect(read.status).toBe(200);
    expect(read.body).toMatchObject({
      streamId: stream.streamId,
      deviceId: "cam-med",
      agentId: "agent-media",
      kind: "live",
      state: "starting",
      session: "sess-31000",
      spec: { kind: "live", channel: 3, streamType: "sub", transport: "tcp" },
      viewers: 0,
      bytesIn: 0,
    });
    await streamEvent(stream.streamId, "active");
    const active = await api.request("GET", `/streams/${stream.streamId}`);
    expect(active.body).toMatchObject({
      state: "active",
      viewers: 2,
      bytesIn: 65_536,
      bytesOut: 131_072,
      bitrateBps: 4e6,
      viewersDropped: 1,
    });
  });

  it("an agent without viewerPort in its record gets the default viewer port", async () => {
    const old = await api.startAgent("agent-old", 300, { publicHost: "203.0.113.11" });
    await api.deviceEvents(
      deviceEvent("cam-old", 1, { type: "registered", address: "198.51.100.30:5000" }, "agent-old"),
    );
    const response = api.request("POST", "/devices/cam-old/streams", { kind: "live", channel: 1 });
    let command: Command | undefined;
    for (let i = 0; i < 200 && !command; i++) {
      command = (await api.drainAgentQueue(old)).find((m): m is Command => m.kind === "command");
      if (!command) await new Promise((r) => setTimeout(r, 20));
    }
    await api.commandResult({
      commandId: command!.commandId,
      deviceId: "cam-old",
      agentId: "agent-old",
      state: "succeeded",
      result: { streamId: command!.params.streamId, session: "s", port: 31_001, transport: "tcp" },
      at: new Date().toISOString(),
    });
    const { status, body } = await response;
    expect(status).toBe(201);
    expect(new URL(body.urls.ts).port).toBe("8661");
  });

  it("maps the agent's failures: pool exhausted 503, device error 502; the stream is failed with the reason", async () => {
    const exhausted = await withAgent(
      "POST",
      "/devices/cam-med/streams",
      { kind: "live", channel: 1 },
      () => ({
        state: "failed",
        error: {
          code: "MEDIA_PORTS_EXHAUSTED",
          message: "no free media port (1000 of 1000 leased)",
        },
      }),
    );
    expect(exhausted.status).toBe(503);
    expect(exhausted.body.code).toBe("MEDIA_PORTS_EXHAUSTED");
    const failed = exhausted.body.details.stream;
    expect(failed).toMatchObject({ state: "failed", reason: { code: "MEDIA_PORTS_EXHAUSTED" } });
    const read = await api.request("GET", `/streams/${failed.streamId}`);
    expect(read.body.state).toBe("failed");

    const refused = await withAgent(
      "POST",
      "/devices/cam-med/streams",
      { kind: "live", channel: 9 },
      () => ({
        state: "failed",
        error: { code: "DEVICE_ERROR", message: "channel 9 does not exist", status: 400 },
      }),
    );
    expect(refused.status).toBe(502);
    expect(refused.body.code).toBe("DEVICE_ERROR");
    expect(refused.body.details.stream.reason).toEqual({
      code: "DEVICE_ERROR",
      message: "channel 9 does not exist",
    });
  });

  it("no answer within the wait: 504, the stream failed, and the agent told to let go", async () => {
    const { status, body, command } = await withAgent(
      "POST",
      "/devices/cam-med/streams",
      { kind: "live", channel: 1 },
      () => undefined,
    );
    expect(status).toBe(504);
    expect(body.details.stream).toMatchObject({
      state: "failed",
      reason: { code: "DEVICE_TIMEOUT" },
    });
    const stop = await nextCommand();
    expect(stop).toMatchObject({
      type: "stream-stop",
      params: { streamId: command.params.streamId },
    });
  });

  it("an offline device: 409 DEVICE_OFFLINE and a failed stream; unknown device 404; bad body 422", async () => {
    const offline = await api.request("POST", "/devices/cam-off/streams", {
      kind: "live",
      channel: 1,
    });
    expect(offline.status).toBe(409);
    expect(offline.body.code).toBe("DEVICE_OFFLINE");
    expect(offline.body.details.stream).toMatchObject({ state: "failed", deviceId: "cam-off" });
    const unknown = await api.request("POST", "/devices/nope/streams", {
      kind: "live",
      channel: 1,
    });
    expect(unknown.status).toBe(404);
    expect(unknown.body.code).toBe("DEVICE_NOT_FOUND");
    const neither = await api.request("POST", "/devices/cam-med/streams", {
      kind: "playback",
      channel: 1,
    });
    expect(neither.status).toBe(422);
    expect(neither.body.code).toBe("VALIDATION_FAILED");
    const extra = await api.request("POST", "/devices/cam-med/streams", {
      kind: "live",
      channel: 1,
      file: "x",
    });
    expect(extra.status).toBe(422);
    expect((await api.drainAgentQueue(agent)).filter((m) => m.kind === "command")).toEqual([]);
  });
});

describe("POST /streams/{streamId}/control", () => {
  async function startPlayback() {
    const { status, body } = await withAgent(
      "POST",
      "/devices/cam-med/streams",
      {
        kind: "playback",
        channel: 1,
        start: "2026-11-24 08:00:00",
        end: "2026-11-24 09:00:00",
        direction: "reverse",
      },
      (c) => started(String(c.params.streamId), 31_002),
    );
    expect(status).toBe(201);
    return body;
  }

  it("sends PLAYBACKCONTROL's parameters: fast/slow speeds signed, seek with its time", async () => {
    const playback = await startPlayback();
    expect(playback.urls.ts).toContain(`/streams/${playback.streamId}.ts?token=`);
    const cases = [
      [
        { action: "fast", speed: 4 },
        { action: "fast", speed: 4 },
      ],
      [
        { action: "slow", speed: 8 },
        { action: "slow", speed: -8 },
      ],
      [{ action: "normal" }, { action: "normal", speed: 1 }],
      [{ action: "pause" }, { action: "pause" }],
      [
        { action: "seek", seekTime: "2026-11-24 08:30:00" },
        { action: "seek", seekTime: "2026-11-24 08:30:00" },
      ],
    ] as const;
    for (const [request, params] of cases) {
      const { status, body, command } = await withAgent(
        "POST",
        `/streams/${playback.streamId}/control`,
        request,
        () => ({}),
      );
      expect(status, request.action).toBe(200);
      expect(command).toMatchObject({ type: "stream-control" });
      expect(command.params).toEqual({ streamId: playback.streamId, ...params });
      expect(body).toMatchObject({ streamId: playback.streamId, action: request.action });
      expect(body.stream.spec).toMatchObject({ kind: "playback", direction: "reverse" });
    }
  });

  it("the agent's stream codes keep their meaning: STREAM_ENDED 409, others 502 with its message", async () => {
    const playback = await startPlayback();
    const ended = await withAgent(
      "POST",
      `/streams/${playback.streamId}/control`,
      { action: "resume" },
      () => ({ state: "failed", error: { code: "STREAM_ENDED", message: "the stream has ended" } }),
    );
    expect(ended.status).toBe(409);
    expect(ended.body.code).toBe("STREAM_ENDED");
    const other = await withAgent(
      "POST",
      `/streams/${playback.streamId}/control`,
      { action: "resume" },
      () => ({
        state: "failed",
        error: { code: "STREAM_NOT_FOUND", message: "the playback has not started yet" },
      }),
    );
    expect(other.status).toBe(502);
    expect(other.body).toMatchObject({
      code: "DEVICE_ERROR",
      message: "the playback has not started yet",
    });
  });

  it("refuses actions of another kind (409 STREAM_NOT_PLAYBACK) and bad bodies (422)", async () => {
    const { stream: live } = await startLive();
    const pause = await api.request("POST", `/streams/${live.streamId}/control`, {
      action: "pause",
    });
    expect(pause.status).toBe(409);
    expect(pause.body.code).toBe("STREAM_NOT_PLAYBACK");
    const iframe = await withAgent(
      "POST",
      `/streams/${live.streamId}/control`,
      { action: "force-iframe" },
      () => ({}),
    );
    expect(iframe.status).toBe(200);
    expect(iframe.command.params).toEqual({ streamId: live.streamId, action: "force-iframe" });

    const playback = await startPlayback();
    const onPlayback = await api.request("POST", `/streams/${playback.streamId}/control`, {
      action: "force-iframe",
    });
    expect(onPlayback.body.code).toBe("STREAM_NOT_PLAYBACK");
    const noTime = await api.request("POST", `/streams/${playback.streamId}/control`, {
      action: "seek",
    });
    expect(noTime.status).toBe(422);
    const badSpeed = await api.request("POST", `/streams/${playback.streamId}/control`, {
      action: "pause",
      speed: 2,
    });
    expect(badSpeed.status).toBe(422);
    const missing = await api.request("POST", "/streams/st-nope/control", { action: "pause" });
    expect(missing.status).toBe(404);
    expect(missing.body.code).toBe("STREAM_NOT_FOUND");
  });
});

describe("DELETE /streams/{streamId}", () => {
  it("sends stream-stop, marks the stream stopped; again is a no-op; control then answers 409 STREAM_ENDED", async () => {
    const { stream } = await startLive();
    await streamEvent(stream.streamId, "active");
    const { status, body, command } = await withAgent(
      "DELETE",
      `/streams/${stream.streamId}`,
      undefined,
      () => ({}),
    );
    expect(command).toMatchObject({ type: "stream-stop", params: { streamId: stream.streamId } });
    expect(status).toBe(200);
    expect(body).toMatchObject({ state: "stopped", reason: { code: "STOPPED" } });

    const again = await api.request("DELETE", `/streams/${stream.streamId}`);
    expect(again.status).toBe(200);
    expect(again.body.state).toBe("stopped");
    expect((await api.drainAgentQueue(agent)).filter((m) => m.kind === "command")).toEqual([]);

    // A late event of the agent does not bring it back.
    await streamEvent(stream.streamId, "active");
    expect((await api.request("GET", `/streams/${stream.streamId}`)).body.state).toBe("stopped");
    const control = await api.request("POST", `/streams/${stream.streamId}/control`, {
      action: "force-iframe",
    });
    expect(control.status).toBe(409);
    expect(control.body.code).toBe("STREAM_ENDED");
  });

  it("stops the stream even when the agent does not confirm", async () => {
    const { stream } = await startLive();
    const { status, body } = await withAgent(
      "DELETE",
      `/streams/${stream.streamId}`,
      undefined,
      () => undefined,
    );
    expect(status).toBe(200);
    expect(body.state).toBe("stopped");
    expect(body.reason.message).toMatch(/did not confirm \(DEVICE_TIMEOUT\)/);
    const missing = await api.request("DELETE", "/streams/st-nope");
    expect(missing.status).toBe(404);
  });
});

describe("read repair", () => {
  it("an open stream whose agent stopped heartbeating is failed AGENT_LOST at the next read", async () => {
    const lost = await api.startAgent("agent-lost", 300, { publicHost: "203.0.113.12" });
    await api.deviceEvents(
      deviceEvent(
        "cam-lost",
        1,
        { type: "registered", address: "198.51.100.31:5000" },
        "agent-lost",
      ),
    );
    const response = api.request("POST", "/devices/cam-lost/streams", { kind: "live", channel: 1 });
    let command: Command | undefined;
    for (let i = 0; i < 200 && !command; i++) {
      command = (await api.drainAgentQueue(lost)).find((m): m is Command => m.kind === "command");
      if (!command) await new Promise((r) => setTimeout(r, 20));
    }
    await api.commandResult({
      commandId: command!.commandId,
      deviceId: "cam-lost",
      agentId: "agent-lost",
      state: "succeeded",
      result: { streamId: command!.params.streamId, session: "s", port: 31_004, transport: "tcp" },
      at: new Date().toISOString(),
    });
    const { body: stream } = await response;
    expect((await api.request("GET", `/streams/${stream.streamId}`)).body.state).toBe("starting");

    // The agent's heartbeat record expires (it died: no final event will ever come).
    await api.startAgent("agent-lost", -1, { publicHost: "203.0.113.12" });
    const read = await api.request("GET", `/streams/${stream.streamId}`);
    expect(read.body).toMatchObject({ state: "failed", reason: { code: "AGENT_LOST" } });
    // Final from then on: a late event of a restarted agent does not revive it.
    await mediaEvents(
      sqsEvent({
        type: "stream-state",
        streamId: stream.streamId,
        deviceId: "cam-lost",
        agentId: "agent-lost",
        seq: 1,
        state: "active",
        counters: { viewers: 1, bytesIn: 1, bytesOut: 1, bitrateBps: 1, viewersDropped: 0 },
        at: new Date().toISOString(),
      } satisfies StreamEvent),
    );
    expect((await api.request("GET", `/streams/${stream.streamId}`)).body.state).toBe("failed");
  });
});

describe("downloads", () => {
  it("POST answers with the progress URL; progress shows bytes; completed serves a presigned URL of the object", async () => {
    const {
      status,
      body: download,
      command,
    } = await withAgent(
      "POST",
      "/devices/cam-med/streams",
      { kind: "download", channel: 1, file: "ch0001_00000000009000000" },
      (c) => started(String(c.params.streamId), 31_003),
    );
    expect(status).toBe(201);
    expect(command.params).toEqual({
      streamId: download.streamId,
      kind: "download",
      channel: 1,
      file: "ch0001_00000000009000000",
      transport: "tcp",
    });
    expect(download).toEqual({
      streamId: download.streamId,
      kind: "download",
      state: "starting",
      downloadUrl: `/downloads/${download.streamId}`,
    });

    const first = await api.request("GET", download.downloadUrl);
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ state: "starting", bytesReceived: 0 });
    expect(first.body.url).toBeUndefined();

    await streamEvent(download.streamId, "active", {
      counters: { viewers: 0, bytesIn: 4096, bytesOut: 0, bitrateBps: 1e6, viewersDropped: 0 },
    });
    const progress = await api.request("GET", download.downloadUrl);
    expect(progress.body).toMatchObject({ state: "active", bytesReceived: 4096 });

    // The agent's multipart upload lands; it reports the object.
    const bytes = randomBytes(10_000);
    const key = downloadObjectKey("cam-med", download.streamId);
    await backends().clients.s3.send(
      new PutObjectCommand({ Bucket: backends().resources.bucket, Key: key, Body: bytes }),
    );
    await streamEvent(download.streamId, "completed", {
      counters: {
        viewers: 0,
        bytesIn: bytes.length,
        bytesOut: 0,
        bitrateBps: 0,
        viewersDropped: 0,
      },
      object: { key, bytes: bytes.length },
    });
    const done = await api.request("GET", download.downloadUrl);
    expect(done.body).toMatchObject({
      state: "completed",
      bytesReceived: bytes.length,
      object: { key, bytes: bytes.length },
      file: "ch0001_00000000009000000",
    });
    const url = new URL(done.body.url);
    expect(url.searchParams.get("X-Amz-Expires")).toBe(String(DOWNLOAD_URL_TTL_SECONDS));
    expect(url.searchParams.get("X-Amz-Signature")).toMatch(/^[0-9a-f]{64}$/);
    expect(url.pathname).toContain(key);
    const ttl = Date.parse(done.body.urlExpiresAt) - api.clock.now();
    expect(ttl).toBeGreaterThan((DOWNLOAD_URL_TTL_SECONDS - 10) * 1000);
    expect(ttl).toBeLessThanOrEqual(DOWNLOAD_URL_TTL_SECONDS * 1000);
    // fauxqs ignores the signature but serves the object: the URL names the right bytes.
    const fetched = await fetch(url);
    expect(fetched.status).toBe(200);
    expect(Buffer.from(await fetched.arrayBuffer()).equals(bytes)).toBe(true);
  });

  it("a live stream or an unknown id is no download (404 DOWNLOAD_NOT_FOUND); unknown streams 404", async () => {
    const { stream } = await startLive();
    const notDownload = await api.request("GET", `/downloads/${stream.streamId}`);
    expect(notDownload.status).toBe(404);
    expect(notDownload.body.code).toBe("DOWNLOAD_NOT_FOUND");
    expect((await api.request("GET", "/downloads/st-nope")).body.code).toBe("DOWNLOAD_NOT_FOUND");
    const unknown = await api.request("GET", "/streams/st-nope");
    expect(unknown.status).toBe(404);
    expect(unknown.body.code).toBe("STREAM_NOT_FOUND");
    expect((await api.request("GET", "/streams/bad%20id")).status).toBe(422);
  });
});

describe("OpenAPI", () => {
  it("documents the media routes with their error codes", async () => {
    const doc = (await api.request("GET", "/openapi.json")).body as {
      paths: Record<string, Record<string, { responses: Record<string, { description: string }> }>>;
    };
    const routes = Object.entries(doc.paths).flatMap(([path, ops]) =>
      Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`),
    );
    expect(routes).toEqual(
      expect.arrayContaining([
        "GET /devices/{deviceId}/records",
        "POST /devices/{deviceId}/streams",
        "GET /streams/{streamId}",
        "POST /streams/{streamId}/control",
        "DELETE /streams/{streamId}",
        "GET /downloads/{streamId}",
      ]),
    );
    const start = doc.paths["/devices/{deviceId}/streams"]!.post!.responses;
    expect(start["503"]!.description).toContain("MEDIA_PORTS_EXHAUSTED");
    expect(start["409"]!.description).toContain("DEVICE_OFFLINE");
    const control = doc.paths["/streams/{streamId}/control"]!.post!.responses;
    expect(control["409"]!.description).toContain("STREAM_NOT_PLAYBACK");
    expect(control["409"]!.description).toContain("STREAM_ENDED");
  });
});
