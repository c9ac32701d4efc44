import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { TALK_PATH_PREFIX, TalkCodec, verifyTalkToken } from "../../lib/contracts/talk.ts";
import type { TalkManager } from "./talk.ts";
import { answerWebSocketUpgrade } from "./websocket.ts";

/**
 * The talk WebSocket endpoint (issue 8 item 2): `GET /talk/<talkId>?token=…&codec=pcm|g711` with
 * an upgrade, on the viewer HTTP server (`server.on("upgrade", handler)`). The token (lib/contracts
 * talk.ts) must be valid, unexpired and minted for this talk; the talk must be running on this
 * agent for the token's device. Refusals are plain HTTP answers with a JSON `{code, message}`
 * before any upgrade: 401 `TALK_TOKEN_MISSING`/`TALK_TOKEN_INVALID`, 403 `TALK_TOKEN_EXPIRED`/
 * `TALK_TOKEN_FOREIGN`, 400 `TALK_CODEC_INVALID`, 404 `TALK_NOT_FOUND`, 409 `TALK_CLIENT_BUSY`.
 */
export function createTalkUpgradeHandler(
  config: { key: Uint8Array },
  deps: { talk: TalkManager; now?: () => number },
): (req: IncomingMessage, socket: Duplex) => boolean {
  const refuse = (socket: Duplex, status: number, code: string, message: string) => {
    const body = JSON.stringify({ code, message });
    socket.end(
      `HTTP/1.1 ${status} ${status === 404 ? "Not Found" : "Refused"}\r\nContent-Type: application/json\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  };
  return (req, socket) => {
    const url = new URL(req.url ?? "/", "http://agent");
    if (!url.pathname.startsWith(TALK_PATH_PREFIX)) return false;
    const talkId = decodeURIComponent(url.pathname.slice(TALK_PATH_PREFIX.length));
    const token = url.searchParams.get("token");
    if (!token) {
      refuse(socket, 401, "TALK_TOKEN_MISSING", "the talk URL has no token");
      return true;
    }
    const v = verifyTalkToken(config.key, token, talkId, (deps.now ?? Date.now)());
    if (!v.ok) {
      if (v.error === "expired") refuse(socket, 403, "TALK_TOKEN_EXPIRED", "the token has expired");
      else if (v.error === "foreign") {
        refuse(socket, 403, "TALK_TOKEN_FOREIGN", "the token was minted for another talk");
      } else refuse(socket, 401, "TALK_TOKEN_INVALID", "the token is malformed or forged");
      return true;
    }
    const codec = TalkCodec.safeParse(url.searchParams.get("codec") ?? "pcm");
    if (!codec.success) {
      refuse(socket, 400, "TALK_CODEC_INVALID", "codec must be pcm or g711");
      return true;
    }
    const state = deps.talk.clientSlot(talkId, v.deviceId);
    if (state !== "free") {
      if (state === "not-found") refuse(socket, 404, "TALK_NOT_FOUND", "no such talk here");
      else refuse(socket, 409, "TALK_CLIENT_BUSY", "the talk already has a client");
      return true;
    }
    if (!answerWebSocketUpgrade(req, socket)) return true;
    deps.talk.attachClient(talkId, v.deviceId, codec.data, socket);
    return true;
  };
}
