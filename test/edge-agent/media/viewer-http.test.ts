import { randomBytes } from "node:crypto";
import { get, type IncomingMessage, request } from "node:http";
import type { Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { createFramer } from "../../../edge-agent/media/framer.ts";
import {
  createViewerHttpServer,
  type ViewerHttpServer,
} from "../../../edge-agent/media/viewer-http.ts";
import { mintStreamToken, streamUrl } from "../../../lib/contracts/media.ts";
import { type MediaRig, startMediaRig, until } from "./helpers/media-rig.ts";
import { hikPs } from "./helpers/ps-fixtures.ts";

// Issue 4 item 7: /streams/<id>.<ps|ts>?token= on the agent's viewer port.

const KEY = randomBytes(32);
const src = hikPs({ frames: 30, keyEvery: 10, frameBytes: 3000, seed: 11 });
const allButLast = src.ps.length - src.packs.at(-1)!.length;

let rig: MediaRig | undefined;
let server: ViewerHttpServer | undefined;

afterEach(async () => {
  await server?.close();
  server = undefined;
  await rig?.close();
  rig = undefined;
});

async function setUp(): Promise<{ r: MediaRig; port: number }> {
  rig = await startMediaRig();
  server = createViewerHttpServer({ host: "127.0.0.1", port: 0, key: KEY }, { media: rig.manager });
  const { port } = await server.start();
  return { r: rig, port };
}

function pushLive(socket: Socket, session: number): void {
  const framer = createFramer({ ssrc: session });
  const wire = Buffer.concat(src.packs.flatMap((p, i) => framer.frame(p, { timestamp: i * 3600 })));
  for (let i = 0; i < wire.length; i += 1000) socket.write(wire.subarray(i, i + 1000));
}

const token = (streamId: string, deviceId = "cam-media-1", ttl = 60) =>
  mintStreamToken(KEY, { streamId, deviceId, expiresAt: Math.floor(Date.now() / 1000) + ttl });

interface Answer {
  status: number;
  headers: IncomingMessage["headers"];
  body: () => Buffer;
  json: () => { code: string; message: string };
  ended: Promise<void>;
  res: IncomingMessage;
}

function fetch(url: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    get(url, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      const ended = new Promise<void>((r) => res.once("close", () => r()));
      const body = () => Buffer.concat(chunks);
      resolve({
        status: res.statusCode ?? 0,
        headers: res.headers,
        body,
        json: () => JSON.parse(body().toString()),
        ended,
        res,
      });
    }).on("error", reject);
  });
}

describe("viewer HTTP server", { timeout: 20_000 }, () => {
  it("serves the stream's PS (video/mp2p, chunked, CORS *) byte-identical, and TS (video/mp2t) in 188-byte packets", async () => {
    const { r, port } = await setUp();
    r.device.scripts.inviteStream = [{ push: (s, session) => pushLive(s, session) }];
    const started = await r.manager.startStream(r.device.deviceId, {
      streamId: "v-1",
      kind: "live",
      channel: 1,
      streamType: "main",
      transport: "tcp",
    });
    expect(started.kind).toBe("ok");
    const ps = await fetch(streamUrl("127.0.0.1", port, "v-1", "ps", token("v-1")));
    const ts = await fetch(streamUrl("127.0.0.1", port, "v-1", "ts", token("v-1")));
    expect(ps.status).toBe(200);
    expect(ps.headers["content-type"]).toBe("video/mp2p");
    expect(ps.headers["transfer-encoding"]).toBe("chunked");
    expect(ps.headers["access-control-allow-origin"]).toBe("*");
    expect(ts.headers["content-type"]).toBe("video/mp2t");
    await until(() => r.manager.viewers === 2);
    await until(() => ps.body().length >= allButLast && ts.body().length > 0);
    await r.manager.stopStream("v-1");
    await ps.ended;
    await ts.ended;
    expect(ps.body().equals(src.ps)).toBe(true);
    const tsBytes = ts.body();
    expect(tsBytes.length % 188).toBe(0);
    for (let i = 0; i < tsBytes.length; i += 188) expect(tsBytes[i]).toBe(0x47);
    await until(() => r.manager.viewers === 0);
    expect(server!.counters()).toMatchObject({ served: 2, refused: 0 });
  });

  it("refuses with JSON {code, message}: no token 401, bad signature 401, expired 403, another stream's token 403, unknown 404, ended 410, download 409", async () => {
    const { r, port } = await setUp();
    r.device.scripts.inviteStream = [{}];
    await r.manager.startStream(r.device.deviceId, {
      streamId: "v-2",
      kind: "live",
      channel: 1,
      transport: "tcp",
    });
    const base = `http://127.0.0.1:${port}/streams/v-2.ps`;
    const cases: Array<[string, number, string]> = [
      [base, 401, "STREAM_TOKEN_MISSING"],
      [`${base}?token=${token("v-2").slice(0, -2)}AA`, 401, "STREAM_TOKEN_INVALID"],
      [
        `${base}?token=${mintStreamToken(randomBytes(32), { streamId: "v-2", deviceId: "cam-media-1", expiresAt: 2e9 })}`,
        401,
        "STREAM_TOKEN_INVALID",
      ],
      [`${base}?token=${token("v-2", "cam-media-1", -5)}`, 403, "STREAM_TOKEN_EXPIRED"],
      [`${base}?token=${token("v-other")}`, 403, "STREAM_TOKEN_FOREIGN"],
      [streamUrl("127.0.0.1", port, "v-9", "ps", token("v-9")), 404, "STREAM_NOT_FOUND"],
      [
        streamUrl("127.0.0.1", port, "v-2", "ps", token("v-2", "cam-other")),
        404,
        "STREAM_NOT_FOUND",
      ],
      [`http://127.0.0.1:${port}/streams/v-2.mp4?token=x`, 404, "NOT_FOUND"],
    ];
    for (const [url, status, code] of cases) {
      const a = await fetch(url);
      expect([a.status, a.json().code], url).toEqual([status, code]);
      expect(a.headers["access-control-allow-origin"]).toBe("*");
      expect(a.headers["content-type"]).toBe("application/json");
    }
    await r.manager.stopStream("v-2");
    const ended = await fetch(streamUrl("127.0.0.1", port, "v-2", "ts", token("v-2")));
    expect([ended.status, ended.json().code]).toEqual([410, "STREAM_ENDED"]);

    // A CORS preflight is answered.
    const pre = await new Promise<IncomingMessage>((resolve, reject) => {
      const q = request(
        { host: "127.0.0.1", port, path: "/streams/v-2.ts", method: "OPTIONS" },
        resolve,
      );
      q.on("error", reject);
      q.end();
    });
    pre.resume();
    expect(pre.statusCode).toBe(204);
    expect(pre.headers["access-control-allow-origin"]).toBe("*");
  });

  it("a viewer that disconnects is detached (the idle clock starts again)", async () => {
    const { r, port } = await setUp();
    r.device.scripts.inviteStream = [{ push: (s, session) => pushLive(s, session) }];
    await r.manager.startStream(r.device.deviceId, {
      streamId: "v-3",
      kind: "live",
      channel: 1,
      transport: "tcp",
    });
    const a = await fetch(streamUrl("127.0.0.1", port, "v-3", "ps", token("v-3")));
    await until(() => r.manager.viewers === 1);
    a.res.destroy();
    await until(() => r.manager.viewers === 0);
    expect(r.manager.streams().map((s) => s.streamId)).toEqual(["v-3"]);
  });
});
