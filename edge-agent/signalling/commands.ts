import {
  type AgentCommand,
  CommandParams,
  type CommandParamsOf,
  type CommandResult,
  type CommandType,
} from "../../lib/contracts/commands.ts";
import { firmwareUrl } from "../../lib/contracts/upgrades.ts";
import {
  executeMediaCommand,
  executeTalkCommand,
  type MediaCommandErrorCode,
  type MediaCommandTarget,
  type TalkCommandTarget,
} from "../media/media-commands.ts";
import { parseCapabilities } from "./capabilities.ts";
import { type CatalogueView, CONFIG_CMD, DEFAULT_VIEW } from "./catalogue.ts";
import { childText, type XmlElement } from "./codec/index.ts";
import { CommandEncodeError, type CommandOutcome, type CommandSender } from "./command-sender.ts";
import { configXmlOf, parseWorkStatus } from "./device-status.ts";
import type { AgentErrorCode } from "./errors.ts";
import { searchPictures } from "./picture-search.ts";
import type { SessionStore } from "./sessions.ts";

/**
 * Executes a contracts `AgentCommand` (what the API puts on the agent's queue) through the
 * command sender and maps the device's answer to a contracts `CommandResult`.
 */

export interface ExecuteDeps {
  sender: CommandSender;
  sessions: Pick<SessionStore, "get">;
  agentId: string;
  now?: () => number;
  /**
   * Where devices reach this agent's HTTP port (`EHOME_PUBLIC_HOST`, `EHOME_HTTP_PORT`): the
   * `firmware-update` URL is built from it. Without it that command fails (`VALIDATION_FAILED`).
   */
  firmware?: {
    host: string;
    port: number;
    /** Told before `UPDATE` goes out, so progress reports can be tied to the campaign. */
    sending?(deviceId: string, token: string): void;
    /**
     * The device routes over TLS (`EHOME_HTTPS_*`): the URL becomes `https://host:port/fw/…`
     * (issue 8 item 7). The host must be a name the certificate covers.
     */
    https?: { host: string; port: number } | undefined;
  };
  /**
   * The media module (edge-agent/media/manager.ts): runs `record-search`, `stream-start`,
   * `stream-stop` and `stream-control`. Without it those fail `MEDIA_UNAVAILABLE`.
   */
  media?: MediaCommandTarget;
  /**
   * Voice talk (edge-agent/media/talk.ts, `media.talk`): runs `talk-start` and `talk-stop`.
   * Without it those fail `MEDIA_UNAVAILABLE`.
   */
  talk?: TalkCommandTarget;
}

/** ehome-2.0 §2.8: `Action` values of PTZCONTROL as the demo templates write them. */
const PTZ_ACTION = { start: "Start", stop: "Stop" } as const;

