import { readFields } from "../../signalling/codec/index.ts";
import { parseStoredPictureName, STORED_PICTURE_PERIOD_MS } from "../stored-pictures.ts";
import { channelInRange } from "./channel.ts";
import { deviceLocalNow } from "./clock.ts";
import type { CommandHandler } from "./context.ts";
import { badRequest, ok } from "./status.ts";

/**
 * Picture commands (ehome-2.0 §2.8, §8). 200 = picture taken / file found; with `SendTo` 1 the
 * picture is then uploaded to the picture server under the platform's `PicID` (asynchronously).
 */

export const manualSnap: CommandHandler = (ctx, request) => {
  const f = readFields(request.params, ctx.view.commands.manualSnap.params);
  if (!channelInRange(ctx, f.chan)) return badRequest("no such channel");
  const reply = ok();
  const picId = f.picId?.trim();
  if (f.sendTo?.trim() === "1" && picId) {
    return { ...reply, afterReply: () => ctx.actions.snapshot(Number(f.chan), picId) };
  }
  return reply;
};

/**
 * ehome-2.0 §8 row UPLOADPIC: a stored file of this channel (stored-pictures.ts) that exists by
 * the device's clock is uploaded under `PicID`; anything else is answered 400, nothing uploaded.
 */
export const uploadPic: CommandHandler = (ctx, request) => {
  const f = readFields(request.params, ctx.view.commands.uploadPic.params);
  if (!channelInRange(ctx, f.chan)) return badRequest("no such channel");
  if (!f.filename) return badRequest("Filename missing");
  const file = parseStoredPictureName(f.filename.trim(), ctx.device.profile.channels);
  const d = ctx.device;
  const now = deviceLocalNow(ctx.wallClock(), d.timeOffsetMs, d.timeZone);
  if (
    !file ||
    file.channel !== Number(f.chan ?? "1") ||
    file.slot * STORED_PICTURE_PERIOD_MS > now
  ) {
    return badRequest("no such file");
  }
  const picId = f.picId?.trim();
  if (!picId) return ok();
  return { ...ok(), afterReply: () => ctx.actions.uploadStoredPicture(file, picId) };
};
