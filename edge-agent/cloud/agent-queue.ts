import {
  CreateQueueCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  type Message,
  ReceiveMessageCommand,
  SendMessageCommand,
  SetQueueAttributesCommand,
} from "@aws-sdk/client-sqs";
import { AgentQueueMessage } from "../../lib/contracts/agent-messages.ts";
import { type AgentCommand, CommandResult } from "../../lib/contracts/commands.ts";
import {
  AGENT_COMMAND_QUEUE_ATTRIBUTES,
  agentCommandQueueName,
} from "../../lib/contracts/queues.ts";
import { createRateLimiter, type Logger, silentLogger } from "../log.ts";
import { backoffMs, isAbortError, type SqsSender, sleep } from "./aws.ts";

/**
 * The agent's own command channel (issue 3 item 5, agent half; architecture §2 "commands reach the
 * agent that holds the session"). At start the agent creates its queue (idempotently), named from
 * the deployment's prefix and its agent id, with a dead-letter queue; then long-polls it.
 *
 * - `command`: past its deadline → `timed-out` without touching the device; otherwise executed by
 *   the agent core. The result goes to the command-results queue, and only then is the message
 *   deleted, so a crash in between redelivers it. A redelivered command this process already ran
 *   is not run again: its cached result is (re)sent and the message deleted. A result that lands
 *   twice is harmless (the command-results function ignores results for final commands).
 * - `provisioning-changed`: the cached decision is forgotten and the agent re-checks the device,
 *   dropping it (`deprovisioned`) when it is online here and no longer allowed.
 * - Invalid messages (not JSON, or not an `AgentQueueMessage`) are logged and deleted: they can
 *   never become valid, and redelivering them would only delay them into the DLQ. The DLQ receives
 *   messages whose handling kept failing (results queue or devices table unreachable), after
 *   `maxReceiveCount` receives, instead of looping forever.
 */

export interface AgentCommandTarget {
  readonly commands: { execute(command: AgentCommand): Promise<CommandResult> };
  /** Looks the device up again; true when it was online here and has been dropped. */
  provisioningChanged(deviceId: string): Promise<boolean>;
}

export interface AgentQueueConfig {
  agentId: string;
  /** `AGENT_QUEUE_PREFIX` (e.g. `ehome-agent-cmd-`); the queue is `agentCommandQueueName`. */
  queuePrefix: string;
  commandResultsQueueUrl: string;
  /** Messages handled at once. Default 16. */
  concurrency?: number;
  /** Long-poll wait, 0–20 s. Default 20 (close() aborts it). */
  waitTimeSeconds?: number;
  /** Receives before a message moves to the DLQ; 0 creates no DLQ. Default 5. */
  maxReceiveCount?: number;
  /** Attempts to send one result before leaving the message for redelivery. Default 4. */
  resultSendAttempts?: number;
  retryBaseMs?: number;
  retryMaxMs?: number;
  /** Command ids remembered to recognise redeliveries. Default 2 000. */
  recentCommands?: number;
  /** How long close() waits for commands being handled. Default 10 s. */
  closeTimeoutMs?: number;
}

export interface AgentQueueDeps {
  sqs: () => SqsSender;
  agent: AgentCommandTarget;
  /** Told first on `provisioning-changed`, so the agent's re-check reads the table. */
  provisioning?: { invalidate(deviceId: string): void };
  log?: Logger;
  now?: () => number;
  random?: () => number;
}

export interface AgentQueueCounters {
  received: number;
  /** `command` messages received (redeliveries included). */
  commandMessages: number;
  /** Commands past their deadline on arrival (reported `timed-out`, not run). */
  expired: number;
  /** Redeliveries of a command already running or done here. */
  duplicates: number;
  invalid: number;
  provisioningChanges: number;
  /** Devices dropped because of a provisioning change. */
  devicesDropped: number;
  resultsSent: number;
  resultErrors: number;
  handlerErrors: number;
  deleteErrors: number;
  receiveErrors: number;
  /** Messages being handled now. */
  active: number;
}

