import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { createAdaptorServer } from "@hono/node-server";
import { Hono } from "hono";
import { ERROR_CODES } from "../contracts/errors.ts";
import { type LocalLog, silentLog } from "./log.ts";

/**
 * The local stand-in for API Gateway: serves the api function's Hono app on a port, with a
 * bearer token in place of IAM/JWT authorization. Every route but `/healthz` needs
 * `Authorization: Bearer <token>`; anything else gets `401 {code: "UNAUTHORIZED", message}`.
 */

/** Anything with a fetch handler: a Hono app, or any other web-standard app. */
export interface FetchApp {
  fetch(request: Request, env?: unknown): Response | Promise<Response>;
}

export const HEALTHZ_PATH = "/healthz";
export const DEFAULT_API_PORT = 3000;

/** The token from `EHOME_API_TOKEN`, or a fresh random one when it is unset or empty. */
export function resolveApiToken(value: string | undefined): { token: string; generated: boolean } {
  if (value !== undefined && value.trim() !== "") return { token: value.trim(), generated: false };
  return { token: randomBytes(24).toString("base64url"), generated: true };
}

function digest(value: string): Buffer {
  return createHash("sha256").update(value).digest();
}

/** Wraps `app` behind bearer-token auth (in memory: tests call `.fetch` directly). */
export function withBearerAuth(app: FetchApp, token: string): Hono {
  if (token === "") throw new Error("the API token must not be empty");
  const expected = digest(token);
  const outer = new Hono();

  outer.get(HEALTHZ_PATH, async (c) => {
    const inner = await app.fetch(c.req.raw, c.env);
    if (inner.status !== 404) return inner;
    return c.json({ status: "ok" });
  });

  outer.use("*", async (c, next) => {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(c.req.header("authorization") ?? "");
    // Compare digests in constant time: the token never leaks through response timing.
    if (!match || !timingSafeEqual(digest(match[1]!), expected)) {
      c.header("WWW-Authenticate", 'Bearer realm="ehome"');
      return c.json(
        {
          code: "UNAUTHORIZED",
          message: match
            ? "the bearer token is not valid"
            : `${ERROR_CODES.UNAUTHORIZED.message}: send Authorization: Bearer <token>`,
        },
        401,
      );
    }
    await next();
  });

  outer.all("*", (c) => app.fetch(c.req.raw, c.env));
  return outer;
}

export interface HttpApiConfig {
  /** Default 3000 (`EHOME_API_PORT`); 0 picks a free port. */
  port?: number;
  /** Bind address. Default 127.0.0.1. */
  host?: string;
  token: string;
}

export interface HttpApiDeps {
  app: FetchApp;
  log?: LocalLog;
}

export interface LocalHttpApi {
  /** `http://<host>:<port>` as clients on this machine reach it. */
  readonly url: string;
  readonly port: number;
  /** Stops listening and drops open connections; idempotent. */
  close(): Promise<void>;
}

export async function startHttpApi(
  config: HttpApiConfig,
  deps: HttpApiDeps,
): Promise<LocalHttpApi> {
  const log = deps.log ?? silentLog;
  const host = config.host ?? "127.0.0.1";
  const authed = withBearerAuth(deps.app, config.token);
  const server = createAdaptorServer({ fetch: authed.fetch, hostname: host }) as Server;

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(config.port ?? DEFAULT_API_PORT, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const shownHost = host === "0.0.0.0" || host === "::" ? "127.0.0.1" : host;
  const url = `http://${shownHost.includes(":") ? `[${shownHost}]` : shownHost}:${port}`;
  log.info("local api listening", { url });

  let closing: Promise<void> | undefined;
  return {
    url,
    port,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
