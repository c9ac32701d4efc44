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
import type { CommandId } from "../signalling/catalogue.ts";
import type { CommandOutcome, CommandValues } from "../signalling/command-sender.ts";
import type { AgentErrorCode } from "../signalling/errors.ts";
import type { MediaErrorCode } from "./errors.ts";

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
  | { kind: "failed"; code: MediaErrorCode | AgentErrorCode; message: string };

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