/** Local time `YYYY-MM-DD HH:MM:SS` in a `+HH:MM` zone (ADJUSTTIME, ehome-2.0 §2.8). */
export function deviceLocalTime(epochMs: number, timeZone: string): string {
  const m = /^([+-])(\d{2}):(\d{2})$/.exec(timeZone);
  const offsetMin = m ? (m[1] === "-" ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3])) : 0;
  const iso = new Date(epochMs + offsetMin * 60_000).toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}`;
}

type Outcome = { outcome: CommandOutcome; parse: (params: XmlElement) => unknown };

async function run(cmd: AgentCommand, deps: ExecuteDeps, now: number): Promise<Outcome> {
  const { sender } = deps;
  const id = cmd.deviceId;
  const view = deps.sessions.get(id)?.view;
  const none = () => ({});
  switch (cmd.type) {
    case "reboot":
      return { outcome: await sender.send(id, "reboot", {}), parse: none };
    case "work-status":
      return {
        outcome: await sender.send(id, "getWorkStatus", {}),
        parse: (params) => (view && parseWorkStatus(params, view)) ?? {},
      };
    case "get-config": {
      const p = cmd.params as CommandParamsOf<"get-config">;
      return {
        outcome: await sender.send(id, "getDeviceConfig", {
          configCmd: p.configCmd,
          configParam1: p.configParam1 ?? 0,
          configParam2: p.configParam2 ?? 0,
          configParam3: p.configParam3 ?? 0,
          configParam4: p.configParam4 ?? 0,
        }),
        parse: (params) => (view && configXmlOf(params, view)) ?? {},
      };
    }
    case "set-config": {
      const p = cmd.params as CommandParamsOf<"set-config">;
      return {
        outcome: await sender.send(id, "setDeviceConfig", {
          configCmd: p.configCmd,
          configParam1: p.configParam1 ?? 0,
          configParam2: p.configParam2 ?? 0,
          configParam3: p.configParam3 ?? 0,
          configParam4: p.configParam4 ?? 0,
          configXml: p.config as XmlElement,
        }),
        parse: none,
      };
    }
    case "ptz": {
      const p = cmd.params as CommandParamsOf<"ptz">;
      return {
        outcome: await sender.send(id, "ptzControl", {
          channel: p.channel,
          ptzCmd: p.command,
          action: PTZ_ACTION[p.action],
          speed: p.speed,
        }),
        parse: none,
      };
    }
    case "time-sync": {
      const p = cmd.params as CommandParamsOf<"time-sync">;
      const time = p.time ?? deviceLocalTime(now, p.timeZone);
      return {
        outcome: await sender.send(id, "adjustTime", { timeZone: p.timeZone, time }),
        parse: () => ({ time, timeZone: p.timeZone }),
      };
    }
    case "capture": {
      // ehome-2.0 §8 Capture row: MANUALSNAP, SendTo 1 (upload to the picture server announced at
      // REGISTER), PicID chosen by the platform so the upload names the capture.
      const p = cmd.params as CommandParamsOf<"capture">;
      return {
        outcome: await sender.send(id, "manualSnap", {
          chan: p.channel,
          snapType: 0,
          sendTo: 1,
          ...(p.resolution === undefined ? {} : { resolution: p.resolution }),
          quality: p.quality ?? 0,
          frequency: 1,
          picId: p.picId,
        }),
        parse: () => ({ picId: p.picId, channel: p.channel }),
      };
    }
    case "picture-search": {
      // ehome-2.0 §8 row QUERYPICTURES, paged like §2.5 (picture-search.ts).
      const p = cmd.params as CommandParamsOf<"picture-search">;
      const found = await searchPictures(sender, id, view, p);
      return { outcome: found.outcome, parse: () => found.result ?? {} };
    }
    case "picture-fetch": {
      // ehome-2.0 §8 row UPLOADPIC: the device uploads the stored file to the picture server
      // under the platform's PicID, which names the capture it resolves (as for MANUALSNAP).
      const p = cmd.params as CommandParamsOf<"picture-fetch">;
      return {
        outcome: await sender.send(id, "uploadPic", {
          chan: p.channel,
          filename: p.fileName,
          picId: p.picId,
        }),
        parse: () => ({ picId: p.picId, channel: p.channel, fileName: p.fileName }),
      };
    }
    case "passthrough": {
      // ehome-2.0 §8 row TRANSPARENT: Channel + base64 Data; the reply may carry Data back.
      const p = cmd.params as CommandParamsOf<"passthrough">;
      return {
        outcome: await sender.send(id, "transparent", { channel: p.channel, data: p.data }),
        parse: (params) => passthroughReply(params, view, p.channel),
      };
    }
    case "capabilities":
      // ehome-2.0 §8 row "Capability set": GETDEVICECONFIG GetDevAbility, ConfigParam1..4 = 0.
      return {
        outcome: await sender.send(id, "getDeviceConfig", {
          configCmd: CONFIG_CMD.getDevAbility,
          configParam1: 0,
          configParam2: 0,
          configParam3: 0,
          configParam4: 0,
        }),
        parse: (params) => parseCapabilities(params, view ?? DEFAULT_VIEW),
      };
    case "firmware-update": {
      // ehome-2.0 §6 + §8 row UPDATE: URL (≤ 512 bytes), FileSize, MD5 (optional), Version.
      const p = cmd.params as CommandParamsOf<"firmware-update">;
      const fw = deps.firmware;
      if (!fw) throw new FirmwareUnavailableError();
      const url = fw.https
        ? firmwareUrl(fw.https.host, fw.https.port, p.token, "https")
        : firmwareUrl(fw.host, fw.port, p.token);
      fw.sending?.(id, p.token);
      return {
        outcome: await sender.send(id, "update", {
          url,
          fileSize: p.fileSize,
          ...(p.md5 === undefined ? {} : { md5: p.md5 }),
          version: p.version,
        }),
        parse: () => ({ url, version: p.version }),
      };
    }
    case "record-search":
    case "stream-start":
    case "stream-stop":
    case "stream-control": {
      // The media module (edge-agent/media) runs these; an agent built without it refuses them.
      if (!deps.media) throw new MediaUnavailableError(cmd.type);
      const m = await executeMediaCommand(cmd, deps.media);
      if (m.kind === "failed") throw new MediaCommandError(m.code, m.message);
      if (m.kind === "ok") return { outcome: MEDIA_OK, parse: () => m.result };
      return { outcome: m, parse: none };
    }
    case "talk-start":
    case "talk-stop": {
      if (!deps.talk) throw new MediaUnavailableError(cmd.type);
      const m = await executeTalkCommand(cmd, deps.talk);
      if (m.kind === "failed") throw new MediaCommandError(m.code, m.message);
      if (m.kind === "ok") return { outcome: MEDIA_OK, parse: () => m.result };
      return { outcome: m, parse: none };
    }
  }
}

const MEDIA_OK: CommandOutcome = Object.freeze({
  kind: "ok",
  status: 200,
  description: "OK",
  params: {},
});

/**
 * A media or talk command the agent itself refused or could not complete (`MEDIA_ERROR_CODES`,
 * `TALK_ERROR_CODES`).
 */
class MediaCommandError extends Error {
  readonly code: MediaCommandErrorCode;
  constructor(code: MediaCommandErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

/** The agent was composed without its media module (`EdgeAgentDeps.media`), e.g. in unit tests. */
class MediaUnavailableError extends Error {
  readonly code = "MEDIA_UNAVAILABLE" as const;
  constructor(type: string) {
    super(`${type} needs the agent's media module, which this agent was started without`);
  }
}

