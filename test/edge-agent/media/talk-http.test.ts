import { randomBytes } from "node:crypto";
import { createServer, type Server } from "node:http";
import { connect } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import type { TalkManager } from "../../../edge-agent/media/talk.ts";
import { createTalkUpgradeHandler } from "../../../edge-agent/media/talk-http.ts";
import { mintStreamToken } from "../../../lib/contracts/media.ts";
import { mintTalkToken, talkUrl } from "../../../lib/contracts/talk.ts";

/** The talk WebSocket endpoint's token checks (issue 8 item 2): every refusal, then a 101. */

const KEY = randomBytes(32);
let server: Server | undefined;

afterEach(async () => {
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  server = undefined;
});

async function start() {
  const attached: Array<{ talkId: string; deviceId: string; codec: string }> = [];
  const talk = {
    clientSlot: (talkId: string, deviceId: string) =>
      talkId === "t1" && deviceId === "cam-1" ? "free" : "not-found",
    attachClient: (
      talkId: string,
      deviceId: string,
      codec: string,
      socket: { destroy(): void },
    ) => {
      attached.push({ talkId, deviceId, codec });
      socket.destroy();
      return "ok";
    },
  } as unknown as TalkManager;
  server = createServer();
  const handler = createTalkUpgradeHandler({ key: KEY }, { talk });
  server.on("upgrade", (req, socket) => {
    if (!handler(req, socket)) socket.destroy();
  });
  await new Promise<void>((r) => server!.listen(0, "127.0.0.1", () => r()));
  const port = (server.address() as { port: number }).port;
  return { port, attached };
}

/** The first line and body of the answer to an upgrade request for `url`. */
function upgrade(url: string): Promise<{ status: number; body: string }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const s = connect(Number(u.port), u.hostname);
    const chunks: Buffer[] = [];
    s.on("data", (c: Buffer) => chunks.push(c));
    s.on("error", reject);
    s.on("close", () => {
      const text = Buffer.concat(chunks).toString("latin1");
      resolve({
        status: Number(text.split(" ")[1]),
        body: text.slice(text.indexOf("\r\n\r\n") + 4),
      });
    });
    s.write(
      `GET ${u.pathname}${u.search} HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${randomBytes(16).toString("base64")}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    );
  });
}

describe("talk WebSocket endpoint", () => {
  it("refuses missing, forged, expired and foreign tokens, bad codecs and unknown talks; upgrades a good one", async () => {
    const { port, attached } = await start();
    const exp = Math.floor(Date.now() / 1000) + 60;
    const good = mintTalkToken(KEY, { talkId: "t1", deviceId: "cam-1", expiresAt: exp });
    const at = (token: string, id = "t1", codec = "pcm") =>
      talkUrl("127.0.0.1", port, id, token, codec as "pcm");
    const code = (r: { body: string }) => JSON.parse(r.body).code;

    const missing = await upgrade(`ws://127.0.0.1:${port}/talk/t1?codec=pcm`);
    expect([missing.status, code(missing)]).toEqual([401, "TALK_TOKEN_MISSING"]);
    const forged = mintTalkToken(randomBytes(32), {
      talkId: "t1",
      deviceId: "cam-1",
      expiresAt: exp,
    });
    const f = await upgrade(at(forged));
    expect([f.status, code(f)]).toEqual([401, "TALK_TOKEN_INVALID"]);
    const expired = mintTalkToken(KEY, { talkId: "t1", deviceId: "cam-1", expiresAt: 1 });
    const e = await upgrade(at(expired));
    expect([e.status, code(e)]).toEqual([403, "TALK_TOKEN_EXPIRED"]);
    const other = mintTalkToken(KEY, { talkId: "t2", deviceId: "cam-1", expiresAt: exp });
    const o = await upgrade(at(other));
    expect([o.status, code(o)]).toEqual([403, "TALK_TOKEN_FOREIGN"]);
    // A viewer token for a stream named like the talk does not open it.
    const viewer = mintStreamToken(KEY, { streamId: "t1", deviceId: "cam-1", expiresAt: exp });
    const v = await upgrade(at(viewer));
    expect([v.status, code(v)]).toEqual([403, "TALK_TOKEN_FOREIGN"]);
    const c = await upgrade(at(good, "t1", "mp3"));
    expect([c.status, code(c)]).toEqual([400, "TALK_CODEC_INVALID"]);
    const gone = mintTalkToken(KEY, { talkId: "t9", deviceId: "cam-1", expiresAt: exp });
    const n = await upgrade(at(gone, "t9"));
    expect([n.status, code(n)]).toEqual([404, "TALK_NOT_FOUND"]);
    expect(attached).toEqual([]);

    const ok = await upgrade(at(good, "t1", "g711"));
    expect(ok.status).toBe(101);
    expect(attached).toEqual([{ talkId: "t1", deviceId: "cam-1", codec: "g711" }]);
  });
});
