import { TABLES } from "../../lib/contracts/tables.ts";
import { MAX_WAIT_SECONDS } from "./schemas.ts";

export interface ApiConfig {
  /**
   * A command's deadline is this long after it was accepted: the agent does not start it later.
   * Longer than the longest `wait`, so a waiting client sees a result or a running command.
   */
  readonly commandDeadlineSeconds: number;
  /**
   * After deadline + grace, a command still `pending`/`sent` is moved to `timed-out` when read.
   * The grace covers a command started just before its deadline (the agent's retransmissions,
   * ehome-2.0 §3.3) plus the result's trip through the queue.
   */
  readonly commandGraceSeconds: number;
  /** Command records expire (DynamoDB TTL) this long after creation. */
  readonly commandTtlSeconds: number;
  /** How often `?wait=N` re-reads the command record. */
  readonly waitPollIntervalMs: number;
  /** Request bodies larger than this are refused with 413. */
  readonly maxBodyBytes: number;
  /** A capture without its picture this long after it was accepted is `upload-timeout`. */
  readonly captureUploadDeadlineSeconds: number;
  /** Capture records expire (DynamoDB TTL) this long after creation. */
  readonly captureTtlSeconds: number;
  /** Presigned media URLs are valid this long (`CAPTURE_URL_TTL_SECONDS`). */
  readonly mediaUrlTtlSeconds: number;
  /** Agent queue URLs must name a queue starting with this (`ENV.AGENT_QUEUE_PREFIX`). */
  readonly agentQueuePrefix?: string;
}

export const DEFAULT_API_CONFIG: ApiConfig = {
  commandDeadlineSeconds: MAX_WAIT_SECONDS + 5,
  commandGraceSeconds: 30,
  commandTtlSeconds: TABLES.commands.defaultTtlSeconds,
  waitPollIntervalMs: 250,
  maxBodyBytes: 64 * 1024,
  captureUploadDeadlineSeconds: 60,
  captureTtlSeconds: TABLES.captures.defaultTtlSeconds,
  mediaUrlTtlSeconds: 15 * 60,
};
