import type { CommandParamsOf, CommandRequest } from "../../lib/contracts/commands.ts";
import { mintFirmwareToken } from "../../lib/contracts/upgrades.ts";
import type { CommandsService } from "../api/commands-service.ts";
import { ApiError } from "../shared/errors.ts";
import type { Dispatcher } from "./engine.ts";
import type { UpgradesRepository } from "./repository.ts";

/**
 * Sends an execution's `firmware-update` through the ordinary command path (commands service:
 * record first, routed to the agent holding the device's session, final state guaranteed). The
 * download token is bound to device, campaign, firmware and attempt, and expires with the
 * attempt's deadline; the agent turns it into `http://<public host>:<device HTTP port>/fw/<token>`.
 */
export function createCommandDispatcher(deps: {
  commands: Pick<CommandsService, "submit">;
  repository: Pick<UpgradesRepository, "getFirmware">;
  tokenKey: Uint8Array;
}): Dispatcher {
  return {
    async dispatch({ campaign, execution }) {
      const firmware = await deps.repository.getFirmware(campaign.firmwareId);
      if (firmware?.state !== "available") {
        return { kind: "error", message: `firmware ${campaign.firmwareId} is not available` };
      }
      const deadline = execution.deadline ?? 0;
      const params: CommandParamsOf<"firmware-update"> = {
        token: mintFirmwareToken(deps.tokenKey, {
          deviceId: execution.deviceId,
          campaignId: campaign.campaignId,
          firmwareId: firmware.firmwareId,
          expiresAt: Math.ceil(deadline / 1000),
          attempt: execution.attempt,
        }),
        fileSize: firmware.size,
        ...(firmware.md5 ? { md5: firmware.md5 } : {}),
        version: firmware.version,
      };
      try {
        // `firmware-update` is engine-only: the public CommandRequest schema refuses it, the
        // service itself only routes type and params.
        const request = { type: "firmware-update", params } as unknown as CommandRequest;
        const { command } = await deps.commands.submit(execution.deviceId, request, 0);
        return {
          kind: "sent",
          commandId: command.commandId,
          ...(command.agentId ? { agentId: command.agentId } : {}),
        };
      } catch (error) {
        if (error instanceof ApiError && error.code === "DEVICE_OFFLINE") {
          return { kind: "offline", reason: error.message };
        }
        return { kind: "error", message: error instanceof Error ? error.message : String(error) };
      }
    },
  };
}
