import { z } from "zod";
import { PositionsMessage } from "./positions.ts";

/**
 * Passthrough data (the DATA module, ehome-2.0 §8 row TRANSPARENT, provisional): `Channel` (serial
 * port or logical channel) and `Data` (base64, at most 1024 bytes decoded), in both directions.
 * Also the device-data queue's message union (positions and device-initiated passthrough).
 */

/** ehome-2.0 §8 TRANSPARENT: `Data` is at most 1024 bytes once decoded. */
export const MAX_PASSTHROUGH_BYTES = 1024;
/** Highest `Channel` accepted (serial ports and logical channels are small numbers). */
export const MAX_PASSTHROUGH_CHANNEL = 256;

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Bytes `text` decodes to when it is canonical base64, else `undefined`. */
export function base64Bytes(text: string): number | undefined {
  if (!BASE64.test(text)) return undefined;
  return Buffer.from(text, "base64").length;
}

export const PassthroughData = z
  .string()
  .min(1, "at least one byte")
  .max(Math.ceil(MAX_PASSTHROUGH_BYTES / 3) * 4, `at most ${MAX_PASSTHROUGH_BYTES} bytes decoded`)
  .refine((s) => BASE64.test(s), "standard base64 (A-Z a-z 0-9 + /, padded with =)")
  .refine(
    (s) => (base64Bytes(s) ?? 0) <= MAX_PASSTHROUGH_BYTES,
    `at most ${MAX_PASSTHROUGH_BYTES} bytes decoded`,
  );

export const PassthroughChannel = z.number().int().min(1).max(MAX_PASSTHROUGH_CHANNEL);

/** Params of the `passthrough` command (`POST /devices/{id}/passthrough`). */
export const PassthroughParams = z
  .object({ channel: PassthroughChannel, data: PassthroughData })
  .strict();
export type PassthroughParams = z.infer<typeof PassthroughParams>;

/** Agent → device-data function: a TRANSPARENT request the device sent (already answered 200). */
export const PassthroughMessage = z.object({
  type: z.literal("passthrough"),
  eventId: z.string().min(1).max(64),
  agentId: z.string().min(1).max(128),
  deviceId: z.string().min(1).max(256),
  /** The request's `Sequence`; with `receivedAt`, the idempotency key of the stored item. */
  sequence: z.number().int().min(0),
  /** `Channel`; absent when the device sent none or a non-number. */
  channel: z.number().int().min(0).optional(),
  /** `Data` as sent (base64); empty when the device sent none. */
  data: z.string().max(4096),
  receivedAt: z.iso.datetime(),
});
export type PassthroughMessage = z.infer<typeof PassthroughMessage>;

/** What the device-data queue carries (`QUEUES.deviceData`), discriminated by `type`. */
export const DeviceDataMessage = z.discriminatedUnion("type", [
  PositionsMessage,
  PassthroughMessage,
]);
export type DeviceDataMessage = z.infer<typeof DeviceDataMessage>;

/** Sort key of a stored passthrough message: `<receivedAt>#<sequence>` (zero-padded). */
export function passthroughSortKey(receivedAt: string, sequence: number): string {
  return `${receivedAt}#${String(sequence).padStart(10, "0")}`;
}
