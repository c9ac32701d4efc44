import type { CommandRequest } from "../../lib/contracts/commands.ts";
import { expiresAt } from "../../lib/contracts/tables.ts";
import { type CaptureItem, type CaptureState, FINAL_CAPTURE_STATES } from "../alarms/items.ts";
import { newCaptureId } from "../alarms/model.ts";
import type { Clock } from "../shared/clock.ts";
import { ApiError } from "../shared/errors.ts";
import type { Logger } from "../shared/logger.ts";
import { type CaptureView, captureView } from "./alarm-views.ts";
import type { CapturesRepository } from "./captures-repository.ts";
import type { CommandsService } from "./commands-service.ts";
import type { MediaUrlSigner } from "./media-urls.ts";
import type { DevicesRepository } from "./ports.ts";

/**
 * Captures (ehome-2.0 §8 Capture row): a capture record with a platform-chosen PicID (= its id),
 * then a `capture` command through the command path (record, route to the device's agent, which
 * sends MANUALSNAP). The device's upload names the PicID; the alarms function moves the capture
 * to `ready`. Failures are final and carry a `reason`:
 *
 * - `device-offline`: the command could not be routed (409, as for commands);
 * - `device-error`: the MANUALSNAP command failed or got no answer (read from the command
 *   record, which is itself read-repaired to `timed-out`);
 * - `upload-timeout`: no upload by the capture's deadline.
 *
 * Like commands, failures are detected when the capture is read (read repair by conditional
 * write from `pending`), so a capture no one reads costs nothing, and the first reader decides.
 */

export interface CaptureConfig {
  /** A capture still without its picture this long after it was accepted is `upload-timeout`. */
  readonly uploadDeadlineSeconds: number;
  readonly ttlSeconds: number;
  readonly waitPollIntervalMs: number;
}

const FINAL = new Set<CaptureState>(FINAL_CAPTURE_STATES);

/** The EHOME command behind a capture (ehome-2.0 §8 rows Capture and UPLOADPIC). */
function deviceCommandName(item: CaptureItem): string {
  return item.fileName === undefined ? "MANUALSNAP" : "UPLOADPIC";
}

export function captureOutcome(view: CaptureView): { status: 200 | 202 } | ApiError {
  const details = { capture: view };
  switch (view.state) {
    case "ready":
      return { status: 200 };
    case "pending":
      return { status: 202 };
    case "device-offline":
      return new ApiError("DEVICE_OFFLINE", view.reason ?? "the device is offline", details);
    case "device-error":
      return new ApiError("DEVICE_ERROR", view.reason ?? "the device could not capture", details);
    case "upload-timeout":
      return new ApiError("DEVICE_TIMEOUT", view.reason ?? "no picture was uploaded", details);
  }
}

