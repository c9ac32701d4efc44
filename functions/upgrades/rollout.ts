import type { MaintenanceWindow, RolloutSpec, TokenBucket } from "./model.ts";

/**
 * Rollout arithmetic, pure: the current dispatch rate (with the exponential ramp), the token
 * bucket persisted on the campaign, the maintenance window and the ETA.
 */

/** Dispatches per minute now: the ramp's step for `succeeded`, capped at `maxPerMinute`. */
export function currentRate(rollout: RolloutSpec, succeeded: number): number {
  const ramp = rollout.ramp;
  if (!ramp) return rollout.maxPerMinute;
  const steps = Math.floor(succeeded / ramp.stepAfterSuccesses);
  return Math.min(rollout.maxPerMinute, Math.floor(ramp.baseRate * ramp.factor ** steps));
}

/**
 * Capacity of the bucket: one minute of dispatches (at least one). With the one-minute
 * schedule on AWS a full minute's worth must fit; a paused campaign (window closed, concurrency
 * full) therefore resumes with at most one minute's burst.
 */
export function bucketCapacity(ratePerMinute: number): number {
  return Math.max(1, ratePerMinute);
}

/** The bucket refilled up to `nowMs` at `ratePerMinute`. A new bucket starts empty. */
export function refill(bucket: TokenBucket, ratePerMinute: number, nowMs: number): TokenBucket {
  const elapsed = Math.max(0, nowMs - bucket.refilledAt);
  const tokens = Math.min(
    bucketCapacity(ratePerMinute),
    bucket.tokens + (elapsed * ratePerMinute) / 60_000,
  );
  return { tokens, refilledAt: Math.max(nowMs, bucket.refilledAt) };
}

/** True when dispatching may start at `nowMs` (no window: always). Windows may wrap midnight. */
export function insideWindow(window: MaintenanceWindow | undefined, nowMs: number): boolean {
  if (!window) return true;
  const minutes = (s: string) => Number(s.slice(0, 2)) * 60 + Number(s.slice(3, 5));
  const d = new Date(nowMs);
  const now = d.getUTCHours() * 60 + d.getUTCMinutes();
  const start = minutes(window.start);
  const end = minutes(window.end);
  if (start === end) return true;
  return start < end ? now >= start && now < end : now >= start || now < end;
}

/** ETA in seconds for `remaining` devices not yet dispatched, at the current rate. */
export function etaSeconds(remaining: number, ratePerMinute: number): number | undefined {
  if (remaining <= 0) return undefined;
  return Math.ceil((remaining / ratePerMinute) * 60);
}
