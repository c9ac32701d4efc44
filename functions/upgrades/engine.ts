import type { CommandState } from "../../lib/contracts/commands.ts";
import type { Clock } from "../shared/clock.ts";
import type { DeviceItem } from "../shared/items.ts";
import type { Logger } from "../shared/logger.ts";
import {
  type AbortCriterion,
  type CampaignItem,
  type ExecutionItem,
  type ExecutionState,
  type FailureType,
  IN_FLIGHT_STATES,
  isFinalExecution,
  isInFlight,
} from "./model.ts";
import type { UpgradesRepository } from "./repository.ts";
import { currentRate, insideWindow, refill } from "./rollout.ts";

/**
 * The rollout engine (issue 6). Driven by a schedule tick (EventBridge every minute on AWS, every
 * few seconds locally) and by progress events (`upgrade-events` queue). Every change of an
 * execution is a conditional write on `(state, attempt)`, and every dispatch round first wins a
 * conditional write on the campaign's `bucketSeq`: concurrent or redelivered ticks and events
 * can never dispatch a device twice.
 *
 * Per tick and active campaign:
 * 1. observe: an in-flight device whose registry record shows the target `firmwareVersion`
 *    succeeded (the registry already stores it from REGISTER, so no second copy of device events
 *    is needed); its `firmware-update` command `failed` → `device-error`; past its deadline →
 *    `timed-out`. A queued device already on the target is `skipped`; a queued device that
 *    waited offline past its deadline times out.
 * 2. abort: a criterion over the finished executions fires → campaign `aborted`, queued
 *    executions `canceled` (in-flight ones are observed to their end: a flashing device cannot
 *    be recalled).
 * 3. dispatch (running, inside the maintenance window): refill the token bucket at the current
 *    (ramped) rate; slots = min(⌊tokens⌋, maxConcurrent − in flight); win the round, then move
 *    each chosen execution `queued → sent` and send its command. Offline devices are passed over
 *    (their wait deadline starts) without using a token.
 * 4. finish: nothing queued or in flight → `completed` (or stays `canceled`/`aborted`), and the
 *    campaign leaves the `byActive` index.
 */

export type DispatchOutcome =
  | { kind: "sent"; commandId: string; agentId?: string }
  | { kind: "offline"; reason: string }
  | { kind: "error"; message: string };

export interface Dispatcher {
  /** Sends the `firmware-update` command of this attempt (deadline: `execution.deadline`). */
  dispatch(input: {
    campaign: CampaignItem;
    execution: ExecutionItem;
    device: DeviceItem;
  }): Promise<DispatchOutcome>;
}

/** Reads the state of a dispatched command (the commands table). */
export interface CommandReader {
  get(
    commandId: string,
  ): Promise<{ state: CommandState; error?: { code: string; message: string } } | undefined>;
}

/** A progress report for one execution (from the agent, through `upgrade-events`). */
export interface ProgressInput {
  campaignId: string;
  deviceId: string;
  /** Attempt the report belongs to (from the token); a report of an older attempt is ignored. */
  attempt?: number;
  /** Bytes served so far for this attempt (monotonic; the highest wins). */
  bytesServed?: number;
  /** `UPGRADESTATUS` or the upgrade-failed alarm (type 18). */
  status?: "downloading" | "upgrading" | "failed";
  message?: string;
}

export interface EngineDeps {
  repository: UpgradesRepository;
  dispatcher: Dispatcher;
  commands: CommandReader;
  clock: Clock;
  logger: Logger;
}

export interface EngineTickResult {
  campaigns: number;
  dispatched: number;
}

const IN_FLIGHT = IN_FLIGHT_STATES as readonly ExecutionState[];

export function countByState(executions: readonly ExecutionItem[]): Record<ExecutionState, number> {
  const counts = {
    queued: 0,
    sent: 0,
    downloading: 0,
    upgrading: 0,
    succeeded: 0,
    failed: 0,
    "timed-out": 0,
    skipped: 0,
    canceled: 0,
  } satisfies Record<ExecutionState, number>;
  for (const e of executions) counts[e.state]++;
  return counts;
}

/** The first criterion that fires over these executions, if any. */
export function abortCriterionMet(
  criteria: readonly AbortCriterion[],
  executions: readonly ExecutionItem[],
): AbortCriterion | undefined {
  const finished = executions.filter(
    (e) => e.state === "succeeded" || e.state === "failed" || e.state === "timed-out",
  );
  for (const c of criteria) {
    if (finished.length < c.minExecuted) continue;
    const failures = finished.filter(
      (e) =>
        e.state !== "succeeded" && (c.failureType === "any" || e.failureType === c.failureType),
    ).length;
    if ((failures * 100) / finished.length >= c.thresholdPercent) return c;
  }
  return undefined;
}

