import { z } from "zod";

/**
 * Upgrade campaigns (issue 6): the request shapes the API validates, the item shapes of the
 * firmware, campaigns and executions tables (keys: `lib/contracts/tables.ts`), and the state
 * names. Shared by the API routes, the engine and the CLI.
 */

export const FIRMWARE_STATES = ["uploading", "available", "rejected"] as const;
export type FirmwareState = (typeof FIRMWARE_STATES)[number];

export interface FirmwareItem {
  firmwareId: string;
  version: string;
  models: string[];
  /** Hex, lower case, as declared at creation and verified after upload. */
  sha256: string;
  /** MD5 of the verified object (hex): `UPDATE` carries it to the device (ehome-2.0 §6). */
  md5?: string;
  size: number;
  state: FirmwareState;
  /** Object key in the media bucket, under `MEDIA_PREFIXES.firmware`. */
  s3Key: string;
  createdAt: string;
  updatedAt: string;
  verifiedAt?: string;
  /** Why the upload was rejected. */
  rejection?: { code: string; message: string };
}

/** Ways an execution can fail; retries and abort criteria are keyed by them. */
export const FAILURE_TYPES = ["device-error", "upgrade-failed", "timed-out"] as const;
export const FailureType = z.enum(FAILURE_TYPES);
export type FailureType = z.infer<typeof FailureType>;

export const IN_FLIGHT_STATES = ["sent", "downloading", "upgrading"] as const;
export const FINAL_EXECUTION_STATES = [
  "succeeded",
  "failed",
  "timed-out",
  "skipped",
  "canceled",
] as const;
export const EXECUTION_STATES = ["queued", ...IN_FLIGHT_STATES, ...FINAL_EXECUTION_STATES] as const;
export type ExecutionState = (typeof EXECUTION_STATES)[number];
export type InFlightState = (typeof IN_FLIGHT_STATES)[number];

export function isInFlight(state: ExecutionState): state is InFlightState {
  return (IN_FLIGHT_STATES as readonly string[]).includes(state);
}
export function isFinalExecution(state: ExecutionState): boolean {
  return (FINAL_EXECUTION_STATES as readonly string[]).includes(state);
}

export interface ExecutionItem {
  campaignId: string;
  deviceId: string;
  /** Dispatch order (position in the target snapshot). */
  order: number;
  state: ExecutionState;
  /** 1 for the first try; a retry re-queues with attempt + 1. Part of every transition's condition. */
  attempt: number;
  /** Command id of the current attempt's `firmware-update` (set when `sent`). */
  commandId?: string;
  agentId?: string;
  sentAt?: string;
  /**
   * Epoch ms: the attempt times out after this. Set at dispatch (now + per-device timeout), or
   * when the device's turn came while it was offline (it waits, not failed, until then).
   */
  deadline?: number;
  /** Bytes the agent served this device for the current attempt (download progress). */
  bytesServed?: number;
  failureType?: FailureType;
  lastMessage?: string;
  updatedAt: string;
  finishedAt?: string;
}

const hhmm = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, "HH:MM (24 h, UTC)");

export const RolloutSpec = z
  .object({
    maxPerMinute: z.number().int().min(1).max(10_000),
    maxConcurrent: z.number().int().min(1).max(100_000),
    /** Exponential ramp: rate = min(maxPerMinute, baseRate × factor^⌊succeeded / stepAfterSuccesses⌋). */
    ramp: z
      .object({
        baseRate: z.number().int().min(1).max(10_000),
        factor: z.number().min(1.01).max(5),
        stepAfterSuccesses: z.number().int().min(1).max(100_000),
      })
      .strict()
      .optional(),
  })
  .strict();
export type RolloutSpec = z.infer<typeof RolloutSpec>;

export const AbortCriterion = z
  .object({
    failureType: z.enum([...FAILURE_TYPES, "any"]),
    thresholdPercent: z.number().min(0).max(100),
    /** The criterion is evaluated only once this many executions have finished (not skipped). */
    minExecuted: z.number().int().min(1),
  })
  .strict();
export type AbortCriterion = z.infer<typeof AbortCriterion>;

export const MaintenanceWindow = z
  .object({ start: hhmm, end: hhmm })
  .strict()
  .describe("Daily window (UTC) in which new dispatches may start; may wrap midnight");
export type MaintenanceWindow = z.infer<typeof MaintenanceWindow>;

export const RetrySpec = z
  .object({
    "device-error": z.number().int().min(0).max(10).optional(),
    "upgrade-failed": z.number().int().min(0).max(10).optional(),
    "timed-out": z.number().int().min(0).max(10).optional(),
  })
  .strict();
export type RetrySpec = z.infer<typeof RetrySpec>;

const deviceId = z.string().min(1).max(256);

export const TargetSpec = z.union([
  z.object({ deviceIds: z.array(deviceId).min(1).max(10_000) }).strict(),
  z
    .object({
      filter: z
        .object({
          model: z.string().min(1).max(64).optional(),
          firmware: z.string().min(1).max(64).optional(),
          labels: z.record(z.string(), z.string()).optional(),
        })
        .strict(),
    })
    .strict(),
]);
export type TargetSpec = z.infer<typeof TargetSpec>;

export const CreateCampaignRequest = z
  .object({
    firmwareId: z.string().min(1).max(64),
    targets: TargetSpec,
    rollout: RolloutSpec,
    /** Per-device timeout of one attempt: dispatch → the device back with the new version. */
    timeoutSeconds: z
      .number()
      .int()
      .min(10)
      .max(7 * 24 * 3600)
      .default(1800),
    retries: RetrySpec.default({}),
    abort: z.array(AbortCriterion).max(4).default([]),
    maintenanceWindow: MaintenanceWindow.optional(),
  })
  .strict();
export type CreateCampaignRequest = z.infer<typeof CreateCampaignRequest>;

export const CAMPAIGN_STATES = ["running", "completed", "canceled", "aborted"] as const;
export type CampaignState = (typeof CAMPAIGN_STATES)[number];

export interface TokenBucket {
  tokens: number;
  /** Epoch ms of the last refill. */
  refilledAt: number;
}

export interface CampaignItem {
  campaignId: string;
  firmwareId: string;
  targetVersion: string;
  firmwareSize: number;
  state: CampaignState;
  /** "1" while executions may still change (sparse `byActive` index); removed when all are final. */
  active?: "1";
  createdAt: string;
  updatedAt: string;
  finishedAt?: string;
  targetCount: number;
  rollout: RolloutSpec;
  timeoutSeconds: number;
  retries: RetrySpec;
  abort: AbortCriterion[];
  maintenanceWindow?: MaintenanceWindow;
  bucket: TokenBucket;
  /** Incremented by every dispatch round: the condition that serialises concurrent ticks. */
  bucketSeq: number;
  /** Successes so far (drives the ramp); recomputed by each tick from the executions. */
  succeeded: number;
  /** Why the campaign was aborted (the criterion that fired). */
  abortReason?: string;
}
