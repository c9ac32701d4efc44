import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AgentRecord } from "../../../lib/contracts/agent-messages.ts";
import { useLocalBackends } from "../../helpers/local-backends.ts";
import { type ApiHarness, createApiHarness, deviceEvent } from "./harness.ts";

const backends = useLocalBackends();
let api: ApiHarness;
let agentA: AgentRecord;
let agentB: AgentRecord;

const online = (deviceId: string, agentId: string) =>
  deviceEvent(deviceId, 1, { type: "registered", address: "198.51.100.1:5000" }, agentId);

beforeAll(async () => {
  api = createApiHarness(backends());
  agentA = await api.startAgent("agent-a");
  agentB = await api.startAgent("agent-b");
  await api.startAgent("agent-dead", -5);
  await api.deviceEvents(
    online("cam-a", "agent-a"),
    online("cam-b", "agent-b"),
    online("cam-orphan", "agent-dead"),
    online("cam-off", "agent-a"),
    deviceEvent("cam-off", 2, { type: "offline", reason: "keepalive-timeout" }),
  );
});
afterAll(() => api?.close());

describe("POST /devices/{deviceId}/commands: routing", () => {
  it("routes the command to the queue of the agent that holds the session, and answers 202", async () => {
    await api.drainAgentQueue(agentA);
    await api.drainAgentQueue(agentB);
    const { status, body } = await api.request("POST", "/devices/cam-b/commands", {
      type: "ptz",
      params: { channel: 1, command: "LEFT", action: "start" },
    });
    expect(status).toBe(202);
    expect(body).toMatchObject({
      deviceId: "cam-b",
      type: "ptz",
      state: "sent",
      agentId: "agent-b",
    });
    expect(await api.drainAgentQueue(agentA)).toEqual([]);
    expect(await api.drainAgentQueue(agentB)).toEqual([
      {
        kind: "command",
        commandId: body.commandId,
        deviceId: "cam-b",
        type: "ptz",
        params: { channel: 1, command: "LEFT", action: "start", speed: 4 },
        deadline: Date.parse(body.deadline),
      },
    ]);
  });

  it("answers 409 DEVICE_OFFLINE for an offline device, with a durable device-offline record", async () => {
    const { status, body } = await api.request("POST", "/devices/cam-off/commands", {
      type: "reboot",
    });
    expect(status).toBe(409);
    expect(body).toMatchObject({
      code: "DEVICE_OFFLINE",
      details: { command: { state: "device-offline", deviceId: "cam-off" } },
    });
    const record = await api.request("GET", `/commands/${body.details.command.commandId}`);
    expect(record.status).toBe(200);
    expect(record.body).toMatchObject({
      state: "device-offline",
      error: { code: "DEVICE_OFFLINE" },
    });
    expect(await api.drainAgentQueue(agentA)).toEqual([]);
  });

  it("answers 409 when the device's agent has no live heartbeat", async () => {
    const { status, body } = await api.request("POST", "/devices/cam-orphan/commands?wait=5", {
      type: "work-status",
    });
    expect(status).toBe(409);
    expect(body.message).toContain("agent-dead");
    expect(body.details.command.state).toBe("device-offline");
  });

  it("answers 404 DEVICE_NOT_FOUND for an unknown device, without a record", async () => {
    const { status, body } = await api.request("POST", "/devices/ghost/commands", {
      type: "reboot",
    });
    expect(status).toBe(404);
    expect(body.code).toBe("DEVICE_NOT_FOUND");
  });

  it("answers 422 with field details for an invalid command or wait", async () => {
    const bad = await api.request("POST", "/devices/cam-a/commands", {
      type: "ptz",
      params: { channel: 0, command: "SPIN", action: "start" },
    });
    expect(bad.status).toBe(422);
    expect(bad.body.details.map((d: { path: string }) => d.path)).toEqual(
      expect.arrayContaining(["params.channel", "params.command"]),
    );
    const deep = await api.request("POST", "/devices/cam-a/commands", {
      type: "set-config",
      params: { configCmd: "SetPicPara", config: { "bad name": "1" } },
    });
    expect(deep.status).toBe(422);
    const wait = await api.request("POST", "/devices/cam-a/commands?wait=26", { type: "reboot" });
    expect(wait.status).toBe(422);
    expect(wait.body.details).toEqual([expect.objectContaining({ in: "query", path: "wait" })]);
  });
});

