import { z } from "zod";
import { RecordSearchParams, StreamControlParams, StreamSpec, StreamStopParams } from "./media.ts";
import { PassthroughParams } from "./passthrough.ts";
import { PictureFetchParams, PictureSearchParams } from "./pictures.ts";
import { TalkStartParams, TalkStopParams } from "./talk.ts";

/**
 * Device commands: API → commands table → the owning agent's command queue → the device, and the
 * result back through the command-results queue (architecture §2, "commands reach the agent that
 * holds the session"). A command record always reaches a final state.
 */

export const COMMAND_TYPES = [
  "reboot",
  "get-config",
  "set-config",
  "work-status",
  "ptz",
  "time-sync",
  "capture",
  /** Sent by the upgrade engine only (not accepted by `POST /devices/{id}/commands`). */
  "firmware-update",
  /** `GET /devices/{id}/pictures` only: QUERYPICTURES, paged by the agent (pictures.ts). */
  "picture-search",
  /** `POST /devices/{id}/pictures/fetch` only: UPLOADPIC with a PicID, resolved as a capture. */
  "picture-fetch",
  /** `POST /devices/{id}/passthrough` only: TRANSPARENT with `Channel` and base64 `Data`. */
  "passthrough",
  /** `GET /devices/{id}/capabilities` only: GETDEVICECONFIG `GetDevAbility`, parsed. */
  "capabilities",
  // Media (media.ts): sent by the records and streams routes only, not by `POST .../commands`.
  "record-search",
  "stream-start",
  "stream-stop",
  "stream-control",
  // Voice talk (talk.ts): sent by `POST /devices/{id}/talk` and `DELETE /talk/{id}` only.
  "talk-start",
  "talk-stop",
] as const;
export const CommandType = z.enum(COMMAND_TYPES);
export type CommandType = z.infer<typeof CommandType>;

export const FINAL_COMMAND_STATES = ["succeeded", "failed", "timed-out", "device-offline"] as const;
export const COMMAND_STATES = ["pending", "sent", ...FINAL_COMMAND_STATES] as const;
export const CommandState = z.enum(COMMAND_STATES);
export type CommandState = z.infer<typeof CommandState>;
export const FinalCommandState = z.enum(FINAL_COMMAND_STATES);
export type FinalCommandState = z.infer<typeof FinalCommandState>;

const configParam = z.number().int().min(0).max(0xffff).optional();
const configSelector = {
  /** `ConfigCmd`, e.g. GetServerInfo, GetPicPara (ehome-2.0 §2.3). */
  configCmd: z
    .string()
    .regex(/^[A-Za-z][A-Za-z0-9]{0,63}$/, "a ConfigCmd name such as GetServerInfo"),
  configParam1: configParam,
  configParam2: configParam,
  configParam3: configParam,
  configParam4: configParam,
};

/** A nested config body: element name → text or nested body (sent inside ConfigXML). */
export type ConfigBody = { [name: string]: string | ConfigBody | Array<string | ConfigBody> };
export const ConfigBody: z.ZodType<ConfigBody> = z.lazy(() =>
  z.record(
    z.string().regex(/^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/, "an XML element name"),
    z.union([z.string().max(512), ConfigBody, z.array(z.union([z.string().max(512), ConfigBody]))]),
  ),
);

export const PTZ_COMMANDS = [
  "UP",
  "DOWN",
  "LEFT",
  "RIGHT",
  "UP_LEFT",
  "UP_RIGHT",
  "DOWN_LEFT",
  "DOWN_RIGHT",
  "ZOOM_IN",
  "ZOOM_OUT",
  "FOCUS_NEAR",
  "FOCUS_FAR",
  "IRIS_OPEN",
  "IRIS_CLOSE",
] as const;