/** TRANSPARENT reply: `Data` when the device sent some (base64 as on the wire). */
function passthroughReply(
  params: XmlElement,
  view: CatalogueView | undefined,
  channel: number,
): { channel: number; data?: string } {
  const data = childText(params, (view ?? DEFAULT_VIEW).commands.transparent.reply.data!)?.trim();
  return data ? { channel, data } : { channel };
}

/** The agent was built without its public HTTP address: it cannot hand out firmware URLs. */
class FirmwareUnavailableError extends Error {
  readonly code = "VALIDATION_FAILED" as const;
  constructor() {
    super("firmware-update needs the agent's public HTTP address (not configured)");
  }
}

/** Runs one command to a final state. Never rejects. */
export async function executeCommand(cmd: AgentCommand, deps: ExecuteDeps): Promise<CommandResult> {
  const now = (deps.now ?? Date.now)();
  const base = { commandId: cmd.commandId, deviceId: cmd.deviceId, agentId: deps.agentId };
  const fail = (code: AgentErrorCode | MediaCommandErrorCode, message: string, status?: number) =>
    status === undefined
      ? { code, message: message.slice(0, 1024) }
      : { code, message: message.slice(0, 1024), status };
  const done = (fields: Omit<CommandResult, "commandId" | "deviceId" | "agentId" | "at">) => ({
    ...base,
    ...fields,
    at: new Date((deps.now ?? Date.now)()).toISOString(),
  });

  if (cmd.deadline <= now) {
    return done({
      state: "timed-out",
      error: fail("DEADLINE_PASSED", "the command's deadline passed before it started"),
    });
  }
  const schema = CommandParams[cmd.type as CommandType];
  const parsed = schema.safeParse(cmd.params ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    return done({
      state: "failed",
      error: fail("VALIDATION_FAILED", `params.${issue.path.join(".")}: ${issue.message}`),
    });
  }
  let result: Outcome;
  try {
    result = await run({ ...cmd, params: parsed.data as Record<string, unknown> }, deps, now);
  } catch (err) {
    const code =
      err instanceof CommandEncodeError ||
      err instanceof FirmwareUnavailableError ||
      err instanceof MediaUnavailableError ||
      err instanceof MediaCommandError
        ? err.code
        : "INTERNAL";
    return done({ state: "failed", error: fail(code, String((err as Error).message)) });
  }
  const { outcome } = result;
  switch (outcome.kind) {
    case "ok":
      return done({ state: "succeeded", result: result.parse(outcome.params) });
    case "device-error":
      return done({
        state: "failed",
        error: fail(
          "DEVICE_ERROR",
          outcome.description || `status ${outcome.status}`,
          outcome.status,
        ),
      });
    case "timeout":
      return done({
        state: "timed-out",
        error: fail("DEVICE_TIMEOUT", "the device did not answer in time"),
      });
    case "offline":
      return done({
        state: "device-offline",
        error: fail("DEVICE_OFFLINE", "the device is not online on this agent"),
      });
  }
}
