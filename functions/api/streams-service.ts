import { randomUUID } from "node:crypto";
import type { z } from "@hono/zod-openapi";
import {
  FINAL_STREAM_STATES,
  mintStreamToken,
  type PlaybackAction,
  playbackSpeedValue,
  RecordSearchParams,
  RecordSearchResult,
  STREAM_TOKEN_TTL_SECONDS,
  type StreamControlRequest,
  type StreamCounters,
  type StreamRequest,
  StreamSpec,
  StreamStartResult,
  type StreamState,
  streamUrl,
} from "../../lib/contracts/media.ts";
import { PORTS } from "../../lib/contracts/ports.ts";
import { expiresAt, TABLES } from "../../lib/contracts/tables.ts";
import type { Clock } from "../shared/clock.ts";
import { ApiError, type ErrorCode } from "../shared/errors.ts";
import type { Logger } from "../shared/logger.ts";
import { isAgentLive } from "./agents.ts";
import type { CommandsService } from "./commands-service.ts";
import type { Download, RecordList, Stream, StreamStarted } from "./media-schemas.ts";
import type { MediaUrlSigner } from "./media-urls.ts";
import type { AgentsRepository, DevicesRepository } from "./ports.ts";
import type { StreamItem, StreamsRepository } from "./streams-repository.ts";
import type { CommandView } from "./views.ts";

/**
 * Media through the command path (lib/contracts/media.ts, ehome-2.0 §2.5–2.7, §8):
 *
 * - record search: a `record-search` command with `wait`; the agent pages QUERYRECORDEDFILES;
 * - streams: a stream record (`starting`) first, then `stream-start` with `wait`; on success the
 *   device's `Session` and pool port are stored and the answer carries viewer URLs on the agent
 *   (its `publicHost` and `viewerPort`) with a signed, expiring token; on failure the record is
 *   `failed` with the reason and the agent's code becomes the API error;
 * - the agent reports state and counters as `StreamEvent`s, applied by the media function;
 * - an open stream whose agent stopped heartbeating is marked `failed` (`AGENT_LOST`) by the
 *   first read that sees it (read repair, as for commands);
 * - control and stop are `stream-control` / `stream-stop` commands; DELETE marks the record
 *   `stopped` whatever the agent answers (it is idempotent, and a stream whose agent is gone is
 *   over anyway);
 * - a completed download is an object in the media bucket, served by a presigned GET URL.
 */

export type RecordListView = z.infer<typeof RecordList>;
export type StreamView = z.infer<typeof Stream>;
export type StreamStartedView = z.infer<typeof StreamStarted>;
export type DownloadView = z.infer<typeof Download>;

export interface MediaConfig {
  /** How long `GET /devices/{id}/records` waits for the agent's pages. */
  readonly recordSearchWaitSeconds: number;
  /** How long `POST /devices/{id}/streams` waits for the device to accept. */
  readonly streamStartWaitSeconds: number;
  readonly streamControlWaitSeconds: number;
  /** `DELETE /streams/{id}` waits this long for BYESTREAM, then marks the stream stopped anyway. */
  readonly streamStopWaitSeconds: number;
  /** Lifetime of the viewer URLs' token. */
  readonly tokenTtlSeconds: number;
  /** Stream records expire (DynamoDB TTL) this long after creation. */
  readonly streamTtlSeconds: number;
}

export const DEFAULT_MEDIA_CONFIG: MediaConfig = {
  recordSearchWaitSeconds: 20,
  streamStartWaitSeconds: 15,
  streamControlWaitSeconds: 10,
  streamStopWaitSeconds: 5,
  tokenTtlSeconds: STREAM_TOKEN_TTL_SECONDS,
  streamTtlSeconds: TABLES.streams.defaultTtlSeconds,
};

/** Content type a download is served with (the agent stores de-framed MPEG-PS). */
export const DOWNLOAD_CONTENT_TYPE = "video/mp2p";

