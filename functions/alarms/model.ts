import { createHash, randomBytes } from "node:crypto";
import type { AlarmItem, AlarmState, MediaKind } from "./items.ts";

/**
 * Pure rules of alarm/media correlation (ehome-2.0 §5.2 and the §8 ALARM row), shared by the
 * alarms function and the api function.
 */

/**
 * The alarm's id, derived from what identifies it on the wire: DeviceID + Sequence (the agent's
 * de-duplication key, §8 ALARM row) + AlarmTime. A redelivered event, or a retransmission the
 * agent forwarded twice, lands on the same item.
 */
export function alarmIdFor(deviceId: string, sequence: number, alarmTime: string | undefined) {
  const digest = createHash("sha256")
    .update(`${deviceId}\u0000${sequence}\u0000${alarmTime ?? ""}`, "utf8")
    .digest("hex");
  return `al-${digest.slice(0, 32)}`;
}

/** Sort key part of a media item: `p#<PicID>` / `v#<VideoId>`. */
export function mediaKeyOf(kind: MediaKind, mediaId: string): string {
  return `${kind === "picture" ? "p" : "v"}#${mediaId}`;
}

export function parseMediaKey(key: string): { kind: MediaKind; mediaId: string } | undefined {
  if (key.startsWith("p#")) return { kind: "picture", mediaId: key.slice(2) };
  if (key.startsWith("v#")) return { kind: "video", mediaId: key.slice(2) };
  return undefined;
}

/** Expected media keys of an alarm, each once, pictures first. */
export function expectedMediaKeys(picIds: readonly string[], videoIds: readonly string[]) {
  return [
    ...new Set([
      ...picIds.map((id) => mediaKeyOf("picture", id)),
      ...videoIds.map((id) => mediaKeyOf("video", id)),
    ]),
  ];
}

/**
 * The state as of `nowMs`: an alarm still `open` after its deadline is `partial` to every reader,
 * before the sweep writes it (consistent on read).
 */
export function effectiveAlarmState(
  item: Pick<AlarmItem, "state" | "deadline">,
  nowMs: number,
): AlarmState {
  return item.state === "open" && nowMs > item.deadline ? "partial" : item.state;
}

/**
 * Capture ids double as the `PicID` of MANUALSNAP: short printable ASCII (the device echoes
 * it in its upload), 80 random bits.
 */
export const CAPTURE_ID_PATTERN = /^cap-[0-9a-f]{20}$/;

export function newCaptureId(): string {
  return `cap-${randomBytes(10).toString("hex")}`;
}

export function isCaptureId(value: string): boolean {
  return CAPTURE_ID_PATTERN.test(value);
}
