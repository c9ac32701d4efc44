import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import {
  STREAM_PATH_PREFIX,
  type StreamFormat,
  verifyStreamToken,
} from "../../lib/contracts/media.ts";
import { type Logger, silentLogger } from "../log.ts";
import type { MediaErrorCode } from "./errors.ts";
import type { AttachResult } from "./manager.ts";

/**
 * The viewer HTTP server (issue 4 item 7) on `EHOME_VIEWER_PORT`:
 * `GET /streams/<streamId>.<ps|ts>?token=<token>` streams the stream's MPEG-PS (`video/mp2p`) or
 * MPEG-TS (`video/mp2t`, remuxed by the relay) with chunked encoding for as long as the viewer
 * stays. The token is a viewer token minted by the API (`mintStreamToken`, lib/contracts/media.ts)
 * for this stream id, checked with `STREAM_TOKEN_KEY`. CORS is open (`*`): browsers play the TS
 * with mpegts.js from any page, and the token is the authorisation. Refusals are JSON
 * `{code, message}`.
 */

export interface ViewerHttpConfig {
  host: string;
  /** `EHOME_VIEWER_PORT`; 0 picks a free port. */
  port: number;
  /** `STREAM_TOKEN_KEY`, parsed. */
  key: Uint8Array;
}

export interface ViewerHttpDeps {
  media: {
    attachViewer(
      streamId: string,
      deviceId: string,
      format: StreamFormat,
      sink: ServerResponse,
    ): AttachResult;
  };
  log?: Logger;
  now?: () => number;
  /** HTTP upgrades (issue 8: the talk WebSocket, talk-http.ts); true when handled. */
  upgrade?: (req: IncomingMessage, socket: Duplex) => boolean;
}

export interface ViewerHttpCounters {
  requests: number;
  served: number;
  refused: number;
}

export interface ViewerHttpServer {
  start(): Promise<{ host: string; port: number }>;
  address(): { host: string; port: number };
  counters(): ViewerHttpCounters;
  /** Stops listening and ends every viewer connection. Idempotent. */
  close(): Promise<void>;
}

const CONTENT_TYPE: Readonly<Record<StreamFormat, string>> = {
  ps: "video/mp2p",
  ts: "video/mp2t",
};

const PATH = /^\/streams\/([A-Za-z0-9_-]{1,64})\.(ps|ts)$/;

const REFUSAL: Readonly<
  Record<Exclude<AttachResult, "ok">, [number, MediaErrorCode | "STREAM_NOT_FOUND", string]>
> = {
  "not-found": [404, "STREAM_NOT_FOUND", "no such stream on this agent"],
  ended: [410, "STREAM_ENDED", "the stream has ended"],
  "not-viewable": [409, "STREAM_NOT_VIEWABLE", "a download has no viewer stream"],
  full: [503, "VIEWERS_EXHAUSTED", "too many viewers"],
};

function cors(res: ServerResponse): void {
  res.setHeader("Access-Control-Allow-Origin", "*");
}

function refuse(res: ServerResponse, status: number, code: string, message: string): void {
  const body = JSON.stringify({ code, message });
  cors(res);
  res.writeHead(status, {
    "Content-Type": "application/json",
    "Content-Length": Buffer.byteLength(body),
    "Cache-Control": "no-store",
  });
  res.end(body);
}

export function createViewerHttpServer(
  config: ViewerHttpConfig,
  deps: ViewerHttpDeps,
): ViewerHttpServer {
  const log = deps.log ?? silentLogger;
  const now = deps.now ?? Date.now;
  const c: ViewerHttpCounters = { requests: 0, served: 0, refused: 0 };
  const sockets = new Set<Socket>();
  let bound: { host: string; port: number } | undefined;
  let closing: Promise<void> | undefined;

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    c.requests++;
    const no = (status: number, code: string, message: string) => {
      c.refused++;
      refuse(res, status, code, message);
    };
    if (req.method === "OPTIONS") {
      cors(res);
      res.writeHead(204, {
        "Access-Control-Allow-Methods": "GET, OPTIONS",
        "Access-Control-Allow-Headers": "*",
        "Access-Control-Max-Age": "86400",
      });
      res.end();
      return;
    }
    const url = new URL(req.url ?? "/", "http://viewer");
    const m = PATH.exec(url.pathname);
    if (!m || !url.pathname.startsWith(STREAM_PATH_PREFIX)) {
      no(404, "NOT_FOUND", "no such route");
      return;
    }
    if (req.method !== "GET") {
      res.setHeader("Allow", "GET, OPTIONS");
      no(405, "METHOD_NOT_ALLOWED", "use GET");
      return;
    }
    const streamId = m[1]!;
    const format = m[2] as StreamFormat;
    const token = url.searchParams.get("token");
    if (!token) {
      no(401, "STREAM_TOKEN_MISSING", "the URL has no token");
      return;
    }
    const v = verifyStreamToken(config.key, token, now());
    if (!v.ok) {
      if (v.error === "expired") no(403, "STREAM_TOKEN_EXPIRED", "the token has expired");
      else no(401, "STREAM_TOKEN_INVALID", "the token is not valid");
      return;
    }
    if (v.claims.streamId !== streamId) {
      no(403, "STREAM_TOKEN_FOREIGN", "the token is for another stream");
      return;
    }
    // Headers first: the relay writes media from the first byte it has.
    cors(res);
    res.setHeader("Content-Type", CONTENT_TYPE[format]);
    res.setHeader("Cache-Control", "no-store");
    res.setHeader("X-Content-Type-Options", "nosniff");
    const attached = deps.media.attachViewer(streamId, v.claims.deviceId, format, res);
    if (attached !== "ok") {
      res.removeHeader("Content-Type");
      res.removeHeader("X-Content-Type-Options");
      const [status, code, message] = REFUSAL[attached];
      no(status, code, message);
      return;
    }
    c.served++;
    if (!res.headersSent) {
      res.writeHead(200);
      res.flushHeaders();
    }
    req.socket.setNoDelay(true);
  };

  const server: Server = createServer((req, res) => {
    try {
      handle(req, res);
    } catch (err) {
      log.error("viewer request failed", { err });
      if (!res.headersSent) refuse(res, 500, "INTERNAL", "internal error");
      else res.destroy();
    }
  });
  // A viewer connection lives as long as the stream: no request or idle timeouts.
  server.requestTimeout = 0;
  server.headersTimeout = 10_000;
  server.keepAliveTimeout = 5_000;
  server.on("connection", (s) => {
    sockets.add(s);
    s.once("close", () => sockets.delete(s));
  });
  // Upgrades other than the talk WebSocket are refused by closing the connection.
  server.on("upgrade", (req: IncomingMessage, socket: Duplex) => {
    if (!deps.upgrade?.(req, socket)) socket.destroy();
  });

  return {
    async start() {
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen({ port: config.port, host: config.host }, () => {
          server.off("error", reject);
          resolve();
        });
      });
      const a = server.address();
      bound = typeof a === "object" && a ? { host: a.address, port: a.port } : undefined;
      if (!bound) throw new Error("viewer server has no TCP address");
      return bound;
    },
    address() {
      if (!bound) throw new Error("viewer server not started");
      return bound;
    },
    counters: () => ({ ...c }),
    close() {
      closing ??= new Promise<void>((resolve) => {
        if (!server.listening) {
          resolve();
          return;
        }
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      });
      return closing;
    },
  };
}