/** Moves queued executions to `canceled` (conditional: one that was just dispatched is kept). */
async function cancelQueuedOf(
  repo: UpgradesRepository,
  executions: readonly ExecutionItem[],
  message: string,
  now: string,
): Promise<ExecutionItem[]> {
  return Promise.all(
    executions.map(async (e) =>
      e.state === "queued"
        ? ((await repo.transitionExecution(e, ["queued"], undefined, {
            state: "canceled",
            lastMessage: message,
            updatedAt: now,
            finishedAt: now,
          })) ?? e)
        : e,
    ),
  );
}

/**
 * Cancels a running campaign: no new dispatches, queued executions canceled; in-flight ones are
 * observed by the tick to their end. Undefined when the campaign was not running.
 */
export async function cancelCampaign(
  deps: Pick<EngineDeps, "repository" | "clock" | "logger">,
  campaignId: string,
): Promise<CampaignItem | undefined> {
  const now = new Date(deps.clock.now()).toISOString();
  const canceled = await deps.repository.updateCampaign(
    campaignId,
    { state: "canceled", updatedAt: now },
    { states: ["running"] },
  );
  if (!canceled) return undefined;
  deps.logger.info("upgrade campaign canceled", { campaignId });
  await cancelQueuedOf(
    deps.repository,
    await deps.repository.listExecutions(campaignId),
    "campaign canceled",
    now,
  );
  return canceled;
}

