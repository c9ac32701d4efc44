import { randomUUID } from "node:crypto";
import {
  type CommandRequest,
  type CommandState,
  type CommandType,
  FINAL_COMMAND_STATES,
} from "../../lib/contracts/commands.ts";
import { expiresAt } from "../../lib/contracts/tables.ts";
import type { Clock } from "../shared/clock.ts";
import { ApiError } from "../shared/errors.ts";
import type { CommandItem } from "../shared/items.ts";
import type { Logger } from "../shared/logger.ts";
import { isAgentLive, queueUrlAllowed } from "./agents.ts";
import type { ApiConfig } from "./config.ts";
import type {
  AgentQueue,
  AgentsRepository,
  CommandsRepository,
  DevicesRepository,
} from "./ports.ts";
import { type CommandView, commandView } from "./views.ts";

/**
 * Command routing (architecture §2, "commands reach the agent that holds the session"):
 *
 * 1. the record is written first, `pending`, with a deadline: from here on it is durable and
 *    will reach a final state;
 * 2. device offline, or its agent without a live heartbeat → `device-offline` (409);
 * 3. otherwise an `AgentQueueMessage {kind: "command"}` goes to that agent's own queue and the
 *    record moves to `sent` (only from `pending`: a fast agent's result may already be there);
 * 4. the agent reports the final state through the command-results queue;
 * 5. read repair: a record read after deadline + grace while still `pending`/`sent` is moved to
 *    `timed-out` by a conditional write. So a command whose agent died (its queue is never read,
 *    no result ever comes) still ends, the first time anyone looks at it, and a result that
 *    arrives later finds a final state and is ignored.
 */

const FINAL = new Set<CommandState>(FINAL_COMMAND_STATES);
/** `time-sync`'s `timeZone` when the request has none (lib/contracts/commands.ts). */
const TIME_SYNC_DEFAULT_ZONE = "+00:00";
const OPEN_STATES = ["pending", "sent"] as const satisfies readonly CommandState[];

export function isFinal(state: CommandState): boolean {
  return FINAL.has(state);
}

export function isOverdue(item: CommandItem, nowMs: number, graceSeconds: number): boolean {
  return !isFinal(item.state) && nowMs > item.deadline + graceSeconds * 1000;
}

/** HTTP outcome of a command as last read: 200/202 with the command, or the error to throw. */
export function commandOutcome(item: CommandItem): { status: 200 | 202 } | ApiError {
  const details = { command: commandView(item) };
  switch (item.state) {
    case "succeeded":
      return { status: 200 };
    case "failed":
      return new ApiError(
        "DEVICE_ERROR",
        item.error?.message ?? "the device answered with an error",
        details,
      );
    case "timed-out":
      return new ApiError("DEVICE_TIMEOUT", item.error?.message ?? "no answer in time", details);
    case "device-offline":
      return new ApiError(
        "DEVICE_OFFLINE",
        item.error?.message ?? "the device is offline",
        details,
      );
    case "pending":
    case "sent":
      return { status: 202 };
  }
}

/** A command built by the API itself (not accepted by `POST /devices/{id}/commands`). */
export interface InternalCommand {
  type: CommandType;
  params: Record<string, unknown>;
}

export interface CommandsServiceDeps {
  devices: DevicesRepository;
  commands: CommandsRepository;
  agents: AgentsRepository;
  agentQueue: AgentQueue;
  clock: Clock;
  logger: Logger;
  newId?: () => string;
}

