import type { MiddlewareHandler } from "hono";
import { describe, expect, it } from "vitest";
import { type ApiDeps, createApp } from "../../../functions/api/app.ts";
import type { DeviceItem } from "../../../functions/shared/items.ts";
import { ERROR_CODES } from "../../../lib/contracts/errors.ts";
import { silentLogger } from "../support.ts";

/**
 * App-level behaviour that does not depend on storage (routes, errors, OpenAPI, the auth hook),
 * with a stub repository. Storage behaviour is tested on the local backends in the route tests.
 */
const device: DeviceItem = { deviceId: "cam-1", status: "online", provisioned: true };
const unused = () => Promise.reject(new Error("not used by these tests"));
function app(extra: Partial<ApiDeps> = {}) {
  return createApp({
    devices: {
      get: async (id) => (id === device.deviceId ? device : undefined),
      list: async () => ({ items: [device] }),
      provision: unused,
      remove: unused,
      setTimeZone: unused,
    },
    presence: { list: unused },
    commands: { create: unused, get: unused, transition: unused },
    agents: { get: unused, list: unused },
    agentQueue: { send: unused },
    alarms: { get: unused, list: unused },
    captures: { create: unused, get: unused, update: unused },
    mediaUrls: { sign: unused },
    clock: { now: () => Date.now(), sleep: async () => {} },
    logger: silentLogger,
    ...extra,
  });
}

const json = (body: string, type = "application/json") => ({
  method: "PUT",
  body,
  headers: { "content-type": type },
});

describe("OpenAPI document", () => {
  it("lists every route the app serves, with its methods", async () => {
    const api = app();
    const response = await api.request("/openapi.json");
    expect(response.status).toBe(200);
    const doc = (await response.json()) as { openapi: string; paths: Record<string, object> };
    expect(doc.openapi).toBe("3.1.0");
    const documented = Object.entries(doc.paths).flatMap(([path, ops]) =>
      Object.keys(ops).map((method) => `${method.toUpperCase()} ${path}`),
    );
    const served = api.routes
      .filter((r) => r.method !== "ALL")
      .map((r) => `${r.method} ${r.path.replace(/:(\w+)/g, "{$1}")}`);
    expect([...new Set(documented)].sort()).toEqual([...new Set(served)].sort());
    expect(documented).toEqual(
      expect.arrayContaining([
        "GET /devices",
        "GET /devices/{deviceId}",
        "GET /devices/{deviceId}/presence",
        "PUT /devices/{deviceId}",
        "DELETE /devices/{deviceId}",
        "POST /devices/{deviceId}/commands",
        "GET /commands/{commandId}",
        "GET /alarms",
        "GET /alarms/{alarmId}",
        "GET /devices/{deviceId}/alarms",
        "POST /devices/{deviceId}/captures",
        "GET /captures/{captureId}",
        "GET /openapi.json",
        "GET /healthz",
      ]),
    );
  });

  it("documents every error code the routes answer with", async () => {
    const doc = (await (await app().request("/openapi.json")).json()) as {
      paths: Record<string, Record<string, { responses: Record<string, { description: string }> }>>;
    };
    const command = doc.paths["/devices/{deviceId}/commands"]!.post!.responses;
    expect(Object.keys(command).sort()).toEqual(
      ["200", "202", "401", "404", "409", "413", "415", "422", "400", "500", "502", "504"].sort(),
    );
    expect(command["409"]!.description).toContain("DEVICE_OFFLINE");
  });
});

describe("errors as JSON {code, message}", () => {
  it("unknown route → 404 NOT_FOUND", async () => {
    const response = await app().request("/nope");
    expect(response.status).toBe(404);
    expect(await response.json()).toEqual({ code: "NOT_FOUND", message: "no route GET /nope" });
  });

  it("malformed JSON → 400 BAD_REQUEST", async () => {
    const response = await app().request("/devices/cam-1", json("{oops"));
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ code: "BAD_REQUEST" });
  });

  it("a body over 64 KiB → 413 PAYLOAD_TOO_LARGE, before it is parsed", async () => {
    const response = await app().request("/devices/cam-1", json(`"${"x".repeat(64 * 1024)}"`));
    expect(response.status).toBe(413);
    expect(await response.json()).toMatchObject({ code: "PAYLOAD_TOO_LARGE" });
  });

  it("a body that is not JSON → 415 UNSUPPORTED_MEDIA_TYPE", async () => {
    const response = await app().request("/devices/cam-1", json("allowed=true", "text/plain"));
    expect(response.status).toBe(415);
    expect(await response.json()).toMatchObject({ code: "UNSUPPORTED_MEDIA_TYPE" });
  });

  it("an unexpected failure → 500 INTERNAL without internals", async () => {
    const response = await app().request("/devices/cam-1/presence");
    expect(response.status).toBe(500);
    expect(await response.json()).toEqual({
      code: "INTERNAL",
      message: ERROR_CODES.INTERNAL.message,
    });
  });
});

describe("the optional auth middleware", () => {
  const bearer: MiddlewareHandler = async (c, next) => {
    if (c.req.header("authorization") !== "Bearer t0ken") {
      return c.json({ code: "UNAUTHORIZED", message: "no" }, 401);
    }
    await next();
  };

  it("guards every route but /healthz", async () => {
    const api = app({ auth: bearer });
    expect((await api.request("/healthz")).status).toBe(200);
    expect((await api.request("/devices")).status).toBe(401);
    expect((await api.request("/openapi.json")).status).toBe(401);
    expect((await api.request("/nope")).status).toBe(401);
    const ok = await api.request("/devices/cam-1", { headers: { authorization: "Bearer t0ken" } });
    expect(ok.status).toBe(200);
  });
});
