import type { CommandRequest } from "../../lib/contracts/commands.ts";
import { PictureSearchResult, type StoredPicture } from "../../lib/contracts/pictures.ts";
import { ApiError } from "../shared/errors.ts";
import type { DeviceItem } from "../shared/items.ts";
import type { CaptureView } from "./alarm-views.ts";
import type { CapturesService } from "./captures-service.ts";
import type { CommandsService } from "./commands-service.ts";
import { decodeCursor, encodeCursor } from "./cursor.ts";
import type { DevicesRepository } from "./ports.ts";

/**
 * Pictures stored on a device (ehome-2.0 §8 rows QUERYPICTURES and UPLOADPIC):
 *
 * - search: a `picture-search` command through the command path, waited for; the agent pages
 *   the device (§2.5) and returns at most `limit` pictures and where to resume, which becomes
 *   the opaque `nextCursor`;
 * - fetch: a capture whose command is `picture-fetch` (UPLOADPIC with the capture id as PicID)
 *   instead of MANUALSNAP: the same record, upload handling, states and presigned URL.
 *
 * Both refuse what the device record already rules out (unknown device, a channel beyond its
 * `channelCount`) before anything is written or sent.
 */

export interface PictureSearchQuery {
  channel: number;
  /** Device local time `YYYY-MM-DD HH:MM:SS`. */
  start: string;
  end: string;
  limit: number;
  cursor?: string | undefined;
}

export interface PicturePage {
  items: Array<StoredPicture & { channel: number }>;
  nextCursor?: string;
}

function invalid(where: "query" | "body", path: string, message: string): ApiError {
  return new ApiError("VALIDATION_FAILED", "the request is not valid", [
    { in: where, path, message },
  ]);
}

export function createPicturesService(
  config: { readonly waitSeconds: number },
  deps: { devices: DevicesRepository; commands: CommandsService; captures: CapturesService },
) {
  async function device(
    deviceId: string,
    channel: number,
    where: "query" | "body",
  ): Promise<DeviceItem> {
    const item = await deps.devices.get(deviceId);
    if (!item) throw new ApiError("DEVICE_NOT_FOUND", `no device ${deviceId}`);
    if (item.channelCount !== undefined && channel > item.channelCount) {
      throw invalid(
        where,
        "channel",
        `device ${deviceId} has ${item.channelCount} channel(s); channel ${channel} does not exist`,
      );
    }
    return item;
  }

  return {
    async search(deviceId: string, q: PictureSearchQuery): Promise<PicturePage> {
      if (q.end < q.start) throw invalid("query", "end", "must not be before start");
      const scope = `pictures:${deviceId}:${q.channel}:${q.start}:${q.end}`;
      const startIdx = q.cursor ? Number(decodeCursor(scope, q.cursor, ["i"]).i) : 0;
      if (!Number.isInteger(startIdx) || startIdx < 0) {
        throw invalid("query", "cursor", "not a cursor returned by this API");
      }
      await device(deviceId, q.channel, "query");
      // `picture-search` is sent only from here (not part of the public command union).
      const request = {
        type: "picture-search",
        params: {
          channel: q.channel,
          startTime: q.start,
          stopTime: q.end,
          startIdx,
          limit: q.limit,
        },
      } as unknown as CommandRequest;
      const { status, command } = await deps.commands.submit(deviceId, request, config.waitSeconds);
      if (status !== 200) {
        throw new ApiError("DEVICE_TIMEOUT", "the device did not finish the search in time", {
          command,
        });
      }
      const result = PictureSearchResult.safeParse(command.result);
      if (!result.success) {
        throw new ApiError("DEVICE_ERROR", "the agent's search result is not readable", {
          command,
        });
      }
      const { pictures, nextIdx } = result.data;
      return {
        items: pictures.map((p) => ({ channel: q.channel, ...p })),
        ...(nextIdx === undefined ? {} : { nextCursor: encodeCursor(scope, { i: nextIdx }) }),
      };
    },

    async fetch(
      deviceId: string,
      request: { channel: number; fileName: string },
      waitSeconds: number,
    ): Promise<{ status: 200 | 202; capture: CaptureView }> {
      await device(deviceId, request.channel, "body");
      return deps.captures.submit(deviceId, request, waitSeconds);
    },
  };
}

export type PicturesService = ReturnType<typeof createPicturesService>;
