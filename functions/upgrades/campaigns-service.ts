import { randomUUID } from "node:crypto";
import type { Clock } from "../shared/clock.ts";
import { ApiError } from "../shared/errors.ts";
import type { DeviceItem } from "../shared/items.ts";
import type { Logger } from "../shared/logger.ts";
import { countByState } from "./engine.ts";
import type {
  CampaignItem,
  CreateCampaignRequest,
  ExecutionItem,
  ExecutionState,
  FailureType,
} from "./model.ts";
import type { UpgradesRepository } from "./repository.ts";
import { currentRate, etaSeconds } from "./rollout.ts";

/** Campaign creation (targets resolved and snapshotted), views, cancel. */

export interface CampaignView {
  campaignId: string;
  firmwareId: string;
  targetVersion: string;
  state: CampaignItem["state"];
  createdAt: string;
  finishedAt?: string;
  targetCount: number;
  counts: Record<ExecutionState, number>;
  /** Dispatches per minute now (after the ramp). */
  currentRate: number;
  /** Seconds until every queued device has been dispatched at the current rate; absent when none. */
  etaSeconds?: number;
  rollout: CampaignItem["rollout"];
  timeoutSeconds: number;
  retries: CampaignItem["retries"];
  abort: CampaignItem["abort"];
  maintenanceWindow?: CampaignItem["maintenanceWindow"];
  abortReason?: string;
}

export interface ExecutionView {
  deviceId: string;
  state: ExecutionState;
  attempt: number;
  bytesServed: number;
  failureType?: FailureType;
  lastMessage?: string;
  commandId?: string;
  sentAt?: string;
  deadline?: string;
  updatedAt: string;
  finishedAt?: string;
}

export function executionView(e: ExecutionItem): ExecutionView {
  return {
    deviceId: e.deviceId,
    state: e.state,
    attempt: e.attempt,
    bytesServed: e.bytesServed ?? 0,
    ...(e.failureType ? { failureType: e.failureType } : {}),
    ...(e.lastMessage ? { lastMessage: e.lastMessage } : {}),
    ...(e.commandId ? { commandId: e.commandId } : {}),
    ...(e.sentAt ? { sentAt: e.sentAt } : {}),
    ...(e.deadline !== undefined ? { deadline: new Date(e.deadline).toISOString() } : {}),
    updatedAt: e.updatedAt,
    ...(e.finishedAt ? { finishedAt: e.finishedAt } : {}),
  };
}

export function campaignView(c: CampaignItem, executions: readonly ExecutionItem[]): CampaignView {
  const counts = countByState(executions);
  const rate = currentRate(c.rollout, counts.succeeded);
  const eta = c.state === "running" ? etaSeconds(counts.queued, rate) : undefined;
  return {
    campaignId: c.campaignId,
    firmwareId: c.firmwareId,
    targetVersion: c.targetVersion,
    state: c.state,
    createdAt: c.createdAt,
    ...(c.finishedAt ? { finishedAt: c.finishedAt } : {}),
    targetCount: c.targetCount,
    counts,
    currentRate: rate,
    ...(eta === undefined ? {} : { etaSeconds: eta }),
    rollout: c.rollout,
    timeoutSeconds: c.timeoutSeconds,
    retries: c.retries,
    abort: c.abort,
    ...(c.maintenanceWindow ? { maintenanceWindow: c.maintenanceWindow } : {}),
    ...(c.abortReason ? { abortReason: c.abortReason } : {}),
  };
}

export interface CampaignsServiceDeps {
  repository: UpgradesRepository;
  /** Cancels a running campaign (`cancelCampaign` of the engine). */
  cancel(campaignId: string): Promise<CampaignItem | undefined>;
  clock: Clock;
  logger: Logger;
  newId?: () => string;
}

