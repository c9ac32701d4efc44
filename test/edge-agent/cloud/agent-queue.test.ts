import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import {
  type AgentCommandTarget,
  type AgentQueue,
  createAgentQueue,
} from "../../../edge-agent/cloud/agent-queue.ts";
import type { SqsSender } from "../../../edge-agent/cloud/aws.ts";
import type { AgentQueueMessage } from "../../../lib/contracts/agent-messages.ts";
import type { AgentCommand, CommandResult } from "../../../lib/contracts/commands.ts";
import { agentCommandQueuePrefix } from "../../../lib/contracts/queues.ts";

/**
 * Redelivery, concurrency and shutdown rules of the agent's command queue, against an in-memory
 * SQS stand-in with fake timers. The real round trip (fauxqs, a device on loopback) is in
 * cloud-adapters.test.ts.
 */

interface FakeMessage {
  MessageId: string;
  Body: string;
  ReceiptHandle: string;
}

interface FakeInput {
  QueueName?: string;
  MaxNumberOfMessages?: number;
  MessageBody?: string;
  ReceiptHandle?: string;
}

function fakeSqs() {
  const visible: FakeMessage[] = [];
  const deleted: string[] = [];
  const results: CommandResult[] = [];
  const created: string[] = [];
  let pollWaiter: (() => void) | undefined;
  let receipts = 0;
  const state = { failResults: 0, polls: 0 };

  const send = async (
    command: { constructor: { name: string }; input: FakeInput },
    opts?: { abortSignal?: AbortSignal },
  ) => {
    const input = command.input;
    switch (command.constructor.name) {
      case "CreateQueueCommand":
        created.push(input.QueueName!);
        return { QueueUrl: `http://sqs.local/000/${input.QueueName}` };
      case "GetQueueAttributesCommand":
        return { Attributes: { QueueArn: "arn:aws:sqs:local:000:dlq" } };
      case "ReceiveMessageCommand": {
        state.polls++;
        const signal = opts?.abortSignal;
        while (visible.length === 0) {
          await new Promise<void>((resolve, reject) => {
            if (signal?.aborted)
              reject(Object.assign(new Error("aborted"), { name: "AbortError" }));
            pollWaiter = resolve;
            signal?.addEventListener("abort", () =>
              reject(Object.assign(new Error("aborted"), { name: "AbortError" })),
            );
          });
        }
        return { Messages: visible.splice(0, input.MaxNumberOfMessages) };
      }
      case "SendMessageCommand":
        if (state.failResults > 0) {
          state.failResults--;
          throw Object.assign(new Error("results queue unavailable"), { name: "InternalError" });
        }
        results.push(JSON.parse(input.MessageBody!));
        return {};
      case "DeleteMessageCommand":
        deleted.push(input.ReceiptHandle!);
        return {};
      default:
        throw new Error(`unexpected ${command.constructor.name}`);
    }
  };
  return {
    sender: { send } as unknown as SqsSender,
    state,
    deleted,
    results,
    created,
    /** Puts a message (again) on the queue; returns its receipt handle for this delivery. */
    deliver(messageId: string, message: AgentQueueMessage | string): string {
      const receipt = `rh-${++receipts}`;
      visible.push({
        MessageId: messageId,
        Body: typeof message === "string" ? message : JSON.stringify(message),
        ReceiptHandle: receipt,
      });
      pollWaiter?.();
      return receipt;
    },
  };
}

function command(commandId: string, deadline = Date.now() + 60_000): AgentQueueMessage {
  return { kind: "command", commandId, deviceId: "cam-1", type: "reboot", params: {}, deadline };
}

function succeeded(cmd: AgentCommand): CommandResult {
  return {
    commandId: cmd.commandId,
    deviceId: cmd.deviceId,
    agentId: "agent-1",
    state: "succeeded",
    at: new Date().toISOString(),
  };
}

/** An agent whose commands finish when the test says so. */
function controlledAgent() {
  const running = new Map<string, () => void>();
  const executed: string[] = [];
  let concurrent = 0;
  let maxConcurrent = 0;
  const agent: AgentCommandTarget = {
    commands: {
      execute(cmd) {
        executed.push(cmd.commandId);
        concurrent++;
        maxConcurrent = Math.max(maxConcurrent, concurrent);
        return new Promise((resolve) => {
          running.set(cmd.commandId, () => {
            concurrent--;
            running.delete(cmd.commandId);
            resolve(succeeded(cmd));
          });
        });
      },
    },
    provisioningChanged: vi.fn(async () => false),
  };
  return {
    agent,
    executed,
    finish: (id: string) => running.get(id)!(),
    get running() {
      return [...running.keys()];
    },
    get maxConcurrent() {
      return maxConcurrent;
    },
  };
}

