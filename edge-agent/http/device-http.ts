import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { createServer as createTlsServer } from "node:https";
import type { AddressInfo } from "node:net";
import type { Peer } from "../ports.ts";

/**
 * The device-facing HTTP port (`EHOME_HTTP_PORT`, announced as `PictureServerPort` in the REGISTER
 * reply, ehome-2.0 §2.1). Today it serves `GET /healthz` for the load balancer's and the container's
 * health checks; picture/video uploads and firmware downloads mount here in later modules. Every
 * size and time is bounded: devices and the internet reach this port.
 */

export interface DeviceHttpConfig {
  host: string;
  port: number;
  /** Whole-request deadline. Default 30 s. */
  requestTimeoutMs?: number;
  /** Header deadline (slowloris). Default 10 s. */
  headersTimeoutMs?: number;
  /**
   * Serve TLS with this PEM certificate (chain) and key: the same routes over `https://`, for
   * devices that download firmware and other files from https URLs (issue 8 item 7).
   */
  tls?: { cert: string | Buffer; key: string | Buffer };
  /** TLS handshake deadline. Default 10 s. */
  handshakeTimeoutMs?: number;
}

/**
 * A route mounted on the device port by a module (picture/video upload, firmware download). The
 * handler owns the request from then on: it must read or discard the body and always answer.
 */
export interface DeviceHttpRoute {
  method: string;
  /** Exact path (`/pictures`) or a prefix ending in `/` (`/fw/`). */
  path: string;
  handle(req: IncomingMessage, res: ServerResponse, path: string): void | Promise<void>;
}

export interface DeviceHttpDeps {
  /** Health document; `ok: false` answers 503 so the load balancer stops routing here. */
  health(): { ok: boolean } & Record<string, unknown>;
  routes?: readonly DeviceHttpRoute[];
}

export interface DeviceHttpServer {
  start(): Promise<Peer>;
  address(): Peer;
  /** Idempotent; closes idle and in-flight connections. */
  close(): Promise<void>;
}

const MAX_HEADER_BYTES = 8 * 1024;

export function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
    "cache-control": "no-store",
  });
  res.end(text);
}

export function createDeviceHttpServer(
  config: DeviceHttpConfig,
  deps: DeviceHttpDeps,
): DeviceHttpServer {
  const options = {
    maxHeaderSize: MAX_HEADER_BYTES,
    requestTimeout: config.requestTimeoutMs ?? 30_000,
    headersTimeout: config.headersTimeoutMs ?? 10_000,
  };
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? "/").split("?")[0];
    if (path === "/healthz" && (req.method === "GET" || req.method === "HEAD")) {
      const h = deps.health();
      json(res, h.ok ? 200 : 503, h);
      return;
    }
    const route = deps.routes?.find(
      (r) =>
        r.method === req.method &&
        (r.path.endsWith("/") ? path?.startsWith(r.path) : path === r.path),
    );
    if (route && path !== undefined) {
      Promise.resolve()
        .then(() => route.handle(req, res, path))
        .catch(() => {
          if (!res.headersSent) json(res, 500, { code: "INTERNAL", message: "internal error" });
          else res.destroy();
        });
      return;
    }
    // Bodies of unknown routes are not read; the connection closes after the answer.
    res.setHeader("connection", "close");
    json(res, 404, { code: "NOT_FOUND", message: "no such route" });
  };
  const server = config.tls
    ? createTlsServer(
        {
          ...options,
          cert: config.tls.cert,
          key: config.tls.key,
          minVersion: "TLSv1.2",
          handshakeTimeout: config.handshakeTimeoutMs ?? 10_000,
        },
        handler,
      )
    : createServer(options, handler);
  let closed: Promise<void> | undefined;
  return {
    start() {
      return new Promise<Peer>((resolve, reject) => {
        server.once("error", reject);
        server.listen(config.port, config.host, () => {
          server.off("error", reject);
          const a = server.address() as AddressInfo;
          resolve({ host: a.address, port: a.port });
        });
      });
    },
    address() {
      const a = server.address() as AddressInfo | null;
      return a ? { host: a.address, port: a.port } : { host: config.host, port: config.port };
    },
    close() {
      closed ??= new Promise<void>((resolve) => {
        if (!server.listening) return resolve();
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closed;
    },
  };
}
