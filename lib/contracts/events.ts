import { z } from "zod";

/**
 * Device events: agent → SQS → registry function (architecture §2). Heartbeats never cross this
 * line; only changes do, plus a coalesced last-seen. Every event carries a per-device monotonic
 * `version` so the registry applies it only when newer than what it stored.
 */

export const OFFLINE_REASONS = [
  "keepalive-timeout",
  "re-registered-elsewhere",
  "agent-shutdown",
  "agent-lost",
  "deprovisioned",
] as const;
export const OfflineReason = z.enum(OFFLINE_REASONS);
export type OfflineReason = z.infer<typeof OfflineReason>;

/** `ip:port` as observed by the agent (never the device's LocalIP; ehome-2.0 §1.1). */
export const Address = z.string().min(3).max(64);

const base = {
  /** Unique per event; consumers de-duplicate redeliveries with it. */
  eventId: z.string().min(1).max(64),
  deviceId: z.string().min(1).max(256),
  agentId: z.string().min(1).max(128),
  /** Per-device monotonic version (agent clock in µs, tie-broken by a counter). */
  version: z.number().int().nonnegative(),
  /** When the agent observed it (ISO 8601). */
  at: z.iso.datetime(),
};

export const ChannelInfo = z.object({
  channel: z.number().int().nonnegative(),
  recording: z.boolean().optional(),
  signalLost: z.boolean().optional(),
  online: z.boolean().optional(),
});
export type ChannelInfo = z.infer<typeof ChannelInfo>;

export const DeviceEvent = z.discriminatedUnion("type", [
  z.object({
    ...base,
    type: z.literal("registered"),
    address: Address,
    firmwareVersion: z.string().max(64).optional(),
    devType: z.string().max(32).optional(),
    netUnitType: z.string().max(16).optional(),
    protocolVersion: z.string().max(16).optional(),
  }),
  z.object({ ...base, type: z.literal("online"), address: Address }),
  z.object({ ...base, type: z.literal("offline"), reason: OfflineReason }),
  z.object({
    ...base,
    type: z.literal("address-changed"),
    address: Address,
    previousAddress: Address.optional(),
  }),
  z.object({
    ...base,
    type: z.literal("firmware-changed"),
    firmwareVersion: z.string().max(64),
    previousFirmwareVersion: z.string().max(64).optional(),
  }),
  z.object({
    ...base,
    type: z.literal("device-info"),
    serialNumber: z.string().max(64).optional(),
    channelCount: z.number().int().nonnegative().optional(),
    alarmInCount: z.number().int().nonnegative().optional(),
    alarmOutCount: z.number().int().nonnegative().optional(),
    diskCount: z.number().int().nonnegative().optional(),
    channels: z.array(ChannelInfo).max(512).optional(),
  }),
  z.object({ ...base, type: z.literal("last-seen"), lastSeen: z.iso.datetime() }),
]);
export type DeviceEvent = z.infer<typeof DeviceEvent>;
export type DeviceEventType = DeviceEvent["type"];

/** Distributes Omit over the union so each variant keeps its own fields. */
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
/** What agent code builds; the event emitter fills in eventId, agentId, version and at. */
export type DeviceEventInput = DistributiveOmit<
  DeviceEvent,
  "eventId" | "agentId" | "version" | "at"
>;