export interface StreamsServiceDeps {
  streams: StreamsRepository;
  devices: DevicesRepository;
  agents: AgentsRepository;
  commands: CommandsService;
  /** Presigned GET URLs valid `DOWNLOAD_URL_TTL_SECONDS` (media.ts). */
  downloadUrls: MediaUrlSigner;
  /** The media bucket downloads land in (`ENV.MEDIA_BUCKET`). */
  bucket: string;
  /** `STREAM_TOKEN_KEY`, parsed. */
  tokenKey: Uint8Array;
  clock: Clock;
  logger: Logger;
  newStreamId?: () => string;
}

const FINAL = new Set<StreamState>(FINAL_STREAM_STATES);
const OPEN_STATES = ["starting", "active", "paused"] as const satisfies readonly StreamState[];
const ZERO_COUNTERS: StreamCounters = {
  viewers: 0,
  bytesIn: 0,
  bytesOut: 0,
  bitrateBps: 0,
  viewersDropped: 0,
};

export function newStreamId(): string {
  return `st-${randomUUID().replace(/-/g, "")}`;
}

/** `2026-11-24 08:00:00` + `+08:00` → `2026-11-24T08:00:00+08:00`. */
export function withOffset(local: string, timeZone: string): string {
  return `${local.replace(" ", "T")}${timeZone}`;
}

export function streamView(item: StreamItem): StreamView {
  const c = { ...ZERO_COUNTERS, ...item.counters };
  return {
    streamId: item.streamId,
    deviceId: item.deviceId,
    agentId: item.agentId,
    kind: item.kind,
    state: item.state,
    spec: {
      kind: item.spec.kind,
      channel: item.spec.channel,
      transport: item.spec.transport,
      ...(item.spec.streamType ? { streamType: item.spec.streamType } : {}),
      ...(item.spec.file ? { file: item.spec.file } : {}),
      ...(item.spec.start ? { start: item.spec.start } : {}),
      ...(item.spec.end ? { end: item.spec.end } : {}),
      ...(item.spec.direction ? { direction: item.spec.direction } : {}),
    },
    viewers: c.viewers,
    bytesIn: c.bytesIn,
    bytesOut: c.bytesOut,
    bitrateBps: c.bitrateBps,
    viewersDropped: c.viewersDropped,
    ...(c.packetsLost === undefined ? {} : { packetsLost: c.packetsLost }),
    ...(item.session ? { session: item.session } : {}),
    ...(item.sharedWith ? { sharedWith: item.sharedWith } : {}),
    ...(item.reason ? { reason: item.reason } : {}),
    createdAt: item.createdAt,
    updatedAt: item.updatedAt,
    tokenExpiresAt: new Date(item.tokenExpiresAt * 1000).toISOString(),
  };
}

/** The command's error code as the agent reported it (`details.command.error.code`). */
function agentCode(error: ApiError): string | undefined {
  const command = (error.details as { command?: CommandView } | undefined)?.command;
  return command?.error?.code;
}

/**
 * Agent codes of a failed media command (`CommandResult.error.code`, edge-agent/media/errors.ts)
 * that have an API error of their own; any other failure stays `DEVICE_ERROR` (502) with the
 * agent's message.
 */
const AGENT_CODE_ERRORS: Readonly<Record<string, ErrorCode>> = {
  MEDIA_PORTS_EXHAUSTED: "MEDIA_PORTS_EXHAUSTED",
  STREAM_ENDED: "STREAM_ENDED",
  STREAM_NOT_PLAYBACK: "STREAM_NOT_PLAYBACK",
  DEVICE_TIMEOUT: "DEVICE_TIMEOUT",
  DEVICE_OFFLINE: "DEVICE_OFFLINE",
};

/**
 * A media command's failure as an API error: the pool's exhaustion is the documented 503, the
 * agent's stream codes their 409s; everything else keeps the command mapping (502 device error,
 * 504 timeout, 409 offline).
 */
export function mediaError(error: ApiError, details: Record<string, unknown>): ApiError {
  const code = agentCode(error);
  const mapped = code === undefined ? undefined : AGENT_CODE_ERRORS[code];
  return new ApiError(mapped ?? error.code, error.message, details);
}

