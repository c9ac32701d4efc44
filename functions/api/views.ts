import type { z } from "@hono/zod-openapi";
import type { CommandItem, DeviceItem, PresenceItem } from "../shared/items.ts";
import type { Command, Device, PresenceEntry } from "./schemas.ts";

/**
 * What the API returns for each stored item. Storage-only attributes (aspect versions, the
 * password hash, tombstones, TTLs) never leave the service.
 */

export type DeviceView = z.infer<typeof Device>;

function pick<T extends object, K extends keyof T>(
  item: T,
  keys: readonly K[],
): Partial<Pick<T, K>> {
  const out: Partial<Pick<T, K>> = {};
  for (const key of keys) if (item[key] !== undefined) out[key] = item[key];
  return out;
}

const DEVICE_FIELDS = [
  "offlineReason",
  "statusChangedAt",
  "agentId",
  "address",
  "devType",
  "netUnitType",
  "protocolVersion",
  "firmwareVersion",
  "serialNumber",
  "channelCount",
  "alarmInCount",
  "alarmOutCount",
  "diskCount",
  "channels",
  "lastSeen",
  "registeredAt",
  "createdAt",
  "provisioningUpdatedAt",
  "position",
  "positionAt",
  "capabilitiesAt",
  "timeZone",
] as const satisfies readonly (keyof DeviceItem)[];

export function deviceView(item: DeviceItem): DeviceView {
  return {
    deviceId: item.deviceId,
    status: item.status ?? "never-seen",
    ...pick(item, DEVICE_FIELDS),
    provisioned: item.provisioned === true,
    passwordRequired: item.passwordHash !== undefined,
    labels: item.labels ?? {},
  };
}

export type PresenceView = z.infer<typeof PresenceEntry>;

export function presenceView(item: PresenceItem): PresenceView {
  return {
    at: item.observedAt,
    type: item.type,
    status: item.status,
    ...pick(item, ["reason", "address", "previousAddress"] as const),
    agentId: item.agentId,
    version: item.version,
  };
}

export type CommandView = z.infer<typeof Command>;

export function commandView(item: CommandItem): CommandView {
  return {
    commandId: item.commandId,
    deviceId: item.deviceId,
    type: item.type,
    params: item.params ?? {},
    state: item.state,
    createdAt: item.createdAt,
    updatedAt: item.updatedAt,
    deadline: new Date(item.deadline).toISOString(),
    ...pick(item, ["agentId", "sentAt", "completedAt", "result", "error"] as const),
  };
}
