import { PutCommand } from "@aws-sdk/lib-dynamodb";
import {
  type CampaignsService,
  createCampaignsService,
} from "../../../functions/upgrades/campaigns-service.ts";
import {
  type CommandReader,
  createUpgradeEngine,
  type Dispatcher,
  type DispatchOutcome,
  type UpgradeEngine,
} from "../../../functions/upgrades/engine.ts";
import type { CreateCampaignRequest, FirmwareItem } from "../../../functions/upgrades/model.ts";
import {
  createUpgradesRepository,
  type UpgradesRepository,
} from "../../../functions/upgrades/repository.ts";
import type { CommandState } from "../../../lib/contracts/commands.ts";
import type { LocalBackends } from "../../../lib/local/backends.ts";
import { functionClients, silentLogger } from "../support.ts";

/** Engine tests on the embedded backends, with a manual clock and a recording dispatcher. */

export function manualClock(start = Date.UTC(2026, 0, 5, 12, 0, 0)) {
  let t = start;
  return {
    now: () => t,
    sleep: async () => {},
    advance(ms: number) {
      t += ms;
    },
  };
}

export interface Dispatched {
  deviceId: string;
  campaignId: string;
  attempt: number;
  commandId: string;
  at: number;
}

export function upgradesHarness(backends: LocalBackends, label: string) {
  const clients = functionClients(backends);
  const tables = {
    firmware: backends.resources.tables.firmware,
    campaigns: backends.resources.tables.campaigns,
    executions: backends.resources.tables.executions,
    devices: backends.resources.tables.devices,
  };
  const repository: UpgradesRepository = createUpgradesRepository(tables, {
    documentClient: clients.documentClient,
  });
  const clock = manualClock();
  const dispatched: Dispatched[] = [];
  const commandStates = new Map<
    string,
    { state: CommandState; error?: { code: string; message: string } }
  >();
  /** Devices the dispatcher reports offline (routing found no session). */
  const unreachable = new Set<string>();
  let counter = 0;
  const dispatcher: Dispatcher = {
    async dispatch({ campaign, execution }): Promise<DispatchOutcome> {
      if (unreachable.has(execution.deviceId)) return { kind: "offline", reason: "no session" };
      const commandId = `${label}-cmd-${++counter}`;
      commandStates.set(commandId, { state: "sent" });
      // Backends are shared by the file: record only this harness's campaigns.
      if (!campaign.campaignId.startsWith(`${label}-`)) return { kind: "sent", commandId };
      dispatched.push({
        deviceId: execution.deviceId,
        campaignId: campaign.campaignId,
        attempt: execution.attempt,
        commandId,
        at: clock.now(),
      });
      return { kind: "sent", commandId, agentId: "agent-1" };
    },
  };
  const commands: CommandReader = { get: async (id) => commandStates.get(id) };
  const engine: UpgradeEngine = createUpgradeEngine({
    repository,
    dispatcher,
    commands,
    clock,
    logger: silentLogger,
  });
  let ids = 0;
  const campaigns: CampaignsService = createCampaignsService({
    repository,
    cancel: (id) => engine.cancel(id),
    clock,
    logger: silentLogger,
    newId: () => `${label}-c${++ids}`,
  });

  async function putDevice(deviceId: string, fields: Record<string, unknown> = {}) {
    await clients.documentClient.send(
      new PutCommand({
        TableName: tables.devices,
        Item: {
          deviceId,
          status: "online",
          firmwareVersion: "1.0.0",
          devType: "DS-2CD",
          agentId: "agent-1",
          labels: { site: label },
          ...fields,
        },
      }),
    );
  }

  /** `n` online devices `<label>-d<i>` on 1.0.0; returns their ids. */
  async function devices(n: number, fields: Record<string, unknown> = {}): Promise<string[]> {
    const list = Array.from({ length: n }, (_, i) => `${label}-d${String(i).padStart(4, "0")}`);
    await Promise.all(list.map((id) => putDevice(id, fields)));
    return list;
  }

  async function firmware(fields: Partial<FirmwareItem> = {}): Promise<FirmwareItem> {
    const now = new Date(clock.now()).toISOString();
    const item: FirmwareItem = {
      firmwareId: `${label}-fw-${++ids}`,
      version: "2.0.0",
      models: [],
      sha256: "0".repeat(64),
      md5: "0".repeat(32),
      size: 1000,
      state: "available",
      s3Key: "firmware/x.bin",
      createdAt: now,
      updatedAt: now,
      ...fields,
    };
    await repository.createFirmware(item);
    return item;
  }

  async function campaign(
    deviceIds: string[],
    overrides: Partial<CreateCampaignRequest> = {},
  ): Promise<string> {
    const fw = await firmware();
    const view = await campaigns.create({
      firmwareId: fw.firmwareId,
      targets: { deviceIds },
      rollout: { maxPerMinute: 60, maxConcurrent: 1000 },
      timeoutSeconds: 600,
      retries: {},
      abort: [],
      ...overrides,
    });
    return view.campaignId;
  }

  /** The device re-registers with `version` (what the registry writes on REGISTER). */
  async function upgraded(deviceId: string, version = "2.0.0") {
    await putDevice(deviceId, { firmwareVersion: version });
  }

  return {
    repository,
    engine,
    campaigns,
    clock,
    dispatched,
    commandStates,
    unreachable,
    putDevice,
    devices,
    firmware,
    campaign,
    upgraded,
    close: () => clients.close(),
  };
}
