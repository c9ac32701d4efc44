import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createStreamsRepository } from "../../../functions/api/streams-repository.ts";
import type { AgentQueueMessage, AgentRecord } from "../../../lib/contracts/agent-messages.ts";
import type { CommandResult } from "../../../lib/contracts/commands.ts";
import { STREAM_TOKEN_TTL_SECONDS } from "../../../lib/contracts/media.ts";
import { verifyTalkToken } from "../../../lib/contracts/talk.ts";
import { useLocalBackends } from "../../helpers/local-backends.ts";
import { type FunctionClients, functionClients } from "../support.ts";
import { type ApiHarness, createApiHarness, deviceEvent, type Json } from "./harness.ts";

/**
 * Voice talk routes on the local backends (issue 8 item 2): the api function runs `talk-start` /
 * `talk-stop` on the agent's queue, played here by taking commands off it and answering through
 * the command-results handler (the pattern of streams-routes.test.ts).
 */
const backends = useLocalBackends();
const tokenKey = randomBytes(32);
const VIEWER_PORT = 18662;
let api: ApiHarness;
let agent: AgentRecord;
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
      talk: { startWaitSeconds: 2, stopWaitSeconds: 1 },
    },
  });
  agent = await api.startAgent("agent-talk", 300, {
    publicHost: "203.0.113.11",
    viewerPort: VIEWER_PORT,
  });
  await api.deviceEvents(
    deviceEvent("cam-talk", 1, { type: "registered", address: "198.51.100.30:5000" }, "agent-talk"),
    deviceEvent("cam-talk", 2, { type: "device-info", channelCount: 2 }, "agent-talk"),
    deviceEvent(
      "cam-quiet",
      1,
      { type: "registered", address: "198.51.100.31:5000" },
      "agent-talk",
    ),
    deviceEvent("cam-quiet", 2, { type: "offline", reason: "keepalive-timeout" }, "agent-talk"),
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

/** Sends a request, answers the one command it causes as the agent would, returns both. */
async function withAgent(
  method: string,
  path: string,
  body: unknown,
  reply: (command: Command) => Partial<CommandResult>,
): Promise<{ status: number; body: Json; command: Command }> {
  const response = api.request(method, path, body);
  const command = await nextCommand();
  await api.commandResult({
    commandId: command.commandId,
    deviceId: command.deviceId,
    agentId: agent.agentId,
    state: "succeeded",
    at: new Date().toISOString(),
    ...reply(command),
  });
  const { status, body: json } = await response;
  return { status, body: json, command };
}

const accepted = (c: Command) => ({
  result: { talkId: String(c.params.talkId), session: "talk-sess-1", port: 31_500 },
});

describe("POST /devices/{deviceId}/talk", () => {
  it("runs talk-start on the device's agent and answers a ws:// URL with a verifiable talk token", async () => {
    const before = Date.now();
    const { status, body, command } = await withAgent(
      "POST",
      "/devices/cam-talk/talk",
      { channel: 2, audioFormat: "G711A" },
      accepted,
    );
    expect(command).toMatchObject({
      type: "talk-start",
      deviceId: "cam-talk",
      params: { channel: 2, audioFormat: "G711A", transport: "tcp" },
    });
    // The talk id is the talk-start command's id (DELETE /talk/{id} finds the device from it).
    expect(command.params.talkId).toBe(command.commandId);
    expect(status).toBe(201);
    expect(body.talkId).toBe(command.commandId);
    const url = new URL(body.url);
    expect(url.protocol).toBe("ws:");
    expect(url.host).toBe(`203.0.113.11:${VIEWER_PORT}`);
    expect(url.pathname).toBe(`/talk/${body.talkId}`);
    expect(url.searchParams.get("codec")).toBe("pcm");
    const token = url.searchParams.get("token")!;
    expect(verifyTalkToken(tokenKey, token, body.talkId)).toEqual({
      ok: true,
      deviceId: "cam-talk",
    });
    // A token for this talk opens no other talk, and a foreign key does not verify it.
    expect(verifyTalkToken(tokenKey, token, "tk-other")).toEqual({ ok: false, error: "foreign" });
    expect(verifyTalkToken(randomBytes(32), token, body.talkId).ok).toBe(false);
    const expires = Date.parse(body.expiresAt);
    expect(expires).toBeGreaterThanOrEqual(
      Math.floor(before / 1000) * 1000 + STREAM_TOKEN_TTL_SECONDS * 1000,
    );
    expect(expires).toBeLessThanOrEqual(Date.now() + STREAM_TOKEN_TTL_SECONDS * 1000);
  });

  it("defaults audioFormat to G711U and takes codec=g711 into the URL", async () => {
    const { status, body, command } = await withAgent(
      "POST",
      "/devices/cam-talk/talk",
      { channel: 1, codec: "g711" },
      accepted,
    );
    expect(command.params).toMatchObject({ channel: 1, audioFormat: "G711U" });
    expect(status).toBe(201);
    expect(new URL(body.url).searchParams.get("codec")).toBe("g711");
  });

  it("answers 409 TALK_BUSY when the agent reports the device channel busy", async () => {
    const { status, body } = await withAgent(
      "POST",
      "/devices/cam-talk/talk",
      { channel: 1 },
      () => ({
        state: "failed",
        error: { code: "TALK_BUSY", message: "the channel already has a talk" },
      }),
    );
    expect(status).toBe(409);
    expect(body.code).toBe("TALK_BUSY");
    expect(body.details.command).toMatchObject({ type: "talk-start", state: "failed" });
  });

  it("maps MEDIA_PORTS_EXHAUSTED to 503 and a device refusal to 502", async () => {
    const exhausted = await withAgent("POST", "/devices/cam-talk/talk", { channel: 1 }, () => ({
      state: "failed",
      error: { code: "MEDIA_PORTS_EXHAUSTED", message: "no free media port" },
    }));
    expect(exhausted.status).toBe(503);
    expect(exhausted.body.code).toBe("MEDIA_PORTS_EXHAUSTED");
    const refused = await withAgent("POST", "/devices/cam-talk/talk", { channel: 1 }, () => ({
      state: "failed",
      error: { code: "DEVICE_ERROR", message: "INVITETALK: device-error" },
    }));
    expect(refused.status).toBe(502);
    expect(refused.body.code).toBe("DEVICE_ERROR");
  });

  it("answers 504 when the agent does not answer in time, and tells it to let go (talk-stop)", async () => {
    const response = api.request("POST", "/devices/cam-talk/talk", { channel: 1 });
    const start = await nextCommand();
    expect(start.type).toBe("talk-start");
    const { status, body } = await response;
    expect(status).toBe(504);
    expect(body.code).toBe("DEVICE_TIMEOUT");
    const stop = await nextCommand();
    expect(stop).toMatchObject({ type: "talk-stop", params: { talkId: start.commandId } });
  });

  it("answers 404 for an unknown device and 409 for an offline one, sending nothing", async () => {
    const unknown = await api.request("POST", "/devices/cam-nobody/talk", { channel: 1 });
    expect(unknown.status).toBe(404);
    expect(unknown.body.code).toBe("DEVICE_NOT_FOUND");
    const offline = await api.request("POST", "/devices/cam-quiet/talk", { channel: 1 });
    expect(offline.status).toBe(409);
    expect(offline.body.code).toBe("DEVICE_OFFLINE");
    expect(await api.drainAgentQueue(agent)).toEqual([]);
  });

  it("answers 422 for a bad body or a channel beyond the device's channelCount, sending nothing", async () => {
    for (const body of [
      {},
      { channel: 0 },
      { channel: 1, audioFormat: "OPUS" },
      { channel: 1, codec: "mp3" },
      { channel: "1" },
    ]) {
      const r = await api.request("POST", "/devices/cam-talk/talk", body);
      expect(r.status, JSON.stringify(body)).toBe(422);
      expect(r.body.code).toBe("VALIDATION_FAILED");
    }
    const beyond = await api.request("POST", "/devices/cam-talk/talk", { channel: 3 });
    expect(beyond.status).toBe(422);
    expect(beyond.body.details).toEqual([expect.objectContaining({ in: "body", path: "channel" })]);
    expect(await api.drainAgentQueue(agent)).toEqual([]);
  });
});

describe("DELETE /talk/{talkId}", () => {
  it("runs talk-stop on the agent holding the talk and answers 204, again when repeated", async () => {
    const { body } = await withAgent("POST", "/devices/cam-talk/talk", { channel: 2 }, accepted);
    const first = await withAgent("DELETE", `/talk/${body.talkId}`, undefined, (c) => ({
      result: { talkId: c.params.talkId, stopped: true },
    }));
    expect(first.command).toMatchObject({
      type: "talk-stop",
      deviceId: "cam-talk",
      params: { talkId: body.talkId },
    });
    expect(first.status).toBe(204);
    const again = await withAgent("DELETE", `/talk/${body.talkId}`, undefined, (c) => ({
      result: { talkId: c.params.talkId, stopped: false },
    }));
    expect(again.status).toBe(204);
  });

  it("answers 204 even when the agent does not confirm", async () => {
    const { body } = await withAgent("POST", "/devices/cam-talk/talk", { channel: 2 }, accepted);
    const response = api.request("DELETE", `/talk/${body.talkId}`);
    expect((await nextCommand()).type).toBe("talk-stop");
    expect((await response).status).toBe(204);
  });

  it("answers 404 TALK_NOT_FOUND for an unknown id and for a command that is not a talk", async () => {
    const unknown = await api.request("DELETE", "/talk/tk-00000000000000000000000000000000");
    expect(unknown.status).toBe(404);
    expect(unknown.body.code).toBe("TALK_NOT_FOUND");
    const reboot = await withAgent(
      "POST",
      "/devices/cam-talk/commands?wait=2",
      { type: "reboot" },
      () => ({ result: {} }),
    );
    expect(reboot.status).toBe(200);
    const notTalk = await api.request("DELETE", `/talk/${reboot.command.commandId}`);
    expect(notTalk.status).toBe(404);
    expect(notTalk.body.code).toBe("TALK_NOT_FOUND");
    expect(await api.drainAgentQueue(agent)).toEqual([]);
  });

  it("is not a type POST /devices/{id}/commands accepts", async () => {
    for (const type of ["talk-start", "talk-stop"]) {
      const r = await api.request("POST", "/devices/cam-talk/commands", {
        type,
        params: { talkId: "tk-1", channel: 1, audioFormat: "G711U" },
      });
      expect(r.status, type).toBe(422);
    }
    expect(await api.drainAgentQueue(agent)).toEqual([]);
  });
});
