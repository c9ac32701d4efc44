import { Hono } from "hono";
import { afterEach, describe, expect, it } from "vitest";
import {
  type LocalHttpApi,
  resolveApiToken,
  startHttpApi,
  withBearerAuth,
} from "../../../lib/local/http-api.ts";

const TOKEN = "test-token-123";

/** Stands in for the api function's Hono app: echoes what reached it. */
function echoApp(): Hono {
  const app = new Hono();
  app.all("/devices/*", async (c) =>
    c.json({ method: c.req.method, path: c.req.path, body: await c.req.text() }),
  );
  return app;
}

describe("local API bearer-token auth", () => {
  const authed = withBearerAuth(echoApp(), TOKEN);

  it("refuses a request without a token as 401 UNAUTHORIZED", async () => {
    const res = await authed.request("/devices/dev-1");

    expect(res.status).toBe(401);
    expect(res.headers.get("www-authenticate")).toMatch(/^Bearer/);
    expect(await res.json()).toEqual({ code: "UNAUTHORIZED", message: expect.any(String) });
  });

  it("refuses a wrong token and a non-bearer scheme", async () => {
    const wrong = await authed.request("/devices/dev-1", {
      headers: { authorization: "Bearer not-the-token" },
    });
    const basic = await authed.request("/devices/dev-1", {
      headers: { authorization: `Basic ${TOKEN}` },
    });

    expect(wrong.status).toBe(401);
    expect(await wrong.json()).toMatchObject({ code: "UNAUTHORIZED" });
    expect(basic.status).toBe(401);
  });

  it("refuses unknown routes without a token too (no route discovery)", async () => {
    const res = await authed.request("/no-such-route");

    expect(res.status).toBe(401);
  });

  it("passes an authorized request through unchanged", async () => {
    const res = await authed.request("/devices/dev-1/commands", {
      method: "POST",
      headers: { authorization: `bearer ${TOKEN}`, "content-type": "application/json" },
      body: '{"type":"reboot"}',
    });

    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      method: "POST",
      path: "/devices/dev-1/commands",
      body: '{"type":"reboot"}',
    });
  });

  it("leaves /healthz open, answering itself when the app has no such route", async () => {
    const res = await authed.request("/healthz");

    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: "ok" });
  });

  it("leaves /healthz open and lets the app answer it when the app has one", async () => {
    const app = echoApp();
    app.get("/healthz", (c) => c.json({ status: "ok", from: "app" }));

    const res = await withBearerAuth(app, TOKEN).request("/healthz");

    expect(await res.json()).toEqual({ status: "ok", from: "app" });
  });
});

describe("local API token", () => {
  it("uses EHOME_API_TOKEN when set", () => {
    expect(resolveApiToken(" s3cret ")).toEqual({ token: "s3cret", generated: false });
  });

  it("generates a fresh, unguessable token when unset", () => {
    const a = resolveApiToken(undefined);
    const b = resolveApiToken("");

    expect(a.generated).toBe(true);
    expect(b.generated).toBe(true);
    expect(a.token).not.toBe(b.token);
    expect(a.token.length).toBeGreaterThanOrEqual(32);
  });
});

describe("local API server", () => {
  let api: LocalHttpApi | undefined;
  afterEach(async () => {
    await api?.close();
    api = undefined;
  });

  it("serves the app on a loopback port behind the token", async () => {
    api = await startHttpApi({ port: 0, token: TOKEN }, { app: echoApp() });

    const denied = await fetch(`${api.url}/devices/dev-1`);
    const allowed = await fetch(`${api.url}/devices/dev-1`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    const health = await fetch(`${api.url}/healthz`);

    expect(denied.status).toBe(401);
    expect(await denied.json()).toMatchObject({ code: "UNAUTHORIZED" });
    expect(allowed.status).toBe(200);
    expect(await allowed.json()).toMatchObject({ path: "/devices/dev-1" });
    expect(health.status).toBe(200);
  });

  it("close() releases the port even with a keep-alive connection open", async () => {
    api = await startHttpApi({ port: 0, token: TOKEN }, { app: echoApp() });
    const res = await fetch(`${api.url}/healthz`, { headers: { connection: "keep-alive" } });
    await res.text();

    await api.close();
    await api.close();

    await expect(fetch(`${api.url}/healthz`)).rejects.toThrow();
  });
});