export function createUpgradeEngine(deps: EngineDeps) {
  const { repository: repo, clock } = deps;
  const iso = (ms = clock.now()) => new Date(ms).toISOString();

  /**
   * One failure of the current attempt: retried (queued again, attempt + 1) while the
   * campaign's retries for this type allow and the campaign is running; final otherwise.
   */
  async function fail(
    campaign: CampaignItem,
    e: ExecutionItem,
    from: readonly ExecutionState[],
    type: FailureType,
    message: string,
  ): Promise<ExecutionItem | undefined> {
    const retries = campaign.retries[type] ?? 0;
    const now = clock.now();
    const log = deps.logger.child({ campaignId: campaign.campaignId, deviceId: e.deviceId });
    if (e.attempt <= retries && campaign.state === "running") {
      const next = await repo.transitionExecution(e, from, e.attempt, {
        state: "queued",
        attempt: e.attempt + 1,
        failureType: type,
        lastMessage: `attempt ${e.attempt} ${type}: ${message}; retrying`,
        commandId: null,
        deadline: null,
        bytesServed: null,
        updatedAt: iso(now),
      });
      if (next) log.info("upgrade attempt failed; retrying", { type, attempt: e.attempt });
      return next;
    }
    const next = await repo.transitionExecution(e, from, e.attempt, {
      state: type === "timed-out" ? "timed-out" : "failed",
      failureType: type,
      lastMessage: message,
      updatedAt: iso(now),
      finishedAt: iso(now),
    });
    if (next) log.warn("upgrade failed", { type, attempt: e.attempt, message });
    return next;
  }

  /** Step 1 for one execution; returns the item as it is afterwards. */
  async function observe(
    campaign: CampaignItem,
    e: ExecutionItem,
    device: DeviceItem | undefined,
    now: number,
  ): Promise<ExecutionItem> {
    const onTarget = device?.firmwareVersion === campaign.targetVersion;
    if (e.state === "queued") {
      if (onTarget) {
        return (
          (await repo.transitionExecution(e, ["queued"], e.attempt, {
            state: "skipped",
            lastMessage: `already on ${campaign.targetVersion}`,
            updatedAt: iso(now),
            finishedAt: iso(now),
          })) ?? e
        );
      }
      if (e.deadline !== undefined && now > e.deadline) {
        return (await fail(campaign, e, ["queued"], "timed-out", "device stayed offline")) ?? e;
      }
      return e;
    }
    if (!isInFlight(e.state)) return e;
    if (onTarget) {
      const done = await repo.transitionExecution(e, IN_FLIGHT, e.attempt, {
        state: "succeeded",
        lastMessage: `re-registered with ${campaign.targetVersion}`,
        updatedAt: iso(now),
        finishedAt: iso(now),
      });
      if (done) {
        deps.logger.info("upgrade succeeded", {
          campaignId: campaign.campaignId,
          deviceId: e.deviceId,
          attempt: e.attempt,
        });
      }
      return done ?? e;
    }
    if (e.commandId !== undefined) {
      const command = await deps.commands.get(e.commandId);
      if (command?.state === "failed") {
        return (
          (await fail(
            campaign,
            e,
            IN_FLIGHT,
            "device-error",
            command.error?.message ?? "the device refused the update",
          )) ?? e
        );
      }
    }
    if (e.deadline !== undefined && now > e.deadline) {
      return (
        (await fail(
          campaign,
          e,
          IN_FLIGHT,
          "timed-out",
          `not back with ${campaign.targetVersion} within ${campaign.timeoutSeconds} s`,
        )) ?? e
      );
    }
    return e;
  }

  async function dispatchRound(
    campaign: CampaignItem,
    executions: ExecutionItem[],
    devices: Map<string, DeviceItem>,
    now: number,
  ): Promise<number> {
    if (campaign.state !== "running" || !insideWindow(campaign.maintenanceWindow, now)) return 0;
    const inFlight = executions.filter((e) => isInFlight(e.state)).length;
    const rate = currentRate(campaign.rollout, campaign.succeeded);
    const bucket = refill(campaign.bucket, rate, now);
    const slots = Math.min(Math.floor(bucket.tokens), campaign.rollout.maxConcurrent - inFlight);
    if (slots <= 0) return 0;

    const queued = executions
      .filter((e) => e.state === "queued")
      .sort((a, b) => a.attempt - b.attempt || a.order - b.order);
    const chosen: ExecutionItem[] = [];
    const waiting: ExecutionItem[] = [];
    for (const e of queued) {
      if (chosen.length >= slots) break;
      const device = devices.get(e.deviceId);
      if (device?.status === "online") chosen.push(e);
      else if (e.deadline === undefined) waiting.push(e);
    }
    // Offline devices whose turn came: they wait (not failed) until the per-device timeout.
    await Promise.all(
      waiting.map((e) =>
        repo.transitionExecution(
          e,
          ["queued"],
          e.attempt,
          {
            deadline: now + campaign.timeoutSeconds * 1000,
            lastMessage: "device offline; waiting for it",
            updatedAt: iso(now),
          },
          {
            expression: "attribute_not_exists(#dl)",
            names: { "#dl": "deadline" },
            values: {},
          },
        ),
      ),
    );
    if (chosen.length === 0) return 0;

    // Win the round: only one tick per bucket version may spend its tokens.
    const won = await repo.updateCampaign(
      campaign.campaignId,
      {
        bucket: { tokens: bucket.tokens - chosen.length, refilledAt: bucket.refilledAt },
        bucketSeq: campaign.bucketSeq + 1,
        updatedAt: iso(now),
      },
      { states: ["running"], bucketSeq: campaign.bucketSeq },
    );
    if (!won) return 0;

    let sent = 0;
    await Promise.all(
      chosen.map(async (e) => {
        const deadline = now + campaign.timeoutSeconds * 1000;
        const claimed = await repo.transitionExecution(e, ["queued"], e.attempt, {
          state: "sent",
          sentAt: iso(now),
          deadline,
          bytesServed: 0,
          lastMessage: "firmware-update sent",
          updatedAt: iso(now),
        });
        if (!claimed) return;
        const device = devices.get(e.deviceId)!;
        const outcome = await deps.dispatcher
          .dispatch({ campaign, execution: claimed, device })
          .catch((error: unknown) => ({
            kind: "error" as const,
            message: error instanceof Error ? error.message : String(error),
          }));
        if (outcome.kind === "sent") {
          sent++;
          await repo.transitionExecution(claimed, ["sent"], claimed.attempt, {
            commandId: outcome.commandId,
            ...(outcome.agentId ? { agentId: outcome.agentId } : {}),
          });
          return;
        }
        // Not delivered: back to queued; an offline device waits until the same deadline.
        await repo.transitionExecution(claimed, ["sent"], claimed.attempt, {
          state: "queued",
          lastMessage:
            outcome.kind === "offline"
              ? `device offline; waiting for it (${outcome.reason})`
              : `dispatch failed: ${outcome.message}`,
          ...(outcome.kind === "offline" ? {} : { deadline: null }),
          updatedAt: iso(),
        });
      }),
    );
    if (sent > 0) {
      deps.logger.info("upgrade dispatch round", {
        campaignId: campaign.campaignId,
        sent,
        rate,
        inFlight: inFlight + sent,
      });
    }
    return sent;
  }

  async function tickCampaign(campaignId: string): Promise<number> {
    let campaign = await repo.getCampaign(campaignId);
    if (campaign?.active !== "1") return 0;
    const loaded = campaign;
    const now = clock.now();
    let executions = await repo.listExecutions(campaignId);
    const open = executions.filter((e) => !isFinalExecution(e.state));
    const devices = await repo.getDevices(open.map((e) => e.deviceId));
    const observed = new Map<string, ExecutionItem>();
    await Promise.all(
      open.map(async (e) =>
        observed.set(e.deviceId, await observe(loaded, e, devices.get(e.deviceId), now)),
      ),
    );
    executions = executions.map((e) => observed.get(e.deviceId) ?? e);
    const succeeded = executions.filter((e) => e.state === "succeeded").length;
    if (succeeded !== campaign.succeeded) {
      campaign = (await repo.updateCampaign(campaignId, { succeeded }, {})) ?? {
        ...campaign,
        succeeded,
      };
    }

    if (campaign.state === "running") {
      const criterion = abortCriterionMet(campaign.abort, executions);
      if (criterion) {
        const reason = `${criterion.failureType} reached ${criterion.thresholdPercent}% of at least ${criterion.minExecuted} finished`;
        const aborted = await repo.updateCampaign(
          campaignId,
          { state: "aborted", abortReason: reason, updatedAt: iso(now) },
          { states: ["running"] },
        );
        if (aborted) {
          deps.logger.warn("upgrade campaign aborted", { campaignId, reason });
          campaign = aborted;
        }
      }
    }
    if (campaign.state === "aborted" || campaign.state === "canceled") {
      executions = await cancelQueuedOf(repo, executions, `campaign ${campaign.state}`, iso(now));
    }

    const dispatched = await dispatchRound(campaign, executions, devices, now);

    if (dispatched === 0 && executions.every((e) => isFinalExecution(e.state))) {
      const done = await repo.updateCampaign(
        campaignId,
        {
          state: campaign.state === "running" ? "completed" : campaign.state,
          active: null,
          finishedAt: iso(now),
          updatedAt: iso(now),
        },
        { states: [campaign.state] },
      );
      if (done) {
        deps.logger.info("upgrade campaign finished", {
          campaignId,
          state: done.state,
          ...countByState(executions),
        });
      }
    }
    return dispatched;
  }

  return {
    tickCampaign,

    /** One scheduler run over every active campaign. Safe to run concurrently or twice. */
    async tick(): Promise<EngineTickResult> {
      const active = await repo.activeCampaigns();
      let dispatched = 0;
      for (const { campaignId } of active) {
        try {
          dispatched += await tickCampaign(campaignId);
        } catch (error) {
          deps.logger.error("upgrade tick failed", { campaignId, error });
        }
      }
      return { campaigns: active.length, dispatched };
    },

    /** A progress event; idempotent (redelivery and reordering only ever move forward). */
    async progress(input: ProgressInput): Promise<void> {
      const campaign = await repo.getCampaign(input.campaignId);
      if (!campaign) return;
      // A conditional write lost to a concurrent change is retried on a fresh read.
      for (let round = 0; round < 3; round++) {
        const e = await repo.getExecution(input.campaignId, input.deviceId);
        if (!e) return;
        if (input.attempt !== undefined && input.attempt !== e.attempt) return;
        if (e.state === "succeeded" && (input.bytesServed ?? 0) > (e.bytesServed ?? 0)) {
          // The count can arrive after the re-REGISTER was seen: keep it, state unchanged.
          const kept = await repo.transitionExecution(e, ["succeeded"], e.attempt, {
            bytesServed: input.bytesServed,
          });
          if (kept) return;
          continue;
        }
        if (!isInFlight(e.state)) return;
        if (input.status === "failed") {
          const message = input.message ?? "the device reported the upgrade failed";
          if (await fail(campaign, e, IN_FLIGHT, "upgrade-failed", message)) return;
          continue;
        }
        const bytes = Math.max(e.bytesServed ?? 0, input.bytesServed ?? 0);
        const next: ExecutionState =
          e.state === "upgrading" || input.status === "upgrading" || bytes >= campaign.firmwareSize
            ? "upgrading"
            : "downloading";
        if (next === e.state && bytes === (e.bytesServed ?? 0) && !input.message) return;
        const written = await repo.transitionExecution(e, [e.state], e.attempt, {
          state: next,
          bytesServed: bytes,
          ...(input.message ? { lastMessage: input.message } : {}),
          updatedAt: iso(),
        });
        if (written) return;
      }
    },

    /**
     * The upgrade-failed alarm (alarm type 18) for a caller that knows only the device: its
     * in-flight execution in any active campaign fails as `upgrade-failed`. Today the agent ties
     * the alarm to its campaign itself and sends a `device-status` FAILED event
     * (edge-agent/upgrades/progress.ts), which takes the same path through `observe`.
     */
    async deviceUpgradeFailedAlarm(
      deviceId: string,
      message = "upgrade-failed alarm",
    ): Promise<number> {
      let failed = 0;
      for (const { campaignId } of await repo.activeCampaigns()) {
        const e = await repo.getExecution(campaignId, deviceId);
        if (!e || !isInFlight(e.state)) continue;
        const campaign = await repo.getCampaign(campaignId);
        if (campaign && (await fail(campaign, e, IN_FLIGHT, "upgrade-failed", message))) failed++;
      }
      return failed;
    },

    /** Cancels a campaign (see `cancelCampaign`). */
    cancel: (campaignId: string) => cancelCampaign(deps, campaignId),
  };
}

export type UpgradeEngine = ReturnType<typeof createUpgradeEngine>;