export interface AgentQueue {
  /**
   * Creates the queue (and DLQ) if needed, starts polling; resolves with the queue URL. When the
   * creation fails it may be called again.
   */
  start(): Promise<string>;
  readonly url: string | undefined;
  counters(): AgentQueueCounters;
  /** Stops polling at once (aborts the long poll), waits for messages being handled. Idempotent. */
  close(): Promise<void>;
}

/** SQS queue names are at most 80 characters. */
function deadLetterName(queueName: string): string {
  return `${queueName.slice(0, 76)}-dlq`;
}

/** `QueueNameExists` (AWS names it `QueueAlreadyExists` in places; emulators may prefix it). */
function alreadyExists(err: unknown): boolean {
  const name = String((err as { name?: unknown } | undefined)?.name ?? "");
  return /(^|\.)(QueueNameExists|QueueAlreadyExists)$/.test(name);
}

export function createAgentQueue(config: AgentQueueConfig, deps: AgentQueueDeps): AgentQueue {
  const concurrency = Math.max(1, config.concurrency ?? 16);
  const waitTimeSeconds = config.waitTimeSeconds ?? 20;
  const maxReceiveCount = config.maxReceiveCount ?? 5;
  const resultAttempts = Math.max(1, config.resultSendAttempts ?? 4);
  const retry = { baseMs: config.retryBaseMs ?? 200, maxMs: config.retryMaxMs ?? 5_000 };
  const recentMax = config.recentCommands ?? 2_000;
  const closeTimeoutMs = config.closeTimeoutMs ?? 10_000;
  const log = deps.log ?? silentLogger;
  const now = deps.now ?? Date.now;
  const random = deps.random ?? Math.random;
  const limiter = createRateLimiter({ intervalMs: 60_000 });
  const logLimited = (
    key: string,
    level: "warn" | "error",
    msg: string,
    fields: Record<string, unknown>,
  ) => {
    const { allowed, suppressed } = limiter.allow(key);
    if (allowed) log[level](msg, suppressed ? { ...fields, suppressed } : fields);
  };
  const queueName = agentCommandQueueName(config.queuePrefix, config.agentId);
  const c: AgentQueueCounters = {
    received: 0,
    commandMessages: 0,
    expired: 0,
    duplicates: 0,
    invalid: 0,
    provisioningChanges: 0,
    devicesDropped: 0,
    resultsSent: 0,
    resultErrors: 0,
    handlerErrors: 0,
    deleteErrors: 0,
    receiveErrors: 0,
    active: 0,
  };
  /** Aborted by close(): the long poll and retry sleeps. */
  const stopPolling = new AbortController();
  /** Aborted when close() stops waiting: in-flight result sends and deletes. */
  const hardStop = new AbortController();
  const handling = new Set<Promise<void>>();
  /** Commands running here, with the newest receipt handle (a redelivery replaces it). */
  const running = new Map<string, { receipt: string }>();
  /** Results of commands run here, and whether they reached the results queue. */
  const recent = new Map<string, { result: CommandResult; sent: boolean }>();
  let url: string | undefined;
  let loop: Promise<void> | undefined;
  let slotFreed: (() => void) | undefined;
  let started = false;
  let closed = false;
  let closing: Promise<void> | undefined;

  const sqs = () => deps.sqs();

  const ensureQueue = async (name: string, attributes: Record<string, string>) => {
    let queueUrl: string | undefined;
    try {
      queueUrl = (
        await sqs().send(new CreateQueueCommand({ QueueName: name, Attributes: attributes }))
      ).QueueUrl;
    } catch (err) {
      // Same name, other attributes (an older agent or contract): converge instead of failing.
      if (!alreadyExists(err)) throw err;
      queueUrl = (await sqs().send(new GetQueueUrlCommand({ QueueName: name }))).QueueUrl;
      try {
        await sqs().send(
          new SetQueueAttributesCommand({ QueueUrl: queueUrl, Attributes: attributes }),
        );
      } catch (setErr) {
        // The queue exists and works with its old attributes; a role without
        // sqs:SetQueueAttributes must not stop the agent.
        log.warn("agent queue exists with other attributes; keeping them", {
          queue: name,
          err: setErr,
        });
      }
    }
    if (!queueUrl) throw new Error(`CreateQueue ${name} returned no URL`);
    return queueUrl;
  };

  const create = async (): Promise<string> => {
    const attributes: Record<string, string> = { ...AGENT_COMMAND_QUEUE_ATTRIBUTES };
    if (maxReceiveCount > 0) {
      const dlqUrl = await ensureQueue(deadLetterName(queueName), {
        SqsManagedSseEnabled: AGENT_COMMAND_QUEUE_ATTRIBUTES.SqsManagedSseEnabled,
        // The DLQ is for looking at later: keep its messages the SQS maximum (14 days).
        MessageRetentionPeriod: String(14 * 24 * 60 * 60),
      });
      const { Attributes } = await sqs().send(
        new GetQueueAttributesCommand({ QueueUrl: dlqUrl, AttributeNames: ["QueueArn"] }),
      );
      if (!Attributes?.QueueArn) throw new Error(`queue ${dlqUrl} has no ARN`);
      attributes.RedrivePolicy = JSON.stringify({
        deadLetterTargetArn: Attributes.QueueArn,
        maxReceiveCount,
      });
    }
    return ensureQueue(queueName, attributes);
  };

  const remember = (commandId: string, result: CommandResult) => {
    const entry = { result, sent: false };
    recent.delete(commandId);
    recent.set(commandId, entry);
    while (recent.size > recentMax) recent.delete(recent.keys().next().value as string);
    return entry;
  };

  const deleteMessage = async (receipt: string) => {
    try {
      await sqs().send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: receipt }), {
        abortSignal: hardStop.signal,
      });
    } catch (err) {
      c.deleteErrors++;
      logLimited("delete", "warn", "agent queue message not deleted", { err });
    }
  };

  const sendResult = async (entry: { result: CommandResult; sent: boolean }) => {
    const body = JSON.stringify(entry.result);
    for (let attempt = 1; attempt <= resultAttempts; attempt++) {
      try {
        await sqs().send(
          new SendMessageCommand({ QueueUrl: config.commandResultsQueueUrl, MessageBody: body }),
          { abortSignal: hardStop.signal },
        );
        entry.sent = true;
        c.resultsSent++;
        return true;
      } catch (err) {
        c.resultErrors++;
        if (hardStop.signal.aborted || isAbortError(err)) return false;
        logLimited("result", "error", "command result not sent", {
          err,
          commandId: entry.result.commandId,
          attempt,
        });
        if (attempt < resultAttempts) {
          await sleep(backoffMs(attempt, retry, random), hardStop.signal);
        }
      }
    }
    return false;
  };

  const expiredResult = (cmd: AgentCommand): CommandResult => ({
    commandId: cmd.commandId,
    deviceId: cmd.deviceId,
    agentId: config.agentId,
    state: "timed-out",
    error: { code: "DEADLINE_PASSED", message: "the command's deadline passed before it started" },
    at: new Date(now()).toISOString(),
  });

  const execute = async (cmd: AgentCommand): Promise<CommandResult> => {
    if (cmd.deadline <= now()) {
      c.expired++;
      return expiredResult(cmd);
    }
    try {
      const result = CommandResult.safeParse(await deps.agent.commands.execute(cmd));
      if (result.success) return result.data;
      throw new Error(`invalid result: ${result.error.issues[0]?.message}`);
    } catch (err) {
      c.handlerErrors++;
      log.error("command execution failed", { err, commandId: cmd.commandId });
      return {
        commandId: cmd.commandId,
        deviceId: cmd.deviceId,
        agentId: config.agentId,
        state: "failed",
        error: { code: "INTERNAL", message: "the agent failed to run the command" },
        at: new Date(now()).toISOString(),
      };
    }
  };

  const handleCommand = async (cmd: AgentCommand, receipt: string) => {
    c.commandMessages++;
    const active = running.get(cmd.commandId);
    if (active) {
      // Redelivered while running (a visibility timeout shorter than the command): delete the
      // message with the newest handle when it finishes; SQS may ignore an older one.
      c.duplicates++;
      active.receipt = receipt;
      return;
    }
    const done = recent.get(cmd.commandId);
    if (done) {
      c.duplicates++;
      if (done.sent || (await sendResult(done))) await deleteMessage(receipt);
      return;
    }
    const slot = { receipt };
    running.set(cmd.commandId, slot);
    try {
      const entry = remember(cmd.commandId, await execute(cmd));
      if (await sendResult(entry)) await deleteMessage(slot.receipt);
    } finally {
      running.delete(cmd.commandId);
    }
  };

  const handle = async (message: Message) => {
    c.received++;
    const receipt = message.ReceiptHandle;
    if (!receipt) return;
    let parsed: AgentQueueMessage;
    try {
      parsed = AgentQueueMessage.parse(JSON.parse(message.Body ?? ""));
    } catch (err) {
      c.invalid++;
      logLimited("invalid", "warn", "invalid agent queue message deleted", {
        err,
        messageId: message.MessageId,
        body: (message.Body ?? "").slice(0, 200),
      });
      await deleteMessage(receipt);
      return;
    }
    switch (parsed.kind) {
      case "command": {
        const { kind: _kind, ...cmd } = parsed;
        await handleCommand(cmd, receipt);
        return;
      }
      case "provisioning-changed": {
        c.provisioningChanges++;
        deps.provisioning?.invalidate(parsed.deviceId);
        try {
          if (await deps.agent.provisioningChanged(parsed.deviceId)) c.devicesDropped++;
        } catch (err) {
          // Left for redelivery: the table may be back by then.
          c.handlerErrors++;
          logLimited("provisioning", "error", "provisioning re-check failed", {
            err,
            deviceId: parsed.deviceId,
          });
          return;
        }
        await deleteMessage(receipt);
        return;
      }
    }
  };

  const dispatch = (message: Message) => {
    c.active++;
    const p = handle(message)
      .catch((err: unknown) => {
        c.handlerErrors++;
        log.error("agent queue handler failed", { err });
      })
      .finally(() => {
        c.active--;
        handling.delete(p);
        slotFreed?.();
      });
    handling.add(p);
  };

  const poll = async () => {
    let failures = 0;
    while (!closed) {
      if (c.active >= concurrency) {
        await new Promise<void>((resolve) => {
          slotFreed = resolve;
        });
        slotFreed = undefined;
        continue;
      }
      try {
        const out = await sqs().send(
          new ReceiveMessageCommand({
            QueueUrl: url,
            MaxNumberOfMessages: Math.min(10, concurrency - c.active),
            WaitTimeSeconds: waitTimeSeconds,
          }),
          { abortSignal: stopPolling.signal },
        );
        failures = 0;
        for (const message of out.Messages ?? []) dispatch(message);
      } catch (err) {
        if (closed) break;
        c.receiveErrors++;
        failures++;
        logLimited("receive", "error", "agent queue receive failed", { err, queue: url });
        await sleep(
          backoffMs(failures, { baseMs: 500, maxMs: 20_000 }, random),
          stopPolling.signal,
        );
      }
    }
  };

  return {
    async start() {
      if (started) throw new Error("agent queue already started");
      if (closed) throw new Error("agent queue is closed");
      started = true;
      try {
        url = await create();
      } catch (err) {
        // SQS unreachable: the caller may try again (cloud/index.ts retries in the background).
        started = false;
        throw err;
      }
      if (!closed) loop = poll();
      return url;
    },
    get url() {
      return url;
    },
    counters: () => ({ ...c }),
    close() {
      closing ??= (async () => {
        closed = true;
        stopPolling.abort();
        slotFreed?.();
        await loop;
        if (handling.size > 0) {
          const giveUp = new AbortController();
          await Promise.race([
            Promise.allSettled([...handling]),
            sleep(closeTimeoutMs, giveUp.signal),
          ]);
          giveUp.abort();
        }
        // Result sends and deletes still running are abandoned: their messages are redelivered.
        hardStop.abort();
      })();
      return closing;
    },
  };
}
