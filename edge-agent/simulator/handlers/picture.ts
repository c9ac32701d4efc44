import { readFields } from "../../signalling/codec/index.ts";
import { channelInRange } from "./channel.ts";
import type { CommandHandler } from "./context.ts";
import { badRequest, ok } from "./status.ts";

/**
 * Picture commands (ehome-2.0 §2.8, §8). 200 = picture taken / file found; the upload to the picture
 * server follows asynchronously and arrives with the capture issue.
 */

export const manualSnap: CommandHandler = (ctx, request) => {
  const f = readFields(request.params, ctx.view.commands.manualSnap.params);
  if (!channelInRange(ctx, f.chan)) return badRequest("no such channel");
  return ok();
};

export const uploadPic: CommandHandler = (ctx, request) => {
  const f = readFields(request.params, ctx.view.commands.uploadPic.params);
  if (!channelInRange(ctx, f.chan)) return badRequest("no such channel");
  if (!f.filename) return badRequest("Filename missing");
  return ok();
};
