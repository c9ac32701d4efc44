import { BLOCKS } from "../../signalling/catalogue.ts";
import { buildFields, readFields, type XmlElement } from "../../signalling/codec/index.ts";
import { randomInt } from "../random.ts";
import { recordLine } from "../records.ts";
import { storedPicturesBetween } from "../stored-pictures.ts";
import { channelInRange } from "./channel.ts";
import { deviceLocalNow, parseDeviceTime } from "./clock.ts";
import type { CommandHandler, HandlerContext } from "./context.ts";
import { badRequest, ok } from "./status.ts";

/**
 * ehome-2.0 §2.4 (A): `CH` = channel-recording-signalLost-encoderError-bitrateKbps-clientCount, and
 * NVR firmware appends -linked-online (how IP channels are enumerated).
 */
function channelStatus(ctx: HandlerContext, channel: number): string {
  const p = ctx.device.profile;
  let clients = 0;
  for (const s of ctx.device.sessions.values()) if (s.channel === channel) clients++;
  const bitrate = randomInt(ctx.random, 3800, 4200);
  const base = `${channel}-1-0-0-${bitrate}-${clients}`;
  return p.channels > 1 ? `${base}-1-1` : base;
}

/** `DSK` = disk-capacityMB-freeMB-state (0 active). ehome-2.0 §2.4 (A) */
function diskStatus(ctx: HandlerContext, disk: number): string {
  const cap = ctx.device.profile.diskCapacityMb;
  const free = Math.floor(cap * 0.35);
  return `${disk}-${cap}-${free}-0`;
}

export const getWorkStatus: CommandHandler = (ctx) => {
  const p = ctx.device.profile;
  const f = BLOCKS.workStatus.fields;
  const channels: string[] = [];
  for (let ch = 1; ch <= p.channels; ch++) channels.push(channelStatus(ctx, ch));
  const disks: string[] = [];
  for (let d = 1; d <= p.diskNumber; d++) disks.push(diskStatus(ctx, d));
  const cpu = randomInt(ctx.random, 8, 45);
  const status = buildFields(f, {
    run: 0,
    cpu,
    mem: randomInt(ctx.random, 25, 60),
    diskStatus: { [f.disk]: disks },
    channelStatus: { [f.channel]: channels },
  });
  return ok({ [ctx.view.commands.getWorkStatus.reply.deviceStatusXml!]: status });
};

const MAX_PAGE = 32;

interface Page {
  channel: number;
  fromMs: number;
  toMs: number;
  startIdx: number;
  chunkSize: number;
}

function readPage(
  ctx: HandlerContext,
  f: Partial<Record<string, string>>,
): Page | ReturnType<typeof badRequest> {
  if (!channelInRange(ctx, f.channel)) return badRequest("no such channel");
  const channel = Number(f.channel ?? "1");
  const fromMs = f.startTime ? parseDeviceTime(f.startTime) : undefined;
  const toMs = f.stopTime ? parseDeviceTime(f.stopTime) : undefined;
  if (fromMs === undefined || toMs === undefined || toMs < fromMs) {
    return badRequest("StartTime/StopTime invalid");
  }
  const startIdx = Math.max(0, Number(f.startIdx ?? "0") || 0);
  const chunkSize = Math.min(MAX_PAGE, Math.max(1, Number(f.chunkSize ?? "8") || 8));
  return { channel, fromMs, toMs, startIdx, chunkSize };
}

/**
 * ehome-2.0 §2.5: `RecordedFile` = name startDate startTime endDate endTime sizeBytes flag, for the
 * device's record files (records.ts) overlapping StartTime..StopTime, paged by StartIdx/ChunkSize.
 */
export const queryRecordedFiles: CommandHandler = (ctx, request) => {
  const c = ctx.view.commands.queryRecordedFiles;
  const page = readPage(ctx, readFields(request.params, c.params));
  if ("status" in page) return page;
  const files = ctx.media.env
    .records()
    .list(page.channel, page.fromMs, page.toMs, page.startIdx, page.chunkSize)
    .map(recordLine);
  const params: XmlElement = files.length > 0 ? { [c.reply.recordedFile!]: files } : {};
  return ok(params);
};

/** ehome-2.0 §8: `PictureFile` = name date time sizeBytes, from the device's store (stored-pictures.ts). */
export const queryPictures: CommandHandler = (ctx, request) => {
  const c = ctx.view.commands.queryPictures;
  const page = readPage(ctx, readFields(request.params, c.params));
  if ("status" in page) return page;
  const d = ctx.device;
  const now = deviceLocalNow(ctx.wallClock(), d.timeOffsetMs, d.timeZone);
  const files = storedPicturesBetween(
    page.channel,
    page.fromMs,
    page.toMs,
    now,
    page.startIdx,
    page.chunkSize,
  ).map((f) => `${f.fileName} ${f.time} ${f.size}`);
  const params: XmlElement = files.length > 0 ? { [c.reply.pictureFile!]: files } : {};
  return ok(params);
};
