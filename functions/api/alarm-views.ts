import type { z } from "@hono/zod-openapi";
import type { AlarmItem, CaptureItem, StoredObject } from "../alarms/items.ts";
import { effectiveAlarmState, mediaKeyOf } from "../alarms/model.ts";
import type { Alarm, Capture } from "./alarm-schemas.ts";
import type { MediaUrlSigner } from "./media-urls.ts";

/** What the API returns for alarms and captures. */

export type AlarmView = z.infer<typeof Alarm>;
export type CaptureView = z.infer<typeof Capture>;

const OPTIONAL_ALARM_FIELDS = [
  "videoChannel",
  "alarmInChannel",
  "diskNumber",
  "alarmTime",
  "timeDiffH",
  "timeDiffM",
  "remark",
  "completedAt",
  "partialAt",
] as const satisfies readonly (keyof AlarmItem)[];

/** Pictures are served as JPEG whatever the upload said; videos with their stored type. */
const PICTURE_CONTENT_TYPE = "image/jpeg";

async function mediaEntry(object: StoredObject | undefined, signer?: MediaUrlSigner, jpeg = false) {
  if (!object) return { attached: false };
  const contentType = jpeg ? PICTURE_CONTENT_TYPE : object.contentType;
  const signed = signer
    ? await signer.sign({ bucket: object.bucket, key: object.key, contentType })
    : undefined;
  return {
    attached: true,
    size: object.size,
    contentType: object.contentType,
    uploadedAt: object.uploadedAt,
    bucket: object.bucket,
    key: object.key,
    ...(object.sha256 ? { sha256: object.sha256 } : {}),
    ...(signed ? { url: signed.url, urlExpiresAt: signed.expiresAt } : {}),
  };
}

/** The alarm as of `nowMs`; with `signer`, each attached object gets a presigned URL. */
export async function alarmView(
  item: AlarmItem,
  nowMs: number,
  signer?: MediaUrlSigner,
): Promise<AlarmView> {
  const view: Record<string, unknown> = {};
  for (const field of OPTIONAL_ALARM_FIELDS)
    if (item[field] !== undefined) view[field] = item[field];
  const media = item.media ?? {};
  const pictures = await Promise.all(
    item.picIds.map(async (picId) => ({
      picId,
      ...(await mediaEntry(media[mediaKeyOf("picture", picId)], signer, true)),
    })),
  );
  const videos = await Promise.all(
    item.videoIds.map(async (videoId) => ({
      videoId,
      ...(await mediaEntry(media[mediaKeyOf("video", videoId)], signer)),
    })),
  );
  return {
    alarmId: item.alarmId,
    deviceId: item.deviceId,
    agentId: item.agentId,
    sequence: item.sequence,
    alarmType: item.alarmType,
    alarmAction: item.alarmAction,
    retransmitted: item.retransmitted,
    receivedAt: item.receivedAt,
    state: effectiveAlarmState(item, nowMs),
    deadline: new Date(item.deadline).toISOString(),
    ...view,
    pictures,
    videos,
    missing: {
      picIds: pictures.filter((p) => !p.attached).map((p) => p.picId),
      videoIds: videos.filter((v) => !v.attached).map((v) => v.videoId),
    },
  } as AlarmView;
}

export async function captureView(item: CaptureItem, signer: MediaUrlSigner): Promise<CaptureView> {
  const view: Record<string, unknown> = {};
  for (const field of [
    "resolution",
    "quality",
    "fileName",
    "reason",
    "commandId",
    "completedAt",
  ] as const) {
    if (item[field] !== undefined) view[field] = item[field];
  }
  let picture: CaptureView["picture"];
  if (item.state === "ready" && item.picture) {
    const p = item.picture;
    const signed = await signer.sign({
      bucket: p.bucket,
      key: p.key,
      contentType: PICTURE_CONTENT_TYPE,
    });
    picture = {
      size: p.size,
      contentType: p.contentType,
      uploadedAt: p.uploadedAt,
      bucket: p.bucket,
      key: p.key,
      url: signed.url,
      urlExpiresAt: signed.expiresAt,
    };
  }
  return {
    captureId: item.captureId,
    deviceId: item.deviceId,
    channel: item.channel,
    picId: item.picId,
    state: item.state,
    createdAt: item.createdAt,
    updatedAt: item.updatedAt,
    deadline: new Date(item.deadline).toISOString(),
    ...view,
    ...(picture ? { picture } : {}),
  } as CaptureView;
}
