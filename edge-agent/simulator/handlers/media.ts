import { CHANNEL_TYPE, DIRECTION, LINK_MODE, PLAYBACK_ACTION } from "../../media/media-commands.ts";
import { readFields } from "../../signalling/codec/index.ts";
import type { PlaybackControl } from "../media-push.ts";
import type { FixtureName } from "../media-source.ts";
import { randomInt } from "../random.ts";
import type { MediaPlan, RecordInfo } from "../records.ts";
import { channelInRange } from "./channel.ts";
import { parseDeviceTime } from "./clock.ts";
import type { CommandHandler, CommandReply, HandlerContext } from "./context.ts";
import { badRequest, ok } from "./status.ts";

/**
 * MEDIA commands (ehome-2.0 §2.6, §8): the device answers 200 with a Session, then pushes over TCP
 * to SinkIP:SinkPort (device-media.ts, media-push.ts): live fixture frames for INVITESTREAM, a record
 * file or time range for PLAYBACK, a whole file for DOWNLOAD.
 */

/** Sessions kept per device; the oldest is forgotten beyond this (a platform that never says BYE). */
const MAX_SESSIONS = 32;

/**
 * Element values of the MEDIA commands, spelled where the agent spells them (media-commands.ts:
 * ehome-2.0 §2.6 ChannelType, §8 Direction and Action), matched case-insensitively.
 */
const CHANNEL_TYPES: Record<string, { fixture: FixtureName; streamType: number }> = {
  [CHANNEL_TYPE.main]: { fixture: "main", streamType: 0 },
  [CHANNEL_TYPE.sub]: { fixture: "sub", streamType: 1 },
  [CHANNEL_TYPE.third]: { fixture: "sub", streamType: 2 },
};
const ACTIONS = new Map<string, PlaybackControl>(
  Object.entries(PLAYBACK_ACTION).map(([control, wire]) => [wire, control as PlaybackControl]),
);

interface Opened {
  session: string;
  reply: CommandReply;
}

function openSession(
  ctx: HandlerContext,
  command: string,
  channel: number,
  sessionField: string,
): Opened {
  const sessions = ctx.device.sessions;
  if (sessions.size >= MAX_SESSIONS) {
    const oldest = sessions.keys().next().value;
    if (oldest !== undefined) {
      sessions.delete(oldest);
      ctx.media.stop(oldest);
    }
  }
  // ehome-2.0 §2.6: Session is a decimal integer ("like an SSRC"); §4.1 item 5: SSRC = Session.
  let session: string;
  do session = String(randomInt(ctx.random, 1, 0x7fffffff));
  while (sessions.has(session));
  sessions.set(session, { session, command, channel, openedAt: ctx.wallClock() });
  return { session, reply: ok({ [sessionField]: session }) };
}

type Fields = Partial<Record<string, string>>;

function sink(f: Fields): { host: string; port: number } | undefined {
  const host = f.sinkIp?.trim();
  const port = Number(f.sinkPort);
  if (!host || !Number.isInteger(port) || port < 1 || port > 65535) return undefined;
  return { host, port };
}

/** The common checks: channel, sink, `LinkMode` (ehome-2.0 §8: absent = TCP, or UDP). */
function mediaTarget(
  ctx: HandlerContext,
  f: Fields,
): { channel: number; target: { host: string; port: number }; udp: boolean } | CommandReply {
  if (!channelInRange(ctx, f.channel)) return badRequest("no such channel");
  const target = sink(f);
  if (!target) return badRequest("SinkIP/SinkPort missing or invalid");
  const mode = f.linkMode?.trim().toUpperCase() || LINK_MODE.tcp;
  if (mode !== LINK_MODE.tcp && mode !== LINK_MODE.udp) return badRequest("unknown LinkMode");
  return { channel: Number(f.channel ?? "1"), target, udp: mode === LINK_MODE.udp };
}

function channelType(text: string | undefined) {
  return CHANNEL_TYPES[(text ?? "MAIN").trim().toUpperCase()];
}

export const inviteStream: CommandHandler = (ctx, request) => {
  const c = ctx.view.commands.inviteStream;
  const f = readFields(request.params, c.params);
  const t = mediaTarget(ctx, f);
  if ("status" in t) return t;
  const type = channelType(f.channelType);
  if (!type) return badRequest("unknown ChannelType");
  const { session, reply } = openSession(ctx, c.command, t.channel, c.reply.session!);
  return {
    ...reply,
    afterReply: () =>
      ctx.media.start({
        session,
        kind: "live",
        channel: t.channel,
        streamType: type.streamType,
        target: t.target,
        udp: t.udp,
        fixture: ctx.media.env.fixture(type.fixture),
        framing: "rtp",
      }),
  };
};

