import { randomUUID } from "node:crypto";
import { STREAM_TOKEN_TTL_SECONDS } from "../../lib/contracts/media.ts";
import { PORTS } from "../../lib/contracts/ports.ts";
import {
  mintTalkToken,
  type TalkRequest,
  TalkStartParams,
  type TalkStartResult,
  talkUrl,
} from "../../lib/contracts/talk.ts";
import type { Clock } from "../shared/clock.ts";
import { ApiError, type ErrorCode } from "../shared/errors.ts";
import type { Logger } from "../shared/logger.ts";
import { isAgentLive } from "./agents.ts";
import type { CommandsService } from "./commands-service.ts";
import type { AgentsRepository, DevicesRepository } from "./ports.ts";
import type { CommandView } from "./views.ts";

/**
 * Voice talk through the command path (issue 8 item 2; lib/contracts/talk.ts, ehome-2.0 §8
 * `INVITETALK`): `POST /devices/{id}/talk` runs `talk-start` with `wait` on the agent holding the
 * device and answers the agent's WebSocket URL with a signed, expiring talk token; the talk id is
 * the `talk-start` command's id, so `DELETE /talk/{id}` finds the device (and whether the talk
 * exists) from the commands table and runs `talk-stop`.
 */

export interface TalkConfig {
  /** How long `POST /devices/{id}/talk` waits for the device to accept. */
  readonly startWaitSeconds: number;
  /** `DELETE /talk/{id}` waits this long for BYESTREAM, then answers 204 anyway. */
  readonly stopWaitSeconds: number;
  /** Lifetime of the talk URL's token. */
  readonly tokenTtlSeconds: number;
}

export const DEFAULT_TALK_CONFIG: TalkConfig = {
  startWaitSeconds: 15,
  stopWaitSeconds: 5,
  tokenTtlSeconds: STREAM_TOKEN_TTL_SECONDS,
};

export interface TalkServiceDeps {
  devices: DevicesRepository;
  agents: AgentsRepository;
  commands: CommandsService;
  /** `STREAM_TOKEN_KEY`, parsed (the agent checks talk tokens with it). */
  tokenKey: Uint8Array;
  clock: Clock;
  logger: Logger;
  newTalkId?: () => string;
}

export function newTalkId(): string {
  return `tk-${randomUUID().replace(/-/g, "")}`;
}

/**
 * Agent codes of a failed `talk-start` (`CommandResult.error.code`) with an API error of their
 * own; any other failure keeps the command mapping (502 device error, 504 timeout, 409 offline).
 */
const AGENT_CODE_ERRORS: Readonly<Record<string, ErrorCode>> = {
  TALK_BUSY: "TALK_BUSY",
  MEDIA_PORTS_EXHAUSTED: "MEDIA_PORTS_EXHAUSTED",
  DEVICE_TIMEOUT: "DEVICE_TIMEOUT",
  DEVICE_OFFLINE: "DEVICE_OFFLINE",
};

function talkError(error: ApiError): ApiError {
  const command = (error.details as { command?: CommandView } | undefined)?.command;
  const code = command?.error?.code;
  const mapped = code === undefined ? undefined : AGENT_CODE_ERRORS[code];
  return mapped ? new ApiError(mapped, error.message, error.details) : error;
}

export function createTalkService(config: TalkConfig, deps: TalkServiceDeps) {
  const newId = deps.newTalkId ?? newTalkId;

  return {
    async start(deviceId: string, request: TalkRequest): Promise<TalkStartResult> {
      const device = await deps.devices.get(deviceId);
      if (!device) throw new ApiError("DEVICE_NOT_FOUND", `no device ${deviceId}`);
      if (device.channelCount !== undefined && request.channel > device.channelCount) {
        throw new ApiError("VALIDATION_FAILED", "the request is not valid", [
          {
            in: "body",
            path: "channel",
            message: `device ${deviceId} has ${device.channelCount} channel(s); channel ${request.channel} does not exist`,
          },
        ]);
      }
      const talkId = newId();
      const params = TalkStartParams.parse({
        talkId,
        channel: request.channel,
        audioFormat: request.audioFormat,
        transport: "tcp",
      });
      const log = deps.logger.child({ talkId, deviceId });
      let command: CommandView;
      try {
        const r = await deps.commands.submit(
          deviceId,
          { type: "talk-start", params },
          config.startWaitSeconds,
          { commandId: talkId },
        );
        if (r.status === 202) {
          throw new ApiError(
            "DEVICE_TIMEOUT",
            `no answer to talk-start within ${config.startWaitSeconds} s`,
            { command: r.command },
          );
        }
        command = r.command;
      } catch (error) {
        if (!(error instanceof ApiError)) throw error;
        if (error.code === "DEVICE_TIMEOUT") {
          // The device may still accept: tell the agent to let go of it (best effort).
          await deps.commands
            .submit(deviceId, { type: "talk-stop", params: { talkId } }, 0)
            .catch((e: unknown) => log.warn("talk-stop after a start timeout not sent", { e }));
        }
        throw talkError(error);
      }
      const agentId = command.agentId ?? device.agentId;
      const agent = agentId === undefined ? undefined : await deps.agents.get(agentId);
      if (!agent || !isAgentLive(agent, deps.clock.now())) {
        throw new ApiError("DEVICE_OFFLINE", `agent ${agentId}, which holds the talk, is gone`);
      }
      const expiresAt = Math.floor(deps.clock.now() / 1000) + config.tokenTtlSeconds;
      const token = mintTalkToken(deps.tokenKey, { talkId, deviceId, expiresAt });
      return {
        talkId,
        url: talkUrl(
          agent.publicHost,
          agent.viewerPort ?? PORTS.viewerHttpTcp,
          talkId,
          token,
          request.codec,
        ),
        expiresAt: new Date(expiresAt * 1000).toISOString(),
      };
    },

    /** Idempotent: an ended talk, or one whose device or agent is gone, answers all the same. */
    async stop(talkId: string): Promise<void> {
      let start: CommandView;
      try {
        start = await deps.commands.get(talkId);
      } catch (error) {
        if (error instanceof ApiError && error.code === "COMMAND_NOT_FOUND") {
          throw new ApiError("TALK_NOT_FOUND", `no talk ${talkId}`);
        }
        throw error;
      }
      if (start.type !== "talk-start") throw new ApiError("TALK_NOT_FOUND", `no talk ${talkId}`);
      try {
        await deps.commands.submit(
          start.deviceId,
          { type: "talk-stop", params: { talkId } },
          config.stopWaitSeconds,
        );
      } catch (error) {
        if (!(error instanceof ApiError)) throw error;
        // Over all the same: the device or its agent is gone, or the agent ends it when idle.
        deps.logger.info("talk-stop not confirmed", { talkId, code: error.code });
      }
    },
  };
}

export type TalkService = ReturnType<typeof createTalkService>;
