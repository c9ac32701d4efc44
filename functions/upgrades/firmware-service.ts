import { createHash, randomUUID } from "node:crypto";
import { z } from "zod";
import { firmwareObjectKey } from "../../lib/contracts/storage.ts";
import type { Clock } from "../shared/clock.ts";
import { ApiError } from "../shared/errors.ts";
import type { Logger } from "../shared/logger.ts";
import type { FirmwareStorage } from "./firmware-storage.ts";
import type { FirmwareItem } from "./model.ts";
import type { UpgradesRepository } from "./repository.ts";

/**
 * The firmware store: a record plus a presigned PUT URL; `complete` streams the uploaded object
 * through SHA-256 (and MD5, which `UPDATE` carries) before the firmware becomes `available`. A
 * mismatch rejects the firmware and deletes the object. Verification runs inside the API call:
 * on AWS the api function's timeout (and API Gateway's 29 s) bounds it, which at in-region S3
 * throughput (≈ 50–100 MB/s from one Lambda) covers images up to roughly 1 GB; bigger images
 * would need an asynchronous verifier (docs/api.md).
 */

/** S3 accepts a single PUT of at most 5 GiB. */
export const MAX_FIRMWARE_BYTES = 5 * 1024 ** 3;
export const UPLOAD_URL_TTL_SECONDS = 15 * 60;

export const CreateFirmwareRequest = z
  .object({
    /** The `FirmwareVersion` devices report after the upgrade (REGISTER, ehome-2.0 §2.1). */
    version: z.string().min(1).max(64),
    /** Device models (`DevType`) it applies to; empty: any. */
    models: z.array(z.string().min(1).max(64)).max(100),
    sha256: z
      .string()
      .regex(/^[0-9a-fA-F]{64}$/, "64 hex digits")
      .transform((s) => s.toLowerCase()),
    size: z.number().int().min(1).max(MAX_FIRMWARE_BYTES),
  })
  .strict();
export type CreateFirmwareRequest = z.infer<typeof CreateFirmwareRequest>;

export interface FirmwareView {
  firmwareId: string;
  version: string;
  models: string[];
  sha256: string;
  md5?: string;
  size: number;
  state: FirmwareItem["state"];
  createdAt: string;
  updatedAt: string;
  verifiedAt?: string;
  rejection?: { code: string; message: string };
}

export function firmwareView(f: FirmwareItem): FirmwareView {
  const { s3Key: _key, ...view } = f;
  return view;
}

export interface FirmwareServiceDeps {
  repository: UpgradesRepository;
  storage: FirmwareStorage;
  /** Ids of unfinished campaigns over a firmware (campaigns service). */
  usingFirmware(firmwareId: string): Promise<string[]>;
  clock: Clock;
  logger: Logger;
  newId?: () => string;
}