describe("POST …/commands?wait=N: results inline", () => {
  /** Plays the agent: waits for the command on its queue, reports through command-results. */
  async function agentAnswers(
    agent: AgentRecord,
    answer: (commandId: string) => Parameters<ApiHarness["commandResult"]>[0],
  ): Promise<void> {
    for (let i = 0; i < 100; i++) {
      const [message] = await api.drainAgentQueue(agent);
      if (message?.kind === "command") return api.commandResult(answer(message.commandId));
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error("no command reached the agent");
  }

  it("answers 200 with the result once the command-results function applied it", async () => {
    const [response] = await Promise.all([
      api.request("POST", "/devices/cam-a/commands?wait=10", { type: "work-status" }),
      agentAnswers(agentA, (commandId) => ({
        commandId,
        deviceId: "cam-a",
        agentId: "agent-a",
        state: "succeeded",
        result: { deviceStatus: 0, channels: [{ channel: 1, recording: true }] },
        at: new Date().toISOString(),
      })),
    ]);
    expect(response.status).toBe(200);
    expect(response.body).toMatchObject({
      state: "succeeded",
      result: { deviceStatus: 0, channels: [{ channel: 1, recording: true }] },
    });
  });

  it("answers 502 DEVICE_ERROR with the device's status when the device refused", async () => {
    const [response] = await Promise.all([
      api.request("POST", "/devices/cam-a/commands?wait=10", { type: "reboot" }),
      agentAnswers(agentA, (commandId) => ({
        commandId,
        deviceId: "cam-a",
        agentId: "agent-a",
        state: "failed",
        error: { code: "DEVICE_STATUS", message: "Status 401: not allowed", status: 401 },
        at: new Date().toISOString(),
      })),
    ]);
    expect(response.status).toBe(502);
    expect(response.body).toMatchObject({
      code: "DEVICE_ERROR",
      message: "Status 401: not allowed",
      details: { command: { state: "failed", error: { status: 401 } } },
    });
  });

  it("answers 202 with the running command when wait expires first", async () => {
    const started = Date.now();
    const { status, body } = await api.request("POST", "/devices/cam-a/commands?wait=1", {
      type: "time-sync",
    });
    expect(status).toBe(202);
    expect(body.state).toBe("sent");
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
    await api.drainAgentQueue(agentA);
  });
});

describe("GET /commands/{commandId}", () => {
  it("moves a command left open past deadline + grace to timed-out, and ignores a late result", async () => {
    const accepted = await api.request("POST", "/devices/cam-a/commands", { type: "reboot" });
    expect(accepted.status).toBe(202);
    const { commandId } = accepted.body;
    await api.drainAgentQueue(agentA);

    // The agent died: no result ever comes. Within the grace period the command stays open…
    api.clock.advance(30_000 + 29_000);
    expect((await api.request("GET", `/commands/${commandId}`)).body.state).toBe("sent");
    // …and after it, the first read closes it.
    api.clock.advance(2_000);
    const read = await api.request("GET", `/commands/${commandId}`);
    expect(read.body).toMatchObject({ state: "timed-out", error: { code: "NO_RESULT" } });

    await api.commandResult({
      commandId,
      deviceId: "cam-a",
      agentId: "agent-a",
      state: "succeeded",
      at: new Date().toISOString(),
    });
    expect((await api.request("GET", `/commands/${commandId}`)).body.state).toBe("timed-out");
  });

  it("answers 404 COMMAND_NOT_FOUND for an unknown id", async () => {
    const { status, body } = await api.request("GET", "/commands/nope");
    expect(status).toBe(404);
    expect(body.code).toBe("COMMAND_NOT_FOUND");
  });
});
