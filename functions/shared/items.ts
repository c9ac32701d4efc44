import type { CommandState, CommandType } from "../../lib/contracts/commands.ts";
import type { ChannelInfo, OfflineReason } from "../../lib/contracts/events.ts";

/**
 * DynamoDB item shapes of the tables the functions own (keys and indexes: `lib/contracts/tables.ts`).
 * The edge agent reads device items for provisioning (`provisioned`, `passwordHash`,
 * `deletedAt`), so these names are part of the edge–cloud contract too.
 */

/** Registry aspects, each with its own version attribute (see `functions/registry/service.ts`). */
export const ASPECTS = ["presence", "address", "firmware", "identity", "info", "lastSeen"] as const;
export type Aspect = (typeof ASPECTS)[number];

/**
 * Attribute holding the `version` of the event that last wrote an aspect. Named `…Seq` so they do
 * not collide with data attributes such as `firmwareVersion`.
 */
export const ASPECT_SEQ_ATTRIBUTE = {
  presence: "presenceSeq",
  address: "addressSeq",
  firmware: "firmwareSeq",
  identity: "identitySeq",
  info: "infoSeq",
  lastSeen: "lastSeenSeq",
} as const satisfies Record<Aspect, string>;

export type DeviceStatus = "online" | "offline";

export interface DeviceItem {
  deviceId: string;
  /** Set by the first write of any kind (ISO 8601). */
  createdAt?: string;

  // Registry-owned (device events) ------------------------------------------------------------
  /** presence aspect; key of the `byStatus` index (absent until the first presence event). */
  status?: DeviceStatus;
  offlineReason?: OfflineReason;
  /** Agent instance holding the session (presence aspect); commands are routed to it. */
  agentId?: string;
  statusChangedAt?: string;
  presenceSeq?: number;
  /** Observed `ip:port` (address aspect). */
  address?: string;
  addressSeq?: number;
  firmwareVersion?: string;
  firmwareSeq?: number;
  /** identity aspect: what REGISTER said about the device. */
  devType?: string;
  netUnitType?: string;
  protocolVersion?: string;
  registeredAt?: string;
  identitySeq?: number;
  /** info aspect: what the agent learned after registration (work status, capabilities). */
  serialNumber?: string;
  channelCount?: number;
  alarmInCount?: number;
  alarmOutCount?: number;
  diskCount?: number;
  channels?: ChannelInfo[];
  infoSeq?: number;
  lastSeen?: string;
  lastSeenSeq?: number;

  // Device-data-owned (issue 8) ---------------------------------------------------------------
  /** Latest GPS fix (contracts `Position`), moved forward by `positionKey` (`<time>#<sequence>`). */
  position?: Record<string, unknown>;
  positionAt?: string;
  positionKey?: string;
  /** When the capability set cached on the record (`capabilities`) was fetched. */
  capabilitiesAt?: string;

  // API-owned (provisioning) ------------------------------------------------------------------
  /** The agent accepts REGISTER from this device only when true. */
  provisioned?: boolean;
  /** scrypt hash (`functions/shared/device-password.ts`); never returned by the API. */
  passwordHash?: string;
  labels?: Record<string, string>;
  provisioningUpdatedAt?: string;
  /**
   * The device's UTC offset (`+08:00`): its record times are device-local (ehome-2.0 §2.5), the
   * API adds ISO 8601 times with this offset. Set by `PUT /devices/{id}` (kept when omitted) and
   * by a `time-sync` command that succeeds within its `?wait`.
   */
  timeZone?: string;
  /** When `timeZone` was last set by a time-sync command. */
  timeZoneUpdatedAt?: string;

  /**
   * Tombstone: `DELETE /devices/{id}` replaces the item with `{deviceId, deletedAt}` so late
   * events (the agent's own `offline/deprovisioned`, a coalesced last-seen) cannot resurrect the
   * record. Only a new `registered` event (the agent accepted the device again) clears it.
   */
  deletedAt?: string;
}

export type PresenceEventType = "registered" | "online" | "offline" | "address-changed";

export interface PresenceItem {
  deviceId: string;
  /** Sort key `<at>#<version>` (`presenceSortKey`). */
  at: string;
  type: PresenceEventType;
  status: DeviceStatus;
  observedAt: string;
  version: number;
  agentId: string;
  eventId: string;
  address?: string;
  previousAddress?: string;
  reason?: OfflineReason;
  /** TTL, epoch seconds. */
  expiresAt: number;
}

export interface CommandError {
  code: string;
  message: string;
  status?: number;
}

export interface CommandItem {
  commandId: string;
  deviceId: string;
  type: CommandType;
  params: Record<string, unknown>;
  state: CommandState;
  /** ISO 8601; sort key of the `byDevice` index. */
  createdAt: string;
  updatedAt: string;
  /** Epoch ms after which the agent must not start it (`AgentCommand.deadline`). */
  deadline: number;
  /** The agent it was routed to (set when `sent`) or that reported the result. */
  agentId?: string;
  sentAt?: string;
  completedAt?: string;
  result?: unknown;
  error?: CommandError;
  /** TTL, epoch seconds. */
  expiresAt: number;
}
