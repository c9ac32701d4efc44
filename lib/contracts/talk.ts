import { z } from "zod";
import { mintStreamToken, type StreamTokenResult, verifyStreamToken } from "./media.ts";

/**
 * Voice talk (issue 8 item 2; ehome-2.0 §8 `INVITETALK`): `POST /devices/{id}/talk` with
 * `{channel, audioFormat}` answers `{talkId, url, expiresAt}`; the URL is a WebSocket on the agent's
 * viewer port, `ws://<host>:<viewerPort>/talk/<talkId>?token=…&codec=pcm|g711`, whose token is a
 * stream token (media.ts) for the subject `talk_<talkId>` (a viewer token for stream `t` does not
 * open talk `t`; the API must not hand out stream ids starting with `talk_`).
 * The client sends and receives 8 kHz 16-bit little-endian PCM (`pcm`) or raw G.711 (`g711`).
 * `DELETE /talk/{id}` ends it (`BYESTREAM`). One talk per device channel: `409 TALK_BUSY`.
 *
 * The API runs `talk-start` / `talk-stop` commands (commands.ts) on the agent holding the device;
 * the talk id is the `talk-start` command's id, so `DELETE /talk/{id}` finds the device from it.
 */

export const TALK_PATH_PREFIX = "/talk/";

export const TalkAudioFormat = z.enum(["G711U", "G711A"]);
export type TalkAudioFormat = z.infer<typeof TalkAudioFormat>;

export const TalkCodec = z.enum(["pcm", "g711"]);
export type TalkCodec = z.infer<typeof TalkCodec>;

export const TalkRequest = z.object({
  channel: z.number().int().min(1).max(256),
  audioFormat: TalkAudioFormat.default("G711U"),
  /** What the client will send and receive on the URL (its `codec` query parameter). */
  codec: TalkCodec.default("pcm"),
});
export type TalkRequest = z.infer<typeof TalkRequest>;

const TalkId = z
  .string()
  .min(1)
  .max(58)
  .regex(/^[A-Za-z0-9_-]+$/);

/** `talk-start` command params (commands.ts): INVITETALK on the agent (`media.talk.startTalk`). */
export const TalkStartParams = z
  .object({
    talkId: TalkId,
    channel: z.number().int().min(1).max(256),
    audioFormat: TalkAudioFormat,
    /** TCP only (no `LinkMode`; talk over UDP is not served). */
    transport: z.literal("tcp").default("tcp"),
  })
  .strict();
export type TalkStartParams = z.infer<typeof TalkStartParams>;

/** `talk-stop` command params: BYESTREAM and the port released; an unknown id succeeds. */
export const TalkStopParams = z.object({ talkId: TalkId }).strict();
export type TalkStopParams = z.infer<typeof TalkStopParams>;

/** The agent's result of a succeeded `talk-start` (`CommandResult.result`). */
export const TalkCommandResult = z.object({
  talkId: TalkId,
  session: z.string(),
  port: z.number().int(),
});
export type TalkCommandResult = z.infer<typeof TalkCommandResult>;

/** The answer of `POST /devices/{id}/talk`. */
export const TalkStartResult = z.object({
  talkId: TalkId,
  url: z.string(),
  expiresAt: z.string(),
});
export type TalkStartResult = z.infer<typeof TalkStartResult>;

export function talkTokenSubject(talkId: string): string {
  return `talk_${talkId}`;
}

export function mintTalkToken(
  key: Uint8Array,
  claims: { talkId: string; deviceId: string; expiresAt: number },
): string {
  return mintStreamToken(key, {
    streamId: talkTokenSubject(claims.talkId),
    deviceId: claims.deviceId,
    expiresAt: claims.expiresAt,
  });
}

/** The token's device when it was minted for this talk; otherwise why not. */
export function verifyTalkToken(
  key: Uint8Array,
  token: string,
  talkId: string,
  nowMs: number = Date.now(),
):
  | { ok: true; deviceId: string }
  | { ok: false; error: "foreign" | (StreamTokenResult & { ok: false })["error"] } {
  const r = verifyStreamToken(key, token, nowMs);
  if (!r.ok) return r;
  if (r.claims.streamId !== talkTokenSubject(talkId)) return { ok: false, error: "foreign" };
  return { ok: true, deviceId: r.claims.deviceId };
}

export function talkUrl(
  host: string,
  port: number,
  talkId: string,
  token: string,
  codec: TalkCodec,
): string {
  return `ws://${host}:${port}${TALK_PATH_PREFIX}${encodeURIComponent(talkId)}?token=${token}&codec=${codec}`;
}
