import type { S3Client } from "@aws-sdk/client-s3";
import { ENV } from "../../lib/contracts/env.ts";
import { parseFirmwareTokenKey } from "../../lib/contracts/upgrades.ts";
import { ConfigError } from "../config.ts";
import type { DeviceHttpRoute } from "../http/device-http.ts";
import { createFirmwareRoute, type FirmwareRoute } from "../http/firmware.ts";
import { type Logger, silentLogger } from "../log.ts";
import { createUpgradeProgress, type UpgradeEventSink, type UpgradeProgress } from "./progress.ts";

/**
 * The agent's part of firmware upgrades (issue 6), composed once for `npm run agent` and
 * `npm start`: progress tracking (pass `progress` as `upgrades` to createEdgeAgent and route
 * `upgradeStatus` reports to it) and the `GET /fw/<token>` route for the device HTTP port.
 *
 *   const upgrades = createAgentUpgrades(upgradesConfigFromEnv(env, agentId), deps);
 *   createEdgeAgent(config, { ..., upgrades: upgrades.progress });
 *   createDeviceHttpServer(httpConfig, { health, routes: upgrades.routes });
 */

export interface AgentUpgradesConfig {
  agentId: string;
  /** `FIRMWARE_TOKEN_KEY`, parsed. Without it (or a bucket) `/fw/` is not mounted. */
  key: Uint8Array | undefined;
  /** `MEDIA_BUCKET`. */
  bucket: string | undefined;
  bytesIntervalMs?: number;
}

export interface AgentUpgradesDeps {
  s3: () => Pick<S3Client, "send">;
  /** Where progress goes (the upgrade-events queue, or a log line stand-alone). */
  sink: UpgradeEventSink;
  /** The agent's sessions; a getter because the agent is built after the route. */
  sessions: () => { get(deviceId: string): { host: string } | undefined } | undefined;
  log?: Logger;
  now?: () => number;
}

export interface AgentUpgrades {
  readonly progress: UpgradeProgress;
  readonly routes: readonly DeviceHttpRoute[];
  /** Why `/fw/` is not served, when it is not. */
  readonly disabled: string | undefined;
  /** Flat counters (`upgrades_bytes_events`, `firmware_served`, `firmware_refused_foreign`, …). */
  metrics(): Record<string, number>;
  close(): void;
}

/** Reads `FIRMWARE_TOKEN_KEY` and `MEDIA_BUCKET`; an invalid key is a start-up error. */
export function upgradesConfigFromEnv(
  env: Readonly<Record<string, string | undefined>>,
  agentId: string,
): AgentUpgradesConfig {
  const keyText = env[ENV.FIRMWARE_TOKEN_KEY]?.trim();
  let key: Uint8Array | undefined;
  if (keyText) {
    try {
      key = parseFirmwareTokenKey(keyText);
    } catch (err) {
      throw new ConfigError(ENV.FIRMWARE_TOKEN_KEY, (err as Error).message);
    }
  }
  const bucket = env[ENV.MEDIA_BUCKET]?.trim() || undefined;
  return { agentId, key, bucket };
}

export function createAgentUpgrades(
  config: AgentUpgradesConfig,
  deps: AgentUpgradesDeps,
): AgentUpgrades {
  const log = deps.log ?? silentLogger;
  const progress = createUpgradeProgress(
    {
      agentId: config.agentId,
      ...(config.bytesIntervalMs === undefined ? {} : { bytesIntervalMs: config.bytesIntervalMs }),
    },
    { sink: deps.sink, log, ...(deps.now ? { now: deps.now } : {}) },
  );
  const missing = [
    ...(config.key ? [] : [ENV.FIRMWARE_TOKEN_KEY]),
    ...(config.bucket ? [] : [ENV.MEDIA_BUCKET]),
  ];
  const disabled =
    missing.length > 0 ? `firmware downloads (/fw/) off: ${missing.join(", ")} not set` : undefined;
  const routes: FirmwareRoute[] =
    config.key && config.bucket
      ? [
          createFirmwareRoute(
            { key: config.key, bucket: config.bucket },
            {
              s3: deps.s3,
              sessions: { get: (id) => deps.sessions()?.get(id) },
              progress,
              log,
              ...(deps.now ? { now: deps.now } : {}),
            },
          ),
        ]
      : [];
  const snake = (k: string) => k.replace(/[A-Z]/g, (m) => `_${m.toLowerCase()}`);
  const flat = (prefix: string, counters: object, out: Record<string, number>) => {
    for (const [k, v] of Object.entries(counters)) {
      if (typeof v === "number")
        out[`${prefix}_${snake(k)}`] = (out[`${prefix}_${snake(k)}`] ?? 0) + v;
    }
  };
  return {
    progress,
    routes,
    disabled,
    metrics() {
      const out: Record<string, number> = {};
      flat("upgrades", progress.counters(), out);
      for (const r of routes) flat("firmware", r.counters(), out);
      return out;
    },
    close: () => progress.close(),
  };
}