export function createCommandsService(config: ApiConfig, deps: CommandsServiceDeps) {
  const newId = deps.newId ?? randomUUID;
  const iso = (ms = deps.clock.now()) => new Date(ms).toISOString();

  /** Moves an open record to a final state; returns what is stored afterwards. */
  async function finish(
    item: CommandItem,
    state: "device-offline" | "timed-out" | "failed",
    error: { code: string; message: string },
  ): Promise<CommandItem> {
    const now = iso();
    const updated = await deps.commands.transition(item.commandId, OPEN_STATES, {
      state,
      error,
      completedAt: now,
      updatedAt: now,
    });
    return updated ?? (await deps.commands.get(item.commandId)) ?? item;
  }

  async function read(commandId: string): Promise<CommandItem | undefined> {
    const item = await deps.commands.get(commandId);
    if (!item || !isOverdue(item, deps.clock.now(), config.commandGraceSeconds)) return item;
    deps.logger.info("command overdue; moved to timed-out", { commandId, state: item.state });
    return finish(item, "timed-out", {
      code: "NO_RESULT",
      message: "no result reached the cloud before the command's deadline",
    });
  }

  /** Where the command goes, or why it cannot go anywhere. */
  async function route(
    agentId: string | undefined,
  ): Promise<{ queueUrl: string; agentId: string } | { reason: string }> {
    if (agentId === undefined) return { reason: "no agent holds the device's session" };
    const agent = await deps.agents.get(agentId);
    if (!agent || !isAgentLive(agent, deps.clock.now())) {
      return { reason: `agent ${agentId}, which held the device's session, is not running` };
    }
    if (!queueUrlAllowed(agent.commandQueueUrl, config.agentQueuePrefix)) {
      deps.logger.error("agent queue outside the agent-queue prefix", {
        agentId,
        queueUrl: agent.commandQueueUrl,
      });
      return { reason: `agent ${agentId} has no usable command queue` };
    }
    return { queueUrl: agent.commandQueueUrl, agentId };
  }

  /**
   * A `time-sync` that succeeded set the device's clock in `timeZone` (default `+00:00`): its
   * record times are in that offset from now on. Recorded when the API sees the success within
   * `?wait` (it is then fresh, so it cannot overwrite a newer `PUT`); best effort.
   */
  async function recordTimeZone(deviceId: string, item: CommandItem): Promise<void> {
    const timeZone =
      typeof item.params.timeZone === "string" ? item.params.timeZone : TIME_SYNC_DEFAULT_ZONE;
    try {
      await deps.devices.setTimeZone(deviceId, timeZone, iso());
    } catch (error) {
      deps.logger.warn("device timeZone not recorded after time-sync", { deviceId, error });
    }
  }

  async function waitForFinal(item: CommandItem, waitSeconds: number): Promise<CommandItem> {
    const until = deps.clock.now() + waitSeconds * 1000;
    let current = item;
    while (!isFinal(current.state)) {
      const left = until - deps.clock.now();
      if (left <= 0) break;
      await deps.clock.sleep(Math.min(config.waitPollIntervalMs, left));
      current = (await read(current.commandId)) ?? current;
    }
    return current;
  }

  return {
    /**
     * Accepts a command; resolves with 200/202 and the command, or throws an `ApiError`. Takes
     * the public `CommandRequest` (validated by the route) or a command the API builds itself
     * (media: `record-search`, `stream-*`), whose params the caller has validated.
     */
    async submit(
      deviceId: string,
      request: CommandRequest | InternalCommand,
      waitSeconds: number,
      /** `commandId`: the caller's id (a talk id is its `talk-start` command's id). */
      options: { commandId?: string } = {},
    ): Promise<{ status: 200 | 202; command: CommandView }> {
      const device = await deps.devices.get(deviceId);
      if (!device) throw new ApiError("DEVICE_NOT_FOUND", `no device ${deviceId}`);

      const nowMs = deps.clock.now();
      const now = iso(nowMs);
      const created: CommandItem = {
        commandId: options.commandId ?? newId(),
        deviceId,
        type: request.type,
        params: (request.params ?? {}) as Record<string, unknown>,
        state: "pending",
        createdAt: now,
        updatedAt: now,
        deadline: nowMs + config.commandDeadlineSeconds * 1000,
        expiresAt: expiresAt(nowMs, config.commandTtlSeconds),
      };
      await deps.commands.create(created);
      const log = deps.logger.child({ commandId: created.commandId, deviceId });

      let current: CommandItem;
      const target =
        device.status === "online"
          ? await route(device.agentId)
          : { reason: `device ${deviceId} is ${device.status ?? "not registered"}` };
      if ("reason" in target) {
        current = await finish(created, "device-offline", {
          code: "DEVICE_OFFLINE",
          message: target.reason,
        });
      } else {
        try {
          await deps.agentQueue.send(target.queueUrl, {
            kind: "command",
            commandId: created.commandId,
            deviceId,
            type: created.type,
            params: created.params,
            deadline: created.deadline,
          });
        } catch (error) {
          log.error("command not delivered to its agent", { agentId: target.agentId, error });
          current = await finish(created, "failed", {
            code: "DISPATCH_FAILED",
            message: `the command could not be delivered to agent ${target.agentId}`,
          });
          throw new ApiError("INTERNAL", "the command could not be delivered", {
            command: commandView(current),
          });
        }
        const sentAt = iso();
        current =
          (await deps.commands.transition(created.commandId, ["pending"], {
            state: "sent",
            agentId: target.agentId,
            sentAt,
            updatedAt: sentAt,
          })) ??
          (await read(created.commandId)) ??
          created;
        if (waitSeconds > 0) current = await waitForFinal(current, waitSeconds);
      }

      if (current.state === "succeeded" && current.type === "time-sync") {
        await recordTimeZone(deviceId, current);
      }

      // Without `wait` the answer is 202 with the command, whatever a fast agent already did;
      // only a command that could not be routed at all is refused (409).
      if (waitSeconds === 0 && current.state !== "device-offline") {
        return { status: 202, command: commandView(current) };
      }
      const outcome = commandOutcome(current);
      if (outcome instanceof ApiError) throw outcome;
      return { status: outcome.status, command: commandView(current) };
    },

    async get(commandId: string): Promise<CommandView> {
      const item = await read(commandId);
      if (!item) throw new ApiError("COMMAND_NOT_FOUND", `no command ${commandId}`);
      return commandView(item);
    },
  };
}

export type CommandsService = ReturnType<typeof createCommandsService>;