export function createFirmwareService(deps: FirmwareServiceDeps) {
  const repo = deps.repository;
  const newId = deps.newId ?? randomUUID;
  const iso = () => new Date(deps.clock.now()).toISOString();

  async function load(firmwareId: string): Promise<FirmwareItem> {
    const item = await repo.getFirmware(firmwareId);
    if (!item) throw new ApiError("FIRMWARE_NOT_FOUND", `no firmware ${firmwareId}`);
    return item;
  }

  function rejectedError(item: FirmwareItem): ApiError {
    return new ApiError(
      "FIRMWARE_VERIFICATION_FAILED",
      item.rejection?.message ?? "the upload was rejected",
      { firmware: firmwareView(item) },
    );
  }

  async function reject(
    item: FirmwareItem,
    message: string,
    expected: Record<string, unknown>,
    actual: Record<string, unknown>,
  ): Promise<never> {
    await deps.storage.remove(item.s3Key);
    const now = iso();
    const rejected = await repo.transitionFirmware(item.firmwareId, "uploading", {
      state: "rejected",
      rejection: { code: "FIRMWARE_VERIFICATION_FAILED", message },
      updatedAt: now,
    });
    deps.logger.warn("firmware rejected", { firmwareId: item.firmwareId, message });
    if (!rejected) throw rejectedError((await repo.getFirmware(item.firmwareId)) ?? item);
    throw new ApiError("FIRMWARE_VERIFICATION_FAILED", message, {
      firmware: firmwareView(rejected),
      expected,
      actual,
    });
  }

  return {
    async create(request: CreateFirmwareRequest): Promise<{
      firmware: FirmwareView;
      upload: { method: "PUT"; url: string; headers: Record<string, string>; expiresAt: string };
    }> {
      const firmwareId = newId();
      const now = iso();
      const item: FirmwareItem = {
        firmwareId,
        version: request.version,
        models: request.models,
        sha256: request.sha256,
        size: request.size,
        state: "uploading",
        s3Key: firmwareObjectKey(firmwareId),
        createdAt: now,
        updatedAt: now,
      };
      const url = await deps.storage.presignPut(item.s3Key, item.size, UPLOAD_URL_TTL_SECONDS);
      await repo.createFirmware(item);
      deps.logger.info("firmware created", { firmwareId, version: item.version, size: item.size });
      return {
        firmware: firmwareView(item),
        upload: {
          method: "PUT",
          url,
          headers: { "content-length": String(item.size) },
          expiresAt: new Date(deps.clock.now() + UPLOAD_URL_TTL_SECONDS * 1000).toISOString(),
        },
      };
    },

    /** Verifies the upload; idempotent (an available firmware is returned as is). */
    async complete(firmwareId: string): Promise<FirmwareView> {
      const item = await load(firmwareId);
      if (item.state === "available") return firmwareView(item);
      if (item.state === "rejected") throw rejectedError(item);
      const size = await deps.storage.size(item.s3Key);
      if (size === undefined) {
        throw new ApiError(
          "FIRMWARE_NOT_UPLOADED",
          `nothing has been uploaded for firmware ${firmwareId} yet`,
        );
      }
      if (size !== item.size) {
        return reject(
          item,
          `uploaded object is ${size} bytes, declared ${item.size}`,
          { size: item.size },
          { size },
        );
      }
      const sha256 = createHash("sha256");
      const md5 = createHash("md5");
      let read = 0;
      for await (const chunk of await deps.storage.read(item.s3Key)) {
        sha256.update(chunk);
        md5.update(chunk);
        read += chunk.byteLength;
      }
      const actual = sha256.digest("hex");
      if (read !== item.size || actual !== item.sha256) {
        return reject(
          item,
          read !== item.size
            ? `read ${read} bytes, declared ${item.size}`
            : "SHA-256 of the uploaded object differs from the declared one",
          { size: item.size, sha256: item.sha256 },
          { size: read, sha256: actual },
        );
      }
      const now = iso();
      const available = await repo.transitionFirmware(firmwareId, "uploading", {
        state: "available",
        md5: md5.digest("hex"),
        verifiedAt: now,
        updatedAt: now,
      });
      const current = available ?? (await load(firmwareId));
      if (current.state === "rejected") throw rejectedError(current);
      deps.logger.info("firmware available", { firmwareId, version: item.version });
      return firmwareView(current);
    },

    async get(firmwareId: string): Promise<FirmwareView> {
      return firmwareView(await load(firmwareId));
    },

    async list(): Promise<FirmwareView[]> {
      return (await repo.listFirmware()).map(firmwareView);
    },

    async remove(firmwareId: string): Promise<void> {
      const item = await load(firmwareId);
      const campaignIds = await deps.usingFirmware(firmwareId);
      if (campaignIds.length > 0) {
        throw new ApiError(
          "FIRMWARE_IN_USE",
          `firmware ${firmwareId} is used by ${campaignIds.length} unfinished campaign(s)`,
          { campaignIds },
        );
      }
      await deps.storage.remove(item.s3Key);
      await repo.deleteFirmware(firmwareId);
      deps.logger.info("firmware deleted", { firmwareId });
    },
  };
}

export type FirmwareService = ReturnType<typeof createFirmwareService>;