export function createCapturesService(
  config: CaptureConfig,
  deps: {
    captures: CapturesRepository;
    devices: DevicesRepository;
    commands: CommandsService;
    mediaUrls: MediaUrlSigner;
    clock: Clock;
    logger: Logger;
  },
) {
  const iso = () => new Date(deps.clock.now()).toISOString();

  async function fail(item: CaptureItem, state: CaptureState, reason: string) {
    const now = iso();
    return (
      (await deps.captures.update(item.captureId, ["pending"], {
        state,
        reason,
        completedAt: now,
        updatedAt: now,
      })) ??
      (await deps.captures.get(item.captureId)) ??
      item
    );
  }

  /** The capture with failures detected (read repair). */
  async function read(captureId: string): Promise<CaptureItem | undefined> {
    const item = await deps.captures.get(captureId);
    if (item?.state !== "pending") return item;
    if (item.commandId !== undefined) {
      const command = await deps.commands.get(item.commandId).catch((error: unknown) => {
        if (error instanceof ApiError && error.code === "COMMAND_NOT_FOUND") return undefined;
        throw error;
      });
      const name = deviceCommandName(item);
      if (command?.state === "failed") {
        return fail(item, "device-error", `${name} failed: ${command.error?.message ?? "error"}`);
      }
      if (command?.state === "timed-out") {
        return fail(item, "device-error", `the device did not answer ${name} in time`);
      }
      if (command?.state === "device-offline") {
        return fail(item, "device-offline", command.error?.message ?? "the device is offline");
      }
    }
    if (deps.clock.now() > item.deadline) {
      return fail(
        item,
        "upload-timeout",
        `no picture was uploaded within ${config.uploadDeadlineSeconds} s of the capture`,
      );
    }
    return item;
  }

  return {
    /**
     * A capture: MANUALSNAP takes a picture now; with `fileName` (`POST /devices/{id}/pictures/
     * fetch`) UPLOADPIC sends that stored file instead. Either way the upload names the PicID.
     */
    async submit(
      deviceId: string,
      request: { channel: number; resolution?: string; quality?: number; fileName?: string },
      waitSeconds: number,
    ): Promise<{ status: 200 | 202; capture: CaptureView }> {
      if (!(await deps.devices.get(deviceId))) {
        throw new ApiError("DEVICE_NOT_FOUND", `no device ${deviceId}`);
      }
      const nowMs = deps.clock.now();
      const now = new Date(nowMs).toISOString();
      const captureId = newCaptureId();
      let item: CaptureItem = {
        captureId,
        deviceId,
        picId: captureId,
        channel: request.channel,
        ...(request.resolution === undefined ? {} : { resolution: request.resolution }),
        ...(request.quality === undefined ? {} : { quality: request.quality }),
        ...(request.fileName === undefined ? {} : { fileName: request.fileName }),
        state: "pending",
        createdAt: now,
        updatedAt: now,
        deadline: nowMs + config.uploadDeadlineSeconds * 1000,
        expiresAt: expiresAt(nowMs, config.ttlSeconds),
      };
      await deps.captures.create(item);
      const command =
        request.fileName === undefined
          ? {
              type: "capture",
              params: {
                channel: request.channel,
                picId: captureId,
                ...(request.resolution === undefined ? {} : { resolution: request.resolution }),
                ...(request.quality === undefined ? {} : { quality: request.quality }),
              },
            }
          : {
              type: "picture-fetch",
              params: { channel: request.channel, fileName: request.fileName, picId: captureId },
            };
      try {
        // The commands service takes the public command union; `capture` and `picture-fetch`
        // are sent only from here (they need the capture record), so they are not part of it.
        const submitted = await deps.commands.submit(
          deviceId,
          command as unknown as CommandRequest,
          0,
        );
        item =
          (await deps.captures.update(captureId, ["pending"], {
            commandId: submitted.command.commandId,
            updatedAt: iso(),
          })) ?? item;
      } catch (error) {
        if (!(error instanceof ApiError)) throw error;
        const commandId = (error.details as { command?: { commandId?: string } } | undefined)
          ?.command?.commandId;
        const state = error.code === "DEVICE_OFFLINE" ? "device-offline" : "device-error";
        await deps.captures.update(captureId, ["pending"], {
          state,
          reason: error.message,
          ...(commandId ? { commandId } : {}),
          completedAt: iso(),
          updatedAt: iso(),
        });
        const stored = (await deps.captures.get(captureId)) ?? item;
        const view = await captureView(stored, deps.mediaUrls);
        throw new ApiError(error.code, error.message, { capture: view });
      }

      if (waitSeconds > 0) {
        const until = deps.clock.now() + waitSeconds * 1000;
        while (!FINAL.has(item.state)) {
          const left = until - deps.clock.now();
          if (left <= 0) break;
          await deps.clock.sleep(Math.min(config.waitPollIntervalMs, left));
          item = (await read(captureId)) ?? item;
        }
      }
      const view = await captureView(item, deps.mediaUrls);
      if (waitSeconds === 0) return { status: 202, capture: view };
      const outcome = captureOutcome(view);
      if (outcome instanceof ApiError) throw outcome;
      return { status: outcome.status, capture: view };
    },

    async get(captureId: string): Promise<CaptureView> {
      const item = await read(captureId);
      if (!item) throw new ApiError("CAPTURE_NOT_FOUND", `no capture ${captureId}`);
      return captureView(item, deps.mediaUrls);
    },
  };
}

export type CapturesService = ReturnType<typeof createCapturesService>;
