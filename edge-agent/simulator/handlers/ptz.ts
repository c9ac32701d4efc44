import { readFields } from "../../signalling/codec/index.ts";
import { channelInRange } from "./channel.ts";
import type { CommandHandler } from "./context.ts";
import { badRequest, ok, operFailed } from "./status.ts";

/**
 * ehome-2.0 §2.8 (A): a fixed camera answers PTZCONTROL with 401 "System Oper Faild.". The platform
 * sends Start/Stop three times with one Sequence (§3.3); the device de-duplicates before this runs,
 * so each movement is counted once.
 */
export const ptzControl: CommandHandler = (ctx, request) => {
  if (!ctx.device.profile.ptz) return operFailed();
  const f = readFields(request.params, ctx.view.commands.ptzControl.params);
  if (!channelInRange(ctx, f.channel)) return badRequest("no such channel");
  if (!f.ptzCmd) return badRequest("PTZCmd missing");
  ctx.actions.ptzAction();
  return ok();
};

export const ptzPresetControl: CommandHandler = (ctx, request) => {
  if (!ctx.device.profile.ptz) return operFailed();
  const f = readFields(request.params, ctx.view.commands.ptzPresetControl.params);
  if (!channelInRange(ctx, f.channel)) return badRequest("no such channel");
  if (!f.ptzPresetCmd) return badRequest("PTZPresetCmd missing");
  ctx.actions.ptzAction();
  return ok();
};