describe("agent command queue", () => {
  const queues: AgentQueue[] = [];
  const make = (
    fake: ReturnType<typeof fakeSqs>,
    agent: AgentCommandTarget,
    extra: { concurrency?: number; invalidate?: (id: string) => void } = {},
  ) => {
    const q = createAgentQueue(
      {
        agentId: "agent-1",
        queuePrefix: agentCommandQueuePrefix("ehome"),
        commandResultsQueueUrl: "http://sqs.local/000/command-results",
        concurrency: extra.concurrency,
        retryBaseMs: 100,
      },
      {
        sqs: () => fake.sender,
        agent,
        provisioning: { invalidate: extra.invalidate ?? (() => {}) },
        random: () => 0.5,
      },
    );
    queues.push(q);
    return q;
  };

  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(async () => {
    const closing = Promise.all(queues.splice(0).map((q) => q.close()));
    await vi.runAllTimersAsync();
    await closing;
    vi.useRealTimers();
  });

  it("creates its queue and a DLQ under the agent-queue prefix", async () => {
    const fake = fakeSqs();
    const url = await make(fake, controlledAgent().agent).start();
    expect(fake.created).toEqual(["ehome-agent-cmd-agent-1-dlq", "ehome-agent-cmd-agent-1"]);
    expect(url).toBe("http://sqs.local/000/ehome-agent-cmd-agent-1");
  });

  it("close() aborts a waiting long poll at once and leaves no timers", async () => {
    const fake = fakeSqs();
    const q = make(fake, controlledAgent().agent);
    await q.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(fake.state.polls).toBe(1);
    await q.close(); // no timer advanced: the abort alone ends the poll
    expect(vi.getTimerCount()).toBe(0);
    expect(fake.state.polls).toBe(1);
  });

  it("does not run a command again when it is redelivered while running; the newest receipt deletes it", async () => {
    const fake = fakeSqs();
    const a = controlledAgent();
    await make(fake, a.agent).start();
    fake.deliver("m1", command("c1"));
    await vi.advanceTimersByTimeAsync(0);
    const second = fake.deliver("m1", command("c1")); // visibility timeout ran out meanwhile
    await vi.advanceTimersByTimeAsync(0);
    a.finish("c1");
    await vi.advanceTimersByTimeAsync(0);
    expect(a.executed).toEqual(["c1"]);
    expect(fake.results.map((r) => r.commandId)).toEqual(["c1"]);
    expect(fake.deleted).toEqual([second]);
  });

  it("keeps the message when its result cannot be sent, and answers the redelivery from the cached result", async () => {
    const fake = fakeSqs();
    const a = controlledAgent();
    const q = make(fake, a.agent);
    await q.start();
    fake.state.failResults = 4; // every attempt of the first delivery
    fake.deliver("m1", command("c1"));
    await vi.advanceTimersByTimeAsync(0);
    a.finish("c1");
    await vi.advanceTimersByTimeAsync(5_000); // backoff between the four attempts
    expect(fake.results).toHaveLength(0);
    expect(fake.deleted).toHaveLength(0);
    expect(q.counters()).toMatchObject({ resultErrors: 4, resultsSent: 0 });

    const again = fake.deliver("m1", command("c1"));
    await vi.advanceTimersByTimeAsync(0);
    expect(a.executed).toEqual(["c1"]); // the device was not rebooted twice
    expect(fake.results.map((r) => [r.commandId, r.state])).toEqual([["c1", "succeeded"]]);
    expect(fake.deleted).toEqual([again]);
    expect(q.counters()).toMatchObject({ duplicates: 1, resultsSent: 1 });
  });

  it("handles at most `concurrency` messages at once", async () => {
    const fake = fakeSqs();
    const a = controlledAgent();
    await make(fake, a.agent, { concurrency: 2 }).start();
    for (let i = 1; i <= 5; i++) fake.deliver(`m${i}`, command(`c${i}`));
    await vi.advanceTimersByTimeAsync(0);
    expect(a.running).toHaveLength(2);
    while (a.running.length > 0) {
      a.finish(a.running[0]!);
      await vi.advanceTimersByTimeAsync(0);
    }
    expect(a.executed.sort()).toEqual(["c1", "c2", "c3", "c4", "c5"]);
    expect(a.maxConcurrent).toBe(2);
    expect(fake.results).toHaveLength(5);
  });

  it("leaves a provisioning change for redelivery when the re-check fails", async () => {
    const fake = fakeSqs();
    const a = controlledAgent();
    a.agent.provisioningChanged = vi.fn(async () => {
      throw new Error("devices table unavailable");
    });
    const invalidated: string[] = [];
    const q = make(fake, a.agent, { invalidate: (id) => invalidated.push(id) });
    await q.start();
    fake.deliver("m1", { kind: "provisioning-changed", deviceId: "cam-9" });
    await vi.advanceTimersByTimeAsync(0);
    expect(invalidated).toEqual(["cam-9"]);
    expect(a.agent.provisioningChanged).toHaveBeenCalledWith("cam-9");
    expect(fake.deleted).toHaveLength(0);
    expect(q.counters()).toMatchObject({ provisioningChanges: 1, handlerErrors: 1 });
  });

  it("deletes messages that are not AgentQueueMessages", async () => {
    const fake = fakeSqs();
    const q = make(fake, controlledAgent().agent);
    await q.start();
    const r1 = fake.deliver("m1", "not json");
    const r2 = fake.deliver("m2", JSON.stringify({ kind: "command", commandId: "c1" }));
    await vi.advanceTimersByTimeAsync(0);
    expect(fake.deleted).toEqual([r1, r2]);
    expect(q.counters()).toMatchObject({ invalid: 2, commandMessages: 0 });
  });
});
