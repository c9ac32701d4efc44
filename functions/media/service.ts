import { FINAL_STREAM_STATES, type StreamEvent } from "../../lib/contracts/media.ts";
import type { Logger } from "../shared/logger.ts";
import type { MediaEventsRepository, StoredStream } from "./repository.ts";

/**
 * Stream state from the agents (media.ts `StreamEvent`, media-events queue) onto the streams
 * table. One conditional write per event: it applies only when the record exists, belongs to
 * the event's device, holds an older `seq`, and is not final. So redeliveries, reordering
 * across batches and late counters after a stop are no-ops, never errors (nothing retries into
 * the DLQ for them), and a final state (`stopped`, `completed`, `failed`, also when the API set
 * it on DELETE or a failed start) is never moved back.
 */

export type MediaEventOutcome =
  | "applied"
  | "stale"
  | "already-final"
  | "unknown-stream"
  | "device-mismatch";

export function skipReason(event: StreamEvent, current: StoredStream | undefined) {
  if (!current) return "unknown-stream" as const;
  if (current.deviceId !== event.deviceId) return "device-mismatch" as const;
  if (FINAL_STREAM_STATES.includes(current.state)) return "already-final" as const;
  return "stale" as const;
}

export interface MediaEventsService {
  apply(event: StreamEvent): Promise<MediaEventOutcome>;
}

export function createMediaEventsService(deps: {
  repository: MediaEventsRepository;
  clock: { now(): number };
  logger: Logger;
}): MediaEventsService {
  return {
    async apply(event) {
      const now = new Date(deps.clock.now()).toISOString();
      const outcome = await deps.repository.applyEvent(event, now);
      if (outcome.applied) return "applied";
      const reason = skipReason(event, outcome.current);
      const fields = {
        streamId: event.streamId,
        deviceId: event.deviceId,
        seq: event.seq,
        reported: event.state,
        stored: outcome.current?.state,
        storedSeq: outcome.current?.seq,
      };
      // Stale and post-final events are routine; the other two point at a bug or an old agent.
      if (reason === "stale" || reason === "already-final") {
        deps.logger.debug("stream event ignored", { reason, ...fields });
      } else {
        deps.logger.warn("stream event ignored", { reason, ...fields });
      }
      return reason;
    },
  };
}
