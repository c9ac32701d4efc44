import { describe, expect, it } from "vitest";
import { MediaPortsExhaustedError } from "../../../edge-agent/media/errors.ts";
import type { MediaSend, TalkCommandTarget } from "../../../edge-agent/media/media-commands.ts";
import type { MediaLease, PortPool } from "../../../edge-agent/media/port-pool.ts";
import { createTalkManager, type TalkOutcome } from "../../../edge-agent/media/talk.ts";
import type { CommandSender } from "../../../edge-agent/signalling/command-sender.ts";
import { executeCommand } from "../../../edge-agent/signalling/commands.ts";
import type { AgentCommand } from "../../../lib/contracts/commands.ts";

/**
 * `talk-start` / `talk-stop` reach the agent's talk manager (`media.talk`) through
 * executeCommand (issue 8 item 2): params as the API sends them, the manager's refusals as the
 * failed command's error code (TALK_BUSY → the API's 409, no port → MEDIA_PORTS_EXHAUSTED, 503).
 */

const unusedSender = {
  send: () => Promise.reject(new Error("talk commands go through the talk manager")),
} as unknown as CommandSender;

function command(type: "talk-start" | "talk-stop", params: Record<string, unknown>): AgentCommand {
  return {
    commandId: "tk-0001",
    deviceId: "cam-1",
    type,
    params,
    deadline: Date.now() + 10_000,
  };
}

function run(cmd: AgentCommand, talk?: TalkCommandTarget) {
  return executeCommand(cmd, {
    sender: unusedSender,
    sessions: { get: () => undefined },
    agentId: "agent-1",
    ...(talk ? { talk } : {}),
  });
}

/** A talk manager double that records its calls and answers what the test says. */
function fakeTalk(outcome: TalkOutcome, stopped = true) {
  const calls: unknown[][] = [];
  const target: TalkCommandTarget = {
    startTalk: async (...args) => {
      calls.push(["start", ...args]);
      return outcome;
    },
    stopTalk: async (talkId) => {
      calls.push(["stop", talkId]);
      return stopped;
    },
  };
  return { target, calls };
}

describe("talk commands through executeCommand", () => {
  it("hands talk-start to the talk manager with the command's device and params; the result is the talk", async () => {
    const { target, calls } = fakeTalk({
      kind: "ok",
      talkId: "tk-0001",
      session: "77",
      port: 31_002,
    });
    const result = await run(
      command("talk-start", { talkId: "tk-0001", channel: 2, audioFormat: "G711A" }),
      target,
    );
    expect(calls).toEqual([
      ["start", "cam-1", { talkId: "tk-0001", channel: 2, audioFormat: "G711A" }],
    ]);
    expect(result).toMatchObject({
      commandId: "tk-0001",
      deviceId: "cam-1",
      agentId: "agent-1",
      state: "succeeded",
      result: { talkId: "tk-0001", session: "77", port: 31_002 },
    });
  });

  it("reports a busy channel as a failed command with code TALK_BUSY", async () => {
    const { target } = fakeTalk({
      kind: "failed",
      code: "TALK_BUSY",
      message: "the channel already has a talk",
    });
    const result = await run(
      command("talk-start", { talkId: "tk-0001", channel: 1, audioFormat: "G711U" }),
      target,
    );
    expect(result.state).toBe("failed");
    expect(result.error).toMatchObject({ code: "TALK_BUSY" });
  });

  it("reports no free pool port as MEDIA_PORTS_EXHAUSTED", async () => {
    const { target } = fakeTalk({ kind: "failed", code: "TALK_PORTS", message: "no free port" });
    const result = await run(
      command("talk-start", { talkId: "tk-0001", channel: 1, audioFormat: "G711U" }),
      target,
    );
    expect(result.error).toMatchObject({ code: "MEDIA_PORTS_EXHAUSTED" });
  });

  it("runs talk-stop idempotently: stopped says whether the talk was still there", async () => {
    const present = fakeTalk({ kind: "failed", code: "TALK_NOT_FOUND", message: "" }, true);
    const first = await run(command("talk-stop", { talkId: "tk-0001" }), present.target);
    expect(present.calls).toEqual([["stop", "tk-0001"]]);
    expect(first).toMatchObject({
      state: "succeeded",
      result: { talkId: "tk-0001", stopped: true },
    });
    const gone = fakeTalk({ kind: "failed", code: "TALK_NOT_FOUND", message: "" }, false);
    const again = await run(command("talk-stop", { talkId: "tk-0001" }), gone.target);
    expect(again).toMatchObject({ state: "succeeded", result: { stopped: false } });
  });

  it("refuses bad params before the manager sees them, and fails MEDIA_UNAVAILABLE without one", async () => {
    const { target, calls } = fakeTalk({ kind: "ok", talkId: "x", session: "1", port: 1 });
    const bad = await run(
      command("talk-start", { talkId: "tk 1", channel: 1, audioFormat: "G711U" }),
      target,
    );
    expect(bad.error).toMatchObject({ code: "VALIDATION_FAILED" });
    const udp = await run(
      command("talk-start", {
        talkId: "tk-1",
        channel: 1,
        audioFormat: "G711U",
        transport: "udp",
      }),
      target,
    );
    expect(udp.error).toMatchObject({ code: "VALIDATION_FAILED" });
    expect(calls).toEqual([]);
    const none = await run(command("talk-stop", { talkId: "tk-0001" }));
    expect(none).toMatchObject({ state: "failed", error: { code: "MEDIA_UNAVAILABLE" } });
  });
});

