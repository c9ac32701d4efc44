import { randomBytes } from "node:crypto";
import { get } from "node:http";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../../edge-agent/config.ts";
import { createAgentMedia, mediaConfigFromEnv } from "../../../edge-agent/media/index.ts";
import { RELAY_DEFAULTS } from "../../../edge-agent/media/relay.ts";
import { ENV } from "../../../lib/contracts/env.ts";
import { mintStreamToken, streamUrl } from "../../../lib/contracts/media.ts";
import { freePortRange } from "./helpers/port-range.ts";

// The media module as `npm run agent` composes it (edge-agent/media/index.ts).

const config = loadConfig(
  { EHOME_HOST: "127.0.0.1", EHOME_VIEWER_PORT: "0" },
  { hostname: "t", pid: 1 },
);

describe("media module composition", () => {
  it("reads STREAM_TOKEN_KEY (an invalid one stops start-up, naming it) and MEDIA_BUCKET", () => {
    const key = randomBytes(32).toString("hex");
    const m = mediaConfigFromEnv(
      { [ENV.STREAM_TOKEN_KEY]: key, [ENV.MEDIA_BUCKET]: " media " },
      config,
    );
    expect(Buffer.from(m.tokenKey!).toString("hex")).toBe(key);
    expect(m.bucket).toBe("media");
    expect(m).toMatchObject({ viewerPort: 0, streamIdleSeconds: 30, streamAcceptSeconds: 10 });
    expect(mediaConfigFromEnv({}, config)).toMatchObject({
      tokenKey: undefined,
      bucket: undefined,
    });
    expect(() => mediaConfigFromEnv({ [ENV.STREAM_TOKEN_KEY]: "short" }, config)).toThrow(
      expect.objectContaining({ variable: ENV.STREAM_TOKEN_KEY, code: "CONFIG_INVALID" }),
    );
  });

  it("reads the relay's memory bounds (EHOME_MEDIA_GOP_CACHE_BYTES, EHOME_MEDIA_VIEWER_BUFFER_BYTES)", () => {
    expect(mediaConfigFromEnv({}, config)).toMatchObject({
      gopCacheBytes: RELAY_DEFAULTS.maxGopBytes,
      viewerBufferBytes: RELAY_DEFAULTS.maxViewerBufferBytes,
    });
    expect(
      mediaConfigFromEnv(
        {
          [ENV.EHOME_MEDIA_GOP_CACHE_BYTES]: "2097152",
          [ENV.EHOME_MEDIA_VIEWER_BUFFER_BYTES]: " 65536 ",
        },
        config,
      ),
    ).toMatchObject({ gopCacheBytes: 2_097_152, viewerBufferBytes: 65_536 });
    for (const bad of ["1k", "100", "-5", "1e12"]) {
      expect(() =>
        mediaConfigFromEnv({ [ENV.EHOME_MEDIA_VIEWER_BUFFER_BYTES]: bad }, config),
      ).toThrow(
        expect.objectContaining({
          variable: ENV.EHOME_MEDIA_VIEWER_BUFFER_BYTES,
          code: "CONFIG_INVALID",
        }),
      );
    }
  });

  it("serves viewers on the viewer port with a key, refuses unknown streams, and closes cleanly", async () => {
    const key = randomBytes(32);
    const media = createAgentMedia(
      {
        ...mediaConfigFromEnv({}, { ...config, mediaPorts: await freePortRange(2) }),
        tokenKey: key,
      },
      { send: async () => ({ kind: "offline" }), device: () => undefined },
    );
    expect(media.disabled).toBeUndefined();
    const { viewerPort } = await media.start();
    expect(viewerPort).toBeGreaterThan(0);
    const token = mintStreamToken(key, { streamId: "x", deviceId: "d", expiresAt: 2e9 });
    const status = await new Promise<number>((resolve, reject) => {
      get(streamUrl("127.0.0.1", viewerPort!, "x", "ts", token), (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      }).on("error", reject);
    });
    expect(status).toBe(404);
    expect(
      await media.manager.startStream("d", {
        streamId: "y",
        kind: "live",
        channel: 1,
        transport: "tcp",
      }),
    ).toEqual({ kind: "offline" });
    expect(media.metrics()).toMatchObject({
      media_viewers: 0,
      media_streams: 0,
      media_pool_available: 2,
      viewer_refused: 1,
    });
    await media.close();
    expect(media.pool.available()).toBe(media.pool.size);
  });

  it("without STREAM_TOKEN_KEY no viewer server runs, and it says why", async () => {
    const media = createAgentMedia(mediaConfigFromEnv({}, config), {
      send: async () => ({ kind: "offline" }),
      device: () => undefined,
    });
    expect(media.disabled).toContain(ENV.STREAM_TOKEN_KEY);
    expect(await media.start()).toEqual({ viewerPort: undefined });
    await media.close();
  });
});