/** Which actions a stream kind takes (`force-iframe` live only, the rest playback only). */
export function actionAllowed(kind: StreamItem["kind"], action: PlaybackAction): boolean {
  return action === "force-iframe" ? kind === "live" : kind === "playback";
}

function specOf(streamId: string, request: StreamRequest): StreamSpec {
  switch (request.kind) {
    case "live":
      return StreamSpec.parse({
        streamId,
        kind: "live",
        channel: request.channel,
        streamType: request.streamType,
        transport: request.transport,
      });
    case "playback":
      return StreamSpec.parse({
        streamId,
        kind: "playback",
        channel: request.channel,
        ...(request.file === undefined ? {} : { file: request.file }),
        ...(request.start === undefined ? {} : { start: request.start }),
        ...(request.end === undefined ? {} : { end: request.end }),
        direction: request.direction,
        transport: request.transport,
      });
    case "download":
      return StreamSpec.parse({
        streamId,
        kind: "download",
        channel: request.channel,
        file: request.file,
        transport: request.transport,
      });
  }
}

export function createStreamsService(config: MediaConfig, deps: StreamsServiceDeps) {
  const newId = deps.newStreamId ?? newStreamId;
  const iso = () => new Date(deps.clock.now()).toISOString();

  async function fail(streamId: string, reason: { code: string; message: string }) {
    const now = iso();
    return (
      (await deps.streams.update(streamId, OPEN_STATES, {
        state: "failed",
        reason,
        updatedAt: now,
      })) ?? (await deps.streams.get(streamId))
    );
  }

  async function mustGet(streamId: string): Promise<StreamItem> {
    const item = await read(streamId);
    if (!item) throw new ApiError("STREAM_NOT_FOUND", `no stream ${streamId}`);
    return item;
  }

  /**
   * The stream with read repair: an open stream whose agent stopped heartbeating can never be
   * reported final by it, so the first read that sees this marks it `failed` (`AGENT_LOST`), by
   * a conditional write from the open states (a final event that wins the race is kept).
   */
  async function read(streamId: string): Promise<StreamItem | undefined> {
    const item = await deps.streams.get(streamId);
    if (!item || FINAL.has(item.state) || item.agentId === "") return item;
    const agent = await deps.agents.get(item.agentId);
    if (agent && isAgentLive(agent, deps.clock.now())) return item;
    deps.logger.info("stream's agent is gone; marked failed", {
      streamId,
      agentId: item.agentId,
    });
    return (
      (await fail(streamId, {
        code: "AGENT_LOST",
        message: `agent ${item.agentId}, which held the stream, stopped heartbeating`,
      })) ?? item
    );
  }

  /** Runs a media command with `wait`; a command still running when it ends is a timeout. */
  async function run(
    deviceId: string,
    type: "record-search" | "stream-start" | "stream-stop" | "stream-control",
    params: Record<string, unknown>,
    waitSeconds: number,
  ): Promise<CommandView> {
    const { status, command } = await deps.commands.submit(deviceId, { type, params }, waitSeconds);
    if (status === 202) {
      throw new ApiError("DEVICE_TIMEOUT", `no answer to ${type} within ${waitSeconds} s`, {
        command,
      });
    }
    return command;
  }

  return {
    async records(
      deviceId: string,
      query: { channel: number; start: string; end: string; limit: number },
    ): Promise<RecordListView> {
      const device = await deps.devices.get(deviceId);
      if (!device) throw new ApiError("DEVICE_NOT_FOUND", `no device ${deviceId}`);
      const params = RecordSearchParams.parse({
        channel: query.channel,
        start: query.start,
        end: query.end,
        maxFiles: query.limit,
      });
      const command = await run(
        deviceId,
        "record-search",
        params as Record<string, unknown>,
        config.recordSearchWaitSeconds,
      );
      const parsed = RecordSearchResult.safeParse(command.result);
      if (!parsed.success) {
        deps.logger.error("record-search result does not match the contract", {
          deviceId,
          commandId: command.commandId,
          issues: parsed.error.issues,
        });
        throw new ApiError("DEVICE_ERROR", "the agent returned an unreadable record list", {
          command,
        });
      }
      const tz = device.timeZone;
      return {
        deviceId,
        channel: query.channel,
        ...(tz ? { timeZone: tz } : {}),
        files: parsed.data.files.map((f) => ({
          fileName: f.fileName,
          start: f.start,
          end: f.end,
          ...(tz ? { startAt: withOffset(f.start, tz), endAt: withOffset(f.end, tz) } : {}),
          sizeBytes: f.sizeBytes,
        })),
        truncated: parsed.data.truncated,
      };
    },

    async start(deviceId: string, request: StreamRequest): Promise<StreamStartedView> {
      const device = await deps.devices.get(deviceId);
      if (!device) throw new ApiError("DEVICE_NOT_FOUND", `no device ${deviceId}`);
      const nowMs = deps.clock.now();
      const now = new Date(nowMs).toISOString();
      const streamId = newId();
      const spec = specOf(streamId, request);
      const tokenExpiresAt = Math.floor(nowMs / 1000) + config.tokenTtlSeconds;
      const created: StreamItem = {
        streamId,
        deviceId,
        agentId: device.agentId ?? "",
        kind: spec.kind,
        spec,
        state: "starting",
        counters: ZERO_COUNTERS,
        seq: -1,
        createdAt: now,
        updatedAt: now,
        tokenExpiresAt,
        expiresAt: expiresAt(nowMs, config.streamTtlSeconds),
      };
      await deps.streams.create(created);
      const log = deps.logger.child({ streamId, deviceId });

      let command: CommandView;
      try {
        command = await run(
          deviceId,
          "stream-start",
          spec as Record<string, unknown>,
          config.streamStartWaitSeconds,
        );
      } catch (error) {
        if (!(error instanceof ApiError)) throw error;
        const failed = await fail(streamId, {
          code: agentCode(error) ?? error.code,
          message: error.message,
        });
        if (error.code === "DEVICE_TIMEOUT") {
          // The device may still accept: tell the agent to let go of it (best effort).
          await deps.commands
            .submit(deviceId, { type: "stream-stop", params: { streamId } }, 0)
            .catch((e: unknown) => log.warn("stream-stop after a start timeout not sent", { e }));
        }
        throw mediaError(error, {
          ...(error.details as Record<string, unknown> | undefined),
          stream: streamView(failed ?? created),
        });
      }

      const result = StreamStartResult.safeParse(command.result);
      if (!result.success) {
        log.warn("stream-start result does not match the contract", {
          issues: result.error.issues,
        });
      }
      const agentId = command.agentId ?? created.agentId;
      const item =
        (await deps.streams.update(streamId, OPEN_STATES, {
          agentId,
          commandId: command.commandId,
          ...(result.success
            ? {
                session: result.data.session,
                port: result.data.port,
                ...(result.data.sharedWith ? { sharedWith: result.data.sharedWith } : {}),
              }
            : {}),
          updatedAt: iso(),
        })) ?? (await mustGet(streamId));

      if (spec.kind === "download") {
        return {
          streamId,
          kind: "download",
          state: item.state,
          downloadUrl: `/downloads/${streamId}`,
        };
      }
      const agent = await deps.agents.get(agentId);
      if (!agent || !isAgentLive(agent, deps.clock.now())) {
        await fail(streamId, {
          code: "AGENT_LOST",
          message: `agent ${agentId} stopped heartbeating`,
        });
        throw new ApiError("DEVICE_OFFLINE", `agent ${agentId}, which holds the stream, is gone`);
      }
      const token = mintStreamToken(deps.tokenKey, {
        streamId,
        deviceId,
        expiresAt: tokenExpiresAt,
      });
      const port = agent.viewerPort ?? PORTS.viewerHttpTcp;
      return {
        streamId,
        kind: spec.kind,
        state: item.state,
        urls: {
          ps: streamUrl(agent.publicHost, port, streamId, "ps", token),
          ts: streamUrl(agent.publicHost, port, streamId, "ts", token),
        },
        expiresAt: new Date(tokenExpiresAt * 1000).toISOString(),
      };
    },

    async get(streamId: string): Promise<StreamView> {
      return streamView(await mustGet(streamId));
    },

    async control(
      streamId: string,
      request: StreamControlRequest,
    ): Promise<{ streamId: string; action: PlaybackAction; stream: StreamView }> {
      const item = await mustGet(streamId);
      if (FINAL.has(item.state)) {
        throw new ApiError("STREAM_ENDED", `stream ${streamId} is ${item.state}`, {
          stream: streamView(item),
        });
      }
      if (!actionAllowed(item.kind, request.action)) {
        throw new ApiError(
          "STREAM_NOT_PLAYBACK",
          request.action === "force-iframe"
            ? `force-iframe applies to live streams; ${streamId} is ${item.kind}`
            : `${request.action} applies to playback streams; ${streamId} is ${item.kind}`,
        );
      }
      const speeds = request.action === "fast" || request.action === "slow";
      const params = {
        streamId,
        action: request.action,
        ...(speeds || request.action === "normal"
          ? { speed: playbackSpeedValue(request.action, request.speed) }
          : {}),
        ...(request.seekTime === undefined ? {} : { seekTime: request.seekTime }),
      };
      try {
        await run(item.deviceId, "stream-control", params, config.streamControlWaitSeconds);
      } catch (error) {
        if (!(error instanceof ApiError)) throw error;
        throw mediaError(error, { ...(error.details as Record<string, unknown> | undefined) });
      }
      return { streamId, action: request.action, stream: streamView(await mustGet(streamId)) };
    },

    /** Idempotent: a final stream is returned as it is. */
    async stop(streamId: string): Promise<StreamView> {
      const item = await mustGet(streamId);
      if (FINAL.has(item.state)) return streamView(item);
      let reason = { code: "STOPPED", message: "stopped by DELETE /streams/{streamId}" };
      try {
        await run(item.deviceId, "stream-stop", { streamId }, config.streamStopWaitSeconds);
      } catch (error) {
        if (!(error instanceof ApiError)) throw error;
        // Stopped all the same: the device or its agent is gone, or will let go on its own
        // (idle timeout); the reason says the agent did not confirm.
        deps.logger.info("stream-stop not confirmed", { streamId, code: error.code });
        reason = {
          code: "STOPPED",
          message: `stopped by DELETE /streams/{streamId}; the agent did not confirm (${error.code})`,
        };
      }
      const updated =
        (await deps.streams.update(streamId, OPEN_STATES, {
          state: "stopped",
          reason,
          updatedAt: iso(),
        })) ?? (await mustGet(streamId));
      return streamView(updated);
    },

    async download(streamId: string): Promise<DownloadView> {
      const item = await read(streamId);
      if (item?.kind !== "download") {
        throw new ApiError("DOWNLOAD_NOT_FOUND", `no download ${streamId}`);
      }
      const view: DownloadView = {
        streamId,
        deviceId: item.deviceId,
        ...(item.spec.file ? { file: item.spec.file } : {}),
        state: item.state,
        bytesReceived: item.counters?.bytesIn ?? 0,
        ...(item.object ? { object: item.object } : {}),
        ...(item.reason ? { reason: item.reason } : {}),
        createdAt: item.createdAt,
        updatedAt: item.updatedAt,
      };
      if (item.state !== "completed" || !item.object) return view;
      const signed = await deps.downloadUrls.sign({
        bucket: deps.bucket,
        key: item.object.key,
        contentType: DOWNLOAD_CONTENT_TYPE,
      });
      return { ...view, url: signed.url, urlExpiresAt: signed.expiresAt };
    },
  };
}

export type StreamsService = ReturnType<typeof createStreamsService>;
