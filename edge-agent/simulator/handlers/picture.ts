import { readFields } from "../../signalling/codec/index.ts";
import { channelInRange } from "./channel.ts";
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

export const uploadPic: CommandHandler = (ctx, request) => {
  const f = readFields(request.params, ctx.view.commands.uploadPic.params);
  if (!channelInRange(ctx, f.chan)) return badRequest("no such channel");
  if (!f.filename) return badRequest("Filename missing");
  return ok();
};