export const CommandParams = {
  reboot: z.object({}).strict(),
  "work-status": z.object({}).strict(),
  "get-config": z.object(configSelector).strict(),
  "set-config": z.object({ ...configSelector, config: ConfigBody }).strict(),
  ptz: z
    .object({
      channel: z.number().int().min(1).max(512),
      command: z.enum(PTZ_COMMANDS),
      action: z.enum(["start", "stop"]),
      speed: z.number().int().min(1).max(7).default(4),
    })
    .strict(),
  "time-sync": z
    .object({
      /** Device-local time `YYYY-MM-DD HH:MM:SS`; defaults to now in `timeZone`. */
      time: z
        .string()
        .regex(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/)
        .optional(),
      /** Offset such as `+08:00`; default `+00:00`. */
      timeZone: z
        .string()
        .regex(/^[+-]\d{2}:\d{2}$/)
        .default("+00:00"),
    })
    .strict(),
  /**
   * A picture to S3: the agent sends `MANUALSNAP` with `SendTo` 1 and `PicID` = `picId`
   * (ehome-2.0 §8); the device uploads it to `POST /pictures`, which names the capture. The
   * command succeeds when the device has taken the picture; the upload follows asynchronously.
   */
  capture: z
    .object({
      channel: z.number().int().min(1).max(512),
      /** Platform-chosen picture id, echoed by the device's upload as `PicID`. */
      picId: z
        .string()
        .min(1)
        .max(64)
        .regex(/^[A-Za-z0-9_-]+$/),
      /** `Resolution` as the device writes it, e.g. `1920*1080`. */
      resolution: z
        .string()
        .regex(/^\d{1,5}\*\d{1,5}$/)
        .optional(),
      /** `Quality`: 0 best, 1 better, 2 normal. */
      quality: z.number().int().min(0).max(2).optional(),
    })
    .strict(),
  /**
   * `UPDATE` (ehome-2.0 §6, §8): the agent sends `URL` = `firmwareUrl(publicHost, httpPort, token)`
   * with `FileSize`, `MD5` and `Version`. The token comes from `mintFirmwareToken` (upgrades.ts).
   * A 200 reply means "download starting"; the command succeeds then, and the upgrade's outcome
   * follows from progress events and the device's re-REGISTER with `version`.
   */
  "firmware-update": z
    .object({
      token: z
        .string()
        .min(1)
        .max(400)
        .regex(/^[A-Za-z0-9._-]+$/),
      fileSize: z.number().int().positive(),
      /** Lower-case hex MD5 of the image; sent when known. */
      md5: z
        .string()
        .regex(/^[0-9a-f]{32}$/)
        .optional(),
      /** The `FirmwareVersion` the device reports after the upgrade. */
      version: z.string().min(1).max(64),
    })
    .strict(),
  "picture-search": PictureSearchParams,
  "picture-fetch": PictureFetchParams,
  passthrough: PassthroughParams,
  capabilities: z.object({}).strict(),
  /** `QUERYRECORDEDFILES` pages (§2.5); result `RecordSearchResult`. */
  "record-search": RecordSearchParams,
  /** `INVITESTREAM` / `PLAYBACK` / `DOWNLOAD` (§2.6, §8); result `StreamStartResult`. */
  "stream-start": StreamSpec,
  /** `BYESTREAM` (§2.6) once no request shares the device stream any more. */
  "stream-stop": StreamStopParams,
  /** `PLAYBACKCONTROL` (§8), or `FORCEIFRAME` for `force-iframe`. */
  "stream-control": StreamControlParams,
  /** `INVITETALK` (§8); result `TalkCommandResult`. The talk id is the command's id. */
  "talk-start": TalkStartParams,
  /** `BYESTREAM` for the talk's Session; result `{talkId, stopped}`. */
  "talk-stop": TalkStopParams,
} as const satisfies Record<CommandType, z.ZodType>;
export type CommandParamsOf<T extends CommandType> = z.infer<(typeof CommandParams)[T]>;

/** Body of `POST /devices/{deviceId}/commands`. */
export const CommandRequest = z.discriminatedUnion("type", [
  z.object({ type: z.literal("reboot"), params: CommandParams.reboot.optional() }),
  z.object({ type: z.literal("work-status"), params: CommandParams["work-status"].optional() }),
  z.object({ type: z.literal("get-config"), params: CommandParams["get-config"] }),
  z.object({ type: z.literal("set-config"), params: CommandParams["set-config"] }),
  z.object({ type: z.literal("ptz"), params: CommandParams.ptz }),
  z.object({ type: z.literal("time-sync"), params: CommandParams["time-sync"].optional() }),
]);
export type CommandRequest = z.infer<typeof CommandRequest>;

/** What the API puts on an agent's command queue. */
export const AgentCommand = z.object({
  commandId: z.string().min(1).max(64),
  deviceId: z.string().min(1).max(256),
  type: CommandType,
  params: z.record(z.string(), z.unknown()),
  /** Epoch ms after which the agent must not start it (it reports `timed-out`). */
  deadline: z.number().int(),
});
export type AgentCommand = z.infer<typeof AgentCommand>;

/** What the agent puts on the command-results queue. */
export const CommandResult = z.object({
  commandId: z.string().min(1).max(64),
  deviceId: z.string().min(1).max(256),
  agentId: z.string().min(1).max(128),
  state: FinalCommandState,
  /** Parsed reply for `succeeded` (e.g. config body, work status). */
  result: z.unknown().optional(),
  /** For `failed`: the device's Status/Description, or the agent's reason. */
  error: z
    .object({
      code: z.string(),
      message: z.string().max(1024),
      status: z.number().int().optional(),
    })
    .optional(),
  at: z.iso.datetime(),
});
export type CommandResult = z.infer<typeof CommandResult>;
