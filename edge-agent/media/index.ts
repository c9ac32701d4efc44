import type { S3Client } from "@aws-sdk/client-s3";
import { ENV } from "../../lib/contracts/env.ts";
import type { StreamEvent } from "../../lib/contracts/media.ts";
import { parseFirmwareTokenKey } from "../../lib/contracts/upgrades.ts";
import { type AgentConfig, ConfigError } from "../config.ts";
import { type Logger, silentLogger } from "../log.ts";
import type { EventSink, TraceRecorder } from "../ports.ts";
import { createMediaManager, type MediaDevice, type MediaManager } from "./manager.ts";
import type { MediaSend } from "./media-commands.ts";
import { createPortPool, type PortPool } from "./port-pool.ts";
import { RELAY_DEFAULTS } from "./relay.ts";
import { createTalkManager, type TalkManager } from "./talk.ts";
import { createTalkUpgradeHandler } from "./talk-http.ts";
import { createViewerHttpServer, type ViewerHttpServer } from "./viewer-http.ts";

/**
 * The agent's media module composed once for `npm run agent` and `npm start` (issue 4): the port
 * pool, the media manager (pass `() => media.manager` as `media` to createEdgeAgent) and the
 * viewer HTTP server on `EHOME_VIEWER_PORT`.
 *
 *   const media = createAgentMedia(mediaConfigFromEnv(process.env, config), deps);
 *   const agent = createEdgeAgent(config, { ..., media: () => media.manager });
 *   await agent.start(); await media.start();
 *   …
 *   await media.close();   // BYESTREAM for every stream, ports released (before agent.close())
 */

export type AgentMediaConfig = Pick<
  AgentConfig,
  | "agentId"
  | "host"
  | "publicHost"
  | "mediaPorts"
  | "viewerPort"
  | "streamIdleSeconds"
  | "streamAcceptSeconds"
  | "streamMaxViewers"
  | "maxViewers"
> & {
  /** `STREAM_TOKEN_KEY`, parsed. Without it no viewer server runs (streams have no viewers). */
  tokenKey: Uint8Array | undefined;
  /** `MEDIA_BUCKET`: downloads go there. Without it `download` fails. */
  bucket: string | undefined;
  /** `EHOME_MEDIA_GOP_CACHE_BYTES`: the relay's last-GOP cache per stream (relay.ts). */
  gopCacheBytes?: number;
  /** `EHOME_MEDIA_VIEWER_BUFFER_BYTES`: what one viewer may hold undrained (relay.ts). */
  viewerBufferBytes?: number;
};

/** Bounds of the relay's memory variables (bytes). */
const RELAY_BYTES_RANGE = { min: 16 * 1024, max: 256 * 1024 * 1024 } as const;

function bytesVar(
  env: Readonly<Record<string, string | undefined>>,
  name: string,
  fallback: number,
): number {
  const text = env[name]?.trim();
  if (!text) return fallback;
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < RELAY_BYTES_RANGE.min || n > RELAY_BYTES_RANGE.max) {
    throw new ConfigError(
      name,
      `expected a whole number of bytes from ${RELAY_BYTES_RANGE.min} to ${RELAY_BYTES_RANGE.max}, got ${JSON.stringify(text)}`,
    );
  }
  return n;
}

export interface AgentMediaDeps {
  /** The agent's command sender (a function: the agent is built after this module). */
  send: MediaSend;
  device(deviceId: string): MediaDevice | undefined;
  s3?: () => S3Client;
  events?: EventSink<StreamEvent>;
  trace?: TraceRecorder;
  log?: Logger;
}

export interface AgentMedia {
  readonly manager: MediaManager;
  /** Voice talk (issue 8): INVITETALK sessions, clients on `/talk/<id>` of the viewer port. */
  readonly talk: TalkManager;
  readonly pool: PortPool;
  /** Why viewers are not served, when they are not. */
  readonly disabled: string | undefined;
  /** Binds the viewer port (when served); resolves with it. */
  start(): Promise<{ viewerPort: number | undefined }>;
  /** Flat counters (`media_streams_started`, `media_viewers`, `media_pool_available`, …). */
  metrics(): Record<string, number>;
  /** Viewers cut, every stream stopped (BYESTREAM), every port released. Idempotent. */
  close(): Promise<void>;
}

/**
 * Reads `STREAM_TOKEN_KEY`, `MEDIA_BUCKET` and the relay's memory bounds
 * (`EHOME_MEDIA_GOP_CACHE_BYTES`, `EHOME_MEDIA_VIEWER_BUFFER_BYTES`); an invalid value is a
 * start-up error naming the variable.
 */
