import { readFields } from "../../signalling/codec/index.ts";
import { randomInt } from "../random.ts";
import { channelInRange } from "./channel.ts";
import type { CommandHandler, CommandReply, HandlerContext } from "./context.ts";
import { badRequest, ok } from "./status.ts";

/**
 * MEDIA commands (ehome-2.0 §2.6, §8). For now the device answers and keeps the session (so work
 * status shows client counts) but pushes no media; streaming arrives with the media issue.
 */

/** Sessions kept per device; the oldest is forgotten beyond this (a platform that never says BYE). */
const MAX_SESSIONS = 32;

function openSession(
  ctx: HandlerContext,
  command: string,
  channelText: string | undefined,
  sessionField: string,
): CommandReply {
  if (!channelInRange(ctx, channelText)) return badRequest("no such channel");
  const channel = Number(channelText ?? "1");
  const sessions = ctx.device.sessions;
  if (sessions.size >= MAX_SESSIONS) {
    const oldest = sessions.keys().next().value;
    if (oldest !== undefined) sessions.delete(oldest);
  }
  // ehome-2.0 §2.6: Session is a decimal integer ("like an SSRC").
  let session: string;
  do session = String(randomInt(ctx.random, 1, 0x7fffffff));
  while (sessions.has(session));
  sessions.set(session, { session, command, channel, openedAt: ctx.wallClock() });
  return ok({ [sessionField]: session });
}

export const inviteStream: CommandHandler = (ctx, request) => {
  const c = ctx.view.commands.inviteStream;
  const f = readFields(request.params, c.params);
  return openSession(ctx, c.command, f.channel, c.reply.session!);
};

export const playback: CommandHandler = (ctx, request) => {
  const c = ctx.view.commands.playback;
  const f = readFields(request.params, c.params);
  return openSession(ctx, c.command, f.channel, c.reply.session!);
};

export const download: CommandHandler = (ctx, request) => {
  const c = ctx.view.commands.download;
  const f = readFields(request.params, c.params);
  if (!f.fileName) return badRequest("FileName missing");
  return openSession(ctx, c.command, f.channel, c.reply.session!);
};

export const inviteTalk: CommandHandler = (ctx, request) => {
  const c = ctx.view.commands.inviteTalk;
  const f = readFields(request.params, c.params);
  return openSession(ctx, c.command, f.channel, c.reply.session!);
};

/** ehome-2.0 §2.6 (A): 200 echoing Session. */
export const byeStream: CommandHandler = (ctx, request) => {
  const c = ctx.view.commands.byeStream;
  const f = readFields(request.params, c.params);
  if (!f.session) return badRequest("Session missing");
  ctx.device.sessions.delete(f.session);
  return ok({ [c.reply.session!]: f.session });
};

export const playbackControl: CommandHandler = (ctx, request) => {
  const f = readFields(request.params, ctx.view.commands.playbackControl.params);
  if (!f.session || !ctx.device.sessions.has(f.session)) return badRequest("no such Session");
  if (!f.action) return badRequest("Action missing");
  return ok();
};

export const forceIFrame: CommandHandler = () => ok();
