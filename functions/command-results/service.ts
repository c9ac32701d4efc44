import type { CommandResult } from "../../lib/contracts/commands.ts";
import type { CommandItem } from "../shared/items.ts";
import type { Logger } from "../shared/logger.ts";

/**
 * A command's final state comes from the agent through the command-results queue. The record
 * moves only from `pending` or `sent` to a final state, by a conditional write: a redelivered
 * result, a late one (the API already moved the command to `timed-out`), or one for a command
 * this table does not hold, is a no-op, never an error, so it does not retry into the DLQ.
 */

export type ResultOutcome = "applied" | "already-final" | "unknown-command" | "device-mismatch";

export interface CommandResultsRepository {
  /**
   * Sets the final state when the record is `pending`/`sent` and belongs to `result.deviceId`.
   * Returns `{applied: true}` or the record as it was when the condition failed (absent if none).
   */
  applyResult(
    result: CommandResult,
    now: string,
  ): Promise<{ applied: true } | { applied: false; current: StoredCommand | undefined }>;
}

/** What a failed condition tells about the stored record. */
export type StoredCommand = Pick<CommandItem, "state" | "deviceId">;

export function skipReason(
  result: CommandResult,
  current: StoredCommand | undefined,
): ResultOutcome {
  if (!current) return "unknown-command";
  if (current.deviceId !== result.deviceId) return "device-mismatch";
  return "already-final";
}

export interface CommandResultsService {
  apply(result: CommandResult): Promise<ResultOutcome>;
}

export function createCommandResultsService(deps: {
  repository: CommandResultsRepository;
  clock: { now(): number };
  logger: Logger;
}): CommandResultsService {
  return {
    async apply(result) {
      const now = new Date(deps.clock.now()).toISOString();
      const outcome = await deps.repository.applyResult(result, now);
      if (outcome.applied) return "applied";
      const reason = skipReason(result, outcome.current);
      const fields = {
        commandId: result.commandId,
        deviceId: result.deviceId,
        reported: result.state,
        stored: outcome.current?.state,
      };
      // A duplicate or late result is routine; the other two point at a bug or a stale agent.
      if (reason === "already-final")
        deps.logger.info("command result ignored", { reason, ...fields });
      else deps.logger.warn("command result ignored", { reason, ...fields });
      return reason;
    },
  };
}