export function mediaConfigFromEnv(
  env: Readonly<Record<string, string | undefined>>,
  config: AgentConfig,
): AgentMediaConfig {
  const keyText = env[ENV.STREAM_TOKEN_KEY]?.trim();
  let tokenKey: Uint8Array | undefined;
  if (keyText) {
    try {
      tokenKey = parseFirmwareTokenKey(keyText);
    } catch (err) {
      throw new ConfigError(
        ENV.STREAM_TOKEN_KEY,
        (err as Error).message.replace("firmware", "stream"),
      );
    }
  }
  return {
    agentId: config.agentId,
    host: config.host,
    publicHost: config.publicHost,
    mediaPorts: config.mediaPorts,
    viewerPort: config.viewerPort,
    streamIdleSeconds: config.streamIdleSeconds,
    streamAcceptSeconds: config.streamAcceptSeconds,
    streamMaxViewers: config.streamMaxViewers,
    maxViewers: config.maxViewers,
    tokenKey,
    bucket: env[ENV.MEDIA_BUCKET]?.trim() || undefined,
    gopCacheBytes: bytesVar(env, ENV.EHOME_MEDIA_GOP_CACHE_BYTES, RELAY_DEFAULTS.maxGopBytes),
    viewerBufferBytes: bytesVar(
      env,
      ENV.EHOME_MEDIA_VIEWER_BUFFER_BYTES,
      RELAY_DEFAULTS.maxViewerBufferBytes,
    ),
  };
}

const snake = (k: string) => k.replace(/[A-Z]/g, (m) => `_${m.toLowerCase()}`);

export function createAgentMedia(config: AgentMediaConfig, deps: AgentMediaDeps): AgentMedia {
  const log = deps.log ?? silentLogger;
  const pool = createPortPool(
    {
      mediaPorts: config.mediaPorts,
      host: config.host,
      acceptTimeoutMs: config.streamAcceptSeconds * 1000,
    },
    { logger: log },
  );
  const manager = createMediaManager(
    {
      agentId: config.agentId,
      publicHost: config.publicHost,
      idleSeconds: config.streamIdleSeconds,
      acceptTimeoutMs: config.streamAcceptSeconds * 1000,
      maxViewersPerStream: config.streamMaxViewers,
      maxViewers: config.maxViewers,
      relay: {
        maxGopBytes: config.gopCacheBytes ?? RELAY_DEFAULTS.maxGopBytes,
        maxViewerBufferBytes: config.viewerBufferBytes ?? RELAY_DEFAULTS.maxViewerBufferBytes,
      },
      ...(config.bucket && deps.s3 ? { download: { bucket: config.bucket } } : {}),
    },
    {
      pool,
      send: deps.send,
      device: deps.device,
      ...(deps.s3 ? { s3: deps.s3 } : {}),
      ...(deps.events ? { events: deps.events } : {}),
      ...(deps.trace ? { trace: deps.trace } : {}),
      log,
    },
  );
  const talk = createTalkManager(
    {
      publicHost: config.publicHost,
      acceptTimeoutMs: config.streamAcceptSeconds * 1000,
      idleMs: config.streamIdleSeconds * 1000,
    },
    { pool, send: deps.send, device: deps.device },
  );
  const viewer: ViewerHttpServer | undefined = config.tokenKey
    ? createViewerHttpServer(
        { host: config.host, port: config.viewerPort, key: config.tokenKey },
        {
          media: manager,
          log,
          upgrade: createTalkUpgradeHandler({ key: config.tokenKey }, { talk }),
        },
      )
    : undefined;
  const disabled = viewer
    ? undefined
    : `stream viewers off: ${ENV.STREAM_TOKEN_KEY} not set (no /streams/ on the viewer port)`;
  let closing: Promise<void> | undefined;
  return {
    manager,
    talk,
    pool,
    disabled,
    async start() {
      if (!viewer) return { viewerPort: undefined };
      const { port } = await viewer.start();
      return { viewerPort: port };
    },
    metrics() {
      const out: Record<string, number> = {};
      for (const [k, v] of Object.entries(manager.counters())) out[`media_${snake(k)}`] = v;
      for (const [k, v] of Object.entries(pool.stats())) out[`media_pool_${snake(k)}`] = v;
      if (viewer) {
        for (const [k, v] of Object.entries(viewer.counters())) out[`viewer_${snake(k)}`] = v;
      }
      out.media_viewers = manager.viewers;
      out.media_streams = manager.streams().length;
      return out;
    },
    close() {
      closing ??= (async () => {
        await viewer?.close();
        await talk.close();
        await manager.close();
        await pool.close();
      })();
      return closing;
    },
  };
}