export const playback: CommandHandler = (ctx, request) => {
  const c = ctx.view.commands.playback;
  const f = readFields(request.params, c.params);
  const t = mediaTarget(ctx, f);
  if ("status" in t) return t;
  const store = ctx.media.env.records();
  let plan: MediaPlan | undefined;
  let record: RecordInfo | undefined;
  if (f.fileName) {
    record = store.byName(f.fileName.trim(), ctx.device.profile.channels);
    if (!record || record.channel !== t.channel) return badRequest("no such record file");
    plan = store.planForFile(record);
  } else {
    const from = f.startTime ? parseDeviceTime(f.startTime) : undefined;
    const to = f.stopTime ? parseDeviceTime(f.stopTime) : undefined;
    if (from === undefined || to === undefined || to <= from) {
      return badRequest("FileName, or StartTime and StopTime, missing or invalid");
    }
    plan = store.planForRange(t.channel, from, to);
    if (!plan) return badRequest("no record in the time range");
  }
  const reverse = f.direction?.trim().toUpperCase() === DIRECTION.reverse;
  const { session, reply } = openSession(ctx, c.command, t.channel, c.reply.session!);
  return {
    ...reply,
    afterReply: () =>
      ctx.media.start({
        session,
        kind: "playback",
        channel: t.channel,
        streamType: 0,
        ...(record ? { fileName: record.fileName } : {}),
        target: t.target,
        udp: t.udp,
        fixture: store.fixture,
        plan,
        reverse,
        framing: ctx.options.playbackFraming,
        seekTarget: parseDeviceTime,
      }),
  };
};

export const download: CommandHandler = (ctx, request) => {
  const c = ctx.view.commands.download;
  const f = readFields(request.params, c.params);
  if (!f.fileName) return badRequest("FileName missing");
  const t = mediaTarget(ctx, f);
  if ("status" in t) return t;
  const store = ctx.media.env.records();
  const record = store.byName(f.fileName.trim(), ctx.device.profile.channels);
  if (!record || record.channel !== t.channel) return badRequest("no such record file");
  const { session, reply } = openSession(ctx, c.command, t.channel, c.reply.session!);
  return {
    ...reply,
    afterReply: () =>
      ctx.media.start({
        session,
        kind: "download",
        channel: t.channel,
        streamType: 0,
        fileName: record.fileName,
        target: t.target,
        udp: t.udp,
        fixture: store.fixture,
        plan: store.planForFile(record),
        // ehome-2.0 §8 DOWNLOAD: the whole file as it is stored: raw PS.
        framing: "ps",
      }),
  };
};

/** ehome-2.0 §8 INVITETALK: 200 + Session, then talk over TCP to the sink (talk-push.ts). */
export const inviteTalk: CommandHandler = (ctx, request) => {
  const c = ctx.view.commands.inviteTalk;
  const f = readFields(request.params, c.params);
  if (!channelInRange(ctx, f.channel)) return badRequest("no such channel");
  const format = (f.audioFormat ?? "G711U").trim().toUpperCase();
  if (format !== "G711U" && format !== "G711A") return badRequest("unknown AudioFormat");
  const target = sink(f);
  if (!target) return badRequest("SinkIP/SinkPort missing or invalid");
  if ((f.linkMode?.trim().toUpperCase() || LINK_MODE.tcp) !== LINK_MODE.tcp) {
    return badRequest("talk over UDP is not simulated");
  }
  const { session, reply } = openSession(
    ctx,
    c.command,
    Number(f.channel ?? "1"),
    c.reply.session!,
  );
  return {
    ...reply,
    afterReply: () => {
      ctx.media.startTalk({ session, target, law: format === "G711A" ? "alaw" : "ulaw" });
    },
  };
};

/** ehome-2.0 §2.6 (A): 200 echoing Session; the push stops and its socket closes (§4.1 item 6). */
export const byeStream: CommandHandler = (ctx, request) => {
  const c = ctx.view.commands.byeStream;
  const f = readFields(request.params, c.params);
  if (!f.session) return badRequest("Session missing");
  ctx.device.sessions.delete(f.session);
  ctx.media.stop(f.session);
  return ok({ [c.reply.session!]: f.session });
};

/** ehome-2.0 §8 PLAYBACKCONTROL: applied to a playback push; recorded on any push. */
export const playbackControl: CommandHandler = (ctx, request) => {
  const f = readFields(request.params, ctx.view.commands.playbackControl.params);
  if (!f.session || !ctx.device.sessions.has(f.session)) return badRequest("no such Session");
  if (!f.action) return badRequest("Action missing");
  const action = ACTIONS.get(f.action.trim().toUpperCase());
  if (!action) return badRequest("unknown Action");
  const speed = f.speed === undefined ? undefined : Number(f.speed);
  if (speed !== undefined && !Number.isFinite(speed)) return badRequest("Speed invalid");
  const push = ctx.media.get(f.session);
  if (!push) return ok();
  const applied = push.control(action, speed, f.seekTime);
  if (!applied && push.config.kind === "playback" && !push.ended) {
    return badRequest(action === "seek" ? "SeekTime missing or invalid" : "cannot apply");
  }
  return ok();
};

/** ehome-2.0 §8 FORCEIFRAME: the next frame of the channel's live push is an IDR. */
export const forceIFrame: CommandHandler = (ctx, request) => {
  const f = readFields(request.params, ctx.view.commands.forceIFrame.params);
  if (!channelInRange(ctx, f.channel)) return badRequest("no such channel");
  const type = channelType(f.channelType);
  if (!type) return badRequest("unknown ChannelType");
  ctx.media.forceIdr(Number(f.channel ?? "1"), type.streamType);
  return ok();
};
