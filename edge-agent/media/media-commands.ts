import type { AgentCommand } from "../../lib/contracts/commands.ts";
import type {
  MediaTransport,
  PlaybackAction,
  PlaybackDirection,
  RecordSearchParams,
  StreamControlParams,
  StreamSpec,
  StreamType,
} from "../../lib/contracts/media.ts";
import type { TalkStartParams, TalkStopParams } from "../../lib/contracts/talk.ts";
import type { CommandId } from "../signalling/catalogue.ts";
import type { CommandOutcome, CommandValues } from "../signalling/command-sender.ts";
import type { AgentErrorCode } from "../signalling/errors.ts";
import type { MediaErrorCode } from "./errors.ts";
import type { TalkErrorCode, TalkManager } from "./talk.ts";

/**
 * The four media command types (`record-search`, `stream-start`, `stream-stop`,
 * `stream-control`; lib/contracts/commands.ts) as the media module runs them, and the wire values
 * of the media commands' fields (element names stay in the catalogue).
 */

/** The agent's command sender, as the media module uses it. */
export type MediaSend = <C extends CommandId>(
  deviceId: string,
  commandId: C,
  values?: CommandValues<C>,
) => Promise<CommandOutcome>;

/** How a media command ended: a result, the device's own failure, or an agent-side one. */
export type MediaOutcome =
  | { kind: "ok"; result: unknown }
  | Exclude<CommandOutcome, { kind: "ok" }>
  | { kind: "failed"; code: MediaCommandErrorCode; message: string };

/** Codes a failed media or talk command reports (`CommandResult.error.code`). */
export type MediaCommandErrorCode = MediaErrorCode | AgentErrorCode | TalkErrorCode;

export function mediaFailure(code: MediaErrorCode, message: string): MediaOutcome {
  return { kind: "failed", code, message };
}

/** ehome-2.0 §2.6 (A): `ChannelType`. */
export const CHANNEL_TYPE: Readonly<Record<StreamType, string>> = {
  main: "MAIN",
  sub: "SUB",
  third: "THIRD",
};

/** ehome-2.0 §8 LinkMode row: `LinkMode` (absent = TCP). */
export const LINK_MODE: Readonly<Record<MediaTransport, string>> = {
  tcp: "TCP",
  udp: "UDP",
};

/** ehome-2.0 §8 PLAYBACK row: `Direction`. */
export const DIRECTION: Readonly<Record<PlaybackDirection, string>> = {
  forward: "FORWARD",
  reverse: "REVERSE",
};

/** ehome-2.0 §8 PLAYBACKCONTROL row: `Action` (force-iframe is FORCEIFRAME, not an Action). */
export const PLAYBACK_ACTION: Readonly<Record<Exclude<PlaybackAction, "force-iframe">, string>> = {
  pause: "PAUSE",
  resume: "RESUME",
  fast: "FAST",
  slow: "SLOW",
  normal: "NORMAL",
  seek: "SEEK",
  reverse: "REVERSE",
  forward: "FORWARD",
};

/** What media-commands needs from the manager. */
export interface MediaCommandTarget {
  startStream(deviceId: string, spec: StreamSpec): Promise<MediaOutcome>;
  /** `deviceId`: the command's device; a stream of another device is not found. */
  stopStream(streamId: string, deviceId?: string): Promise<MediaOutcome>;
  control(params: StreamControlParams, deviceId?: string): Promise<MediaOutcome>;
  searchRecords(deviceId: string, params: RecordSearchParams): Promise<MediaOutcome>;
  /** The device's session ended: its streams stop (`DEVICE_OFFLINE`). Optional for test doubles. */
  deviceGone?(deviceId: string, why: string): void;
}

/** Runs one media command whose params are already validated against `CommandParams`. */
export function executeMediaCommand(
  cmd: AgentCommand,
  target: MediaCommandTarget,
): Promise<MediaOutcome> {
  switch (cmd.type) {
    case "record-search":
      return target.searchRecords(cmd.deviceId, cmd.params as RecordSearchParams);
    case "stream-start":
      return target.startStream(cmd.deviceId, cmd.params as StreamSpec);
    case "stream-stop":
      return target.stopStream((cmd.params as { streamId: string }).streamId, cmd.deviceId);
    case "stream-control":
      return target.control(cmd.params as StreamControlParams, cmd.deviceId);
    default:
      return Promise.resolve(
        mediaFailure("STREAM_NOT_FOUND", `${cmd.type} is not a media command`),
      );
  }
}

export const MEDIA_COMMAND_TYPES: ReadonlySet<string> = new Set([
  "record-search",
  "stream-start",
  "stream-stop",
  "stream-control",
]);

/** What the talk commands need from the talk manager (talk.ts; `media.talk` of createAgentMedia). */
export type TalkCommandTarget = Pick<TalkManager, "startTalk" | "stopTalk">;

export const TALK_COMMAND_TYPES: ReadonlySet<string> = new Set(["talk-start", "talk-stop"]);

/**
 * Runs `talk-start` / `talk-stop` (params already validated against `CommandParams`). A start
 * answers `TalkCommandResult` (`{talkId, session, port}`); no free pool port is
 * `MEDIA_PORTS_EXHAUSTED` (the API's 503), a busy channel `TALK_BUSY` (409). A stop succeeds
 * whether or not the talk was still there (`stopped` says which).
 */
export async function executeTalkCommand(
  cmd: AgentCommand,
  target: TalkCommandTarget,
): Promise<MediaOutcome> {
  switch (cmd.type) {
    case "talk-start": {
      const p = cmd.params as TalkStartParams;
      const r = await target.startTalk(cmd.deviceId, {
        talkId: p.talkId,
        channel: p.channel,
        audioFormat: p.audioFormat,
      });
      if (r.kind === "ok") {
        return { kind: "ok", result: { talkId: r.talkId, session: r.session, port: r.port } };
      }
      if (r.kind !== "failed") return r; // the device's own outcome: failed, timed-out, offline
      return r.code === "TALK_PORTS"
        ? mediaFailure("MEDIA_PORTS_EXHAUSTED", r.message)
        : { kind: "failed", code: r.code, message: r.message };
    }
    case "talk-stop": {
      const { talkId } = cmd.params as TalkStopParams;
      return { kind: "ok", result: { talkId, stopped: await target.stopTalk(talkId) } };
    }
    default:
      return {
        kind: "failed",
        code: "TALK_NOT_FOUND",
        message: `${cmd.type} is not a talk command`,
      };
  }
}