export function createCampaignsService(deps: CampaignsServiceDeps) {
  const repo = deps.repository;
  const newId = deps.newId ?? randomUUID;

  async function resolveTargets(targets: CreateCampaignRequest["targets"]): Promise<DeviceItem[]> {
    if ("deviceIds" in targets) {
      const ids = [...new Set(targets.deviceIds)];
      const found = await repo.getDevices(ids);
      const missing = ids.filter((id) => !found.has(id));
      if (missing.length > 0) {
        throw new ApiError(
          "CAMPAIGN_NO_TARGETS",
          `${missing.length} listed device(s) do not exist`,
          { missing: missing.slice(0, 100) },
        );
      }
      return ids.map((id) => found.get(id)!);
    }
    return repo.scanDevices(targets.filter);
  }

  async function load(campaignId: string): Promise<CampaignItem> {
    const campaign = await repo.getCampaign(campaignId);
    if (!campaign) throw new ApiError("CAMPAIGN_NOT_FOUND", `no upgrade campaign ${campaignId}`);
    return campaign;
  }

  return {
    async create(request: CreateCampaignRequest): Promise<CampaignView> {
      const firmware = await repo.getFirmware(request.firmwareId);
      if (!firmware) {
        throw new ApiError("FIRMWARE_NOT_FOUND", `no firmware ${request.firmwareId}`);
      }
      if (firmware.state !== "available") {
        throw new ApiError(
          "FIRMWARE_NOT_AVAILABLE",
          `firmware ${firmware.firmwareId} is ${firmware.state}, not available`,
          { state: firmware.state },
        );
      }
      const devices = await resolveTargets(request.targets);
      if (devices.length === 0) {
        throw new ApiError("CAMPAIGN_NO_TARGETS", "the filter selects no device");
      }
      const nowMs = deps.clock.now();
      const now = new Date(nowMs).toISOString();
      const campaignId = newId();
      const executions: ExecutionItem[] = devices.map((device, order) => {
        const base = { campaignId, deviceId: device.deviceId, order, attempt: 1, updatedAt: now };
        if (device.firmwareVersion === firmware.version) {
          return {
            ...base,
            state: "skipped",
            lastMessage: `already on ${firmware.version}`,
            finishedAt: now,
          };
        }
        if (
          firmware.models.length > 0 &&
          device.devType !== undefined &&
          !firmware.models.includes(device.devType)
        ) {
          return {
            ...base,
            state: "skipped",
            lastMessage: `model ${device.devType} is not one of the firmware's models`,
            finishedAt: now,
          };
        }
        return { ...base, state: "queued" };
      });
      const campaign: CampaignItem = {
        campaignId,
        firmwareId: firmware.firmwareId,
        targetVersion: firmware.version,
        firmwareSize: firmware.size,
        state: "running",
        active: "1",
        createdAt: now,
        updatedAt: now,
        targetCount: devices.length,
        rollout: request.rollout,
        timeoutSeconds: request.timeoutSeconds,
        retries: request.retries,
        abort: request.abort,
        ...(request.maintenanceWindow ? { maintenanceWindow: request.maintenanceWindow } : {}),
        bucket: { tokens: 0, refilledAt: nowMs },
        bucketSeq: 0,
        succeeded: 0,
      };
      await repo.createCampaign(campaign, executions);
      deps.logger.info("upgrade campaign created", {
        campaignId,
        firmwareId: firmware.firmwareId,
        version: firmware.version,
        targets: devices.length,
        queued: executions.filter((e) => e.state === "queued").length,
      });
      return campaignView(campaign, executions);
    },

    async get(campaignId: string): Promise<CampaignView> {
      const campaign = await load(campaignId);
      return campaignView(campaign, await repo.listExecutions(campaignId));
    },

    async list(): Promise<CampaignView[]> {
      const campaigns = await repo.listCampaigns();
      return Promise.all(
        campaigns.map(async (c) => campaignView(c, await repo.listExecutions(c.campaignId))),
      );
    },

    async devices(
      campaignId: string,
      limit: number,
      startKey?: Record<string, unknown>,
    ): Promise<{ items: ExecutionView[]; lastKey?: Record<string, unknown> }> {
      await load(campaignId);
      const page = await repo.pageExecutions(campaignId, limit, startKey);
      return { ...page, items: page.items.map(executionView) };
    },

    async cancel(campaignId: string): Promise<CampaignView> {
      const campaign = await load(campaignId);
      const canceled = await deps.cancel(campaignId);
      if (!canceled) {
        throw new ApiError("CAMPAIGN_FINISHED", `campaign ${campaignId} is ${campaign.state}`, {
          state: campaign.state,
        });
      }
      const executions = await repo.listExecutions(campaignId);
      return campaignView(canceled, executions);
    },

    /** Ids of the campaigns over this firmware that are not finished. */
    async usingFirmware(firmwareId: string): Promise<string[]> {
      const active = await repo.activeCampaigns();
      return active.filter((c) => c.firmwareId === firmwareId).map((c) => c.campaignId);
    },
  };
}

export type CampaignsService = ReturnType<typeof createCampaignsService>;