describe("talk commands with the real talk manager", () => {
  /** A pool double: leases whose device never connects; released leases counted. */
  function fakePool(free: number) {
    let released = 0;
    const pool = {
      acquire: async () => {
        if (free === 0) {
          throw new MediaPortsExhaustedError({ size: 1, leased: 1, bindFailures: 0 });
        }
        free--;
        let resolveDone!: () => void;
        const done = new Promise<void>((r) => {
          resolveDone = r;
        });
        const lease = {
          port: 31_000 + free,
          expectedHost: "127.0.0.1",
          connection: new Promise(() => undefined),
          done,
          refused: 0,
          released: false,
          release() {
            released++;
            free++;
            resolveDone();
          },
        };
        return lease as unknown as MediaLease;
      },
    } as unknown as PortPool;
    return { pool, released: () => released };
  }

  it("a second talk-start on the same device channel fails TALK_BUSY; after talk-stop it starts again", async () => {
    const sent: string[] = [];
    const send: MediaSend = async (_deviceId, commandId) => {
      sent.push(commandId);
      return { kind: "ok", status: 200, description: "OK", params: { Session: "9" } };
    };
    const { pool, released } = fakePool(2);
    const talk = createTalkManager(
      { publicHost: "203.0.113.1", acceptTimeoutMs: 5000, idleMs: 5000 },
      { pool, send, device: () => ({ host: "127.0.0.1" }) },
    );
    try {
      const params = { channel: 1, audioFormat: "G711U" };
      const first = await run(command("talk-start", { talkId: "tk-a", ...params }), talk);
      expect(first).toMatchObject({ state: "succeeded", result: { talkId: "tk-a", session: "9" } });
      const second = await run(command("talk-start", { talkId: "tk-b", ...params }), talk);
      expect(second).toMatchObject({ state: "failed", error: { code: "TALK_BUSY" } });
      const other = await run(
        command("talk-start", { talkId: "tk-c", channel: 2, audioFormat: "G711A" }),
        talk,
      );
      expect(other.state).toBe("succeeded");
      const exhausted = await run(
        command("talk-start", { talkId: "tk-d", channel: 3, audioFormat: "G711U" }),
        talk,
      );
      expect(exhausted.error).toMatchObject({ code: "MEDIA_PORTS_EXHAUSTED" });
      const stop = await run(command("talk-stop", { talkId: "tk-a" }), talk);
      expect(stop).toMatchObject({ state: "succeeded", result: { stopped: true } });
      expect(released()).toBe(1);
      const again = await run(command("talk-start", { talkId: "tk-e", ...params }), talk);
      expect(again.state).toBe("succeeded");
      expect(sent).toEqual(["inviteTalk", "inviteTalk", "byeStream", "inviteTalk"]);
    } finally {
      await talk.close();
    }
    expect(released()).toBe(3);
  });

  it("INVITETALK unanswered is timed-out (the API's 504), refused is failed with the device's status (502), a device gone is device-offline (409); the port comes back each time", async () => {
    const answers: Array<Awaited<ReturnType<MediaSend>>> = [
      { kind: "timeout" },
      { kind: "device-error", status: 401, description: "Unauthorized", params: {} },
      { kind: "offline" },
    ];
    const send: MediaSend = async () => answers.shift() ?? { kind: "timeout" };
    const { pool, released } = fakePool(1);
    let online = true;
    const talk = createTalkManager(
      { publicHost: "203.0.113.1", acceptTimeoutMs: 5000, idleMs: 5000 },
      { pool, send, device: () => (online ? { host: "127.0.0.1" } : undefined) },
    );
    try {
      const params = { channel: 1, audioFormat: "G711U" };
      const silent = await run(command("talk-start", { talkId: "tk-a", ...params }), talk);
      expect(silent).toMatchObject({ state: "timed-out", error: { code: "DEVICE_TIMEOUT" } });
      const refused = await run(command("talk-start", { talkId: "tk-b", ...params }), talk);
      expect(refused).toMatchObject({
        state: "failed",
        error: { code: "DEVICE_ERROR", status: 401, message: "Unauthorized" },
      });
      const gone = await run(command("talk-start", { talkId: "tk-c", ...params }), talk);
      expect(gone).toMatchObject({ state: "device-offline", error: { code: "DEVICE_OFFLINE" } });
      expect(released()).toBe(3);
      online = false;
      const unknown = await run(command("talk-start", { talkId: "tk-d", ...params }), talk);
      expect(unknown).toMatchObject({ state: "device-offline", error: { code: "DEVICE_OFFLINE" } });
      expect(released()).toBe(3); // refused before a port was leased
    } finally {
      await talk.close();
    }
  });
});
