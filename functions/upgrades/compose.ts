import { S3Client } from "@aws-sdk/client-s3";
import type { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { ENV } from "../../lib/contracts/env.ts";
import { awsClientConfigFromEnv } from "../shared/clients.ts";
import type { Clock } from "../shared/clock.ts";
import { type Env, optionalEnv, requireEnv } from "../shared/env.ts";
import type { Logger } from "../shared/logger.ts";
import { type CampaignsService, createCampaignsService } from "./campaigns-service.ts";
import { cancelCampaign } from "./engine.ts";
import { createFirmwareService, type FirmwareService } from "./firmware-service.ts";
import { createS3FirmwareStorage } from "./firmware-storage.ts";
import {
  createUpgradesRepository,
  type UpgradesRepository,
  type UpgradeTableNames,
} from "./repository.ts";

/** Composition helpers of the upgrades feature, shared by the api function and the engine. */

export function upgradeTablesFromEnv(env: Env): UpgradeTableNames {
  const v = requireEnv(env, [
    ENV.FIRMWARE_TABLE,
    ENV.CAMPAIGNS_TABLE,
    ENV.EXECUTIONS_TABLE,
    ENV.DEVICES_TABLE,
  ]);
  return {
    firmware: v.FIRMWARE_TABLE,
    campaigns: v.CAMPAIGNS_TABLE,
    executions: v.EXECUTIONS_TABLE,
    devices: v.DEVICES_TABLE,
  };
}

/** S3 client; `AWS_ENDPOINT_URL_S3` (fauxqs locally) switches to path-style addressing. */
export function createS3ClientFromEnv(env: Env): S3Client {
  const aws = awsClientConfigFromEnv(env);
  const endpoint = optionalEnv(env, "AWS_ENDPOINT_URL_S3") ?? optionalEnv(env, "AWS_ENDPOINT_URL");
  return new S3Client({
    region: aws.region,
    ...(endpoint ? { endpoint, forcePathStyle: true } : {}),
    ...(aws.credentials ? { credentials: aws.credentials } : {}),
  });
}

/**
 * The API's firmware and campaign services, or `undefined` when the environment has no upgrade
 * tables (the routes are then absent).
 */
export function createApiUpgradesFromEnv(
  env: Env,
  deps: { documentClient: DynamoDBDocumentClient; clock: Clock; logger: Logger },
):
  | {
      firmware: FirmwareService;
      campaigns: CampaignsService;
      repository: UpgradesRepository;
      close(): void;
    }
  | undefined {
  if (!optionalEnv(env, ENV.CAMPAIGNS_TABLE)) return undefined;
  const tables = upgradeTablesFromEnv(env);
  const bucket = requireEnv(env, [ENV.MEDIA_BUCKET]).MEDIA_BUCKET;
  const repository = createUpgradesRepository(tables, { documentClient: deps.documentClient });
  const s3 = createS3ClientFromEnv(env);
  const logger = deps.logger.child({ feature: "upgrades" });
  const campaigns = createCampaignsService({
    repository,
    cancel: (id) => cancelCampaign({ repository, clock: deps.clock, logger }, id),
    clock: deps.clock,
    logger,
  });
  const firmware = createFirmwareService({
    repository,
    storage: createS3FirmwareStorage({ bucket }, { s3 }),
    usingFirmware: (id) => campaigns.usingFirmware(id),
    clock: deps.clock,
    logger,
  });
  return { firmware, campaigns, repository, close: () => s3.destroy() };
}
