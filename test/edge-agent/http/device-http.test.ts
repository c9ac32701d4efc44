import { afterEach, describe, expect, it } from "vitest";
import {
  createDeviceHttpServer,
  type DeviceHttpServer,
} from "../../../edge-agent/http/device-http.ts";

let server: DeviceHttpServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

describe("device-facing HTTP port", () => {
  it("answers GET /healthz with the health document, 503 when unhealthy", async () => {
    let ok = true;
    server = createDeviceHttpServer(
      { host: "127.0.0.1", port: 0 },
      { health: () => ({ ok, sessions: 3 }) },
    );
    const { port } = await server.start();
    const r = await fetch(`http://127.0.0.1:${port}/healthz`);
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ ok: true, sessions: 3 });
    ok = false;
    const down = await fetch(`http://127.0.0.1:${port}/healthz`);
    expect(down.status).toBe(503);
    await down.arrayBuffer();
  });

  it("answers unknown routes 404 with a code, and refuses oversized headers", async () => {
    server = createDeviceHttpServer(
      { host: "127.0.0.1", port: 0 },
      { health: () => ({ ok: true }) },
    );
    const { port } = await server.start();
    const r = await fetch(`http://127.0.0.1:${port}/nope`, { method: "POST", body: "x" });
    expect(r.status).toBe(404);
    expect(await r.json()).toMatchObject({ code: "NOT_FOUND" });
    const big = await fetch(`http://127.0.0.1:${port}/healthz`, {
      headers: { "x-junk": "a".repeat(16 * 1024) },
    });
    expect(big.status).toBe(431);
    await big.arrayBuffer();
  });

  it("dispatches mounted routes by method and exact path or prefix; a throwing route answers 500", async () => {
    server = createDeviceHttpServer(
      { host: "127.0.0.1", port: 0 },
      {
        health: () => ({ ok: true }),
        routes: [
          { method: "POST", path: "/pictures", handle: (_q, r) => void r.end("pic") },
          { method: "GET", path: "/fw/", handle: (_q, r, path) => void r.end(path) },
          {
            method: "GET",
            path: "/boom",
            handle: () => {
              throw new Error("boom");
            },
          },
        ],
      },
    );
    const { port } = await server.start();
    const base = `http://127.0.0.1:${port}`;
    expect(await (await fetch(`${base}/pictures`, { method: "POST", body: "x" })).text()).toBe(
      "pic",
    );
    expect(await (await fetch(`${base}/fw/abc?x=1`)).text()).toBe("/fw/abc");
    const wrongMethod = await fetch(`${base}/pictures`);
    expect(wrongMethod.status).toBe(404);
    await wrongMethod.arrayBuffer();
    const boom = await fetch(`${base}/boom`);
    expect(boom.status).toBe(500);
    expect(await boom.json()).toMatchObject({ code: "INTERNAL" });
  });

  it("close() is idempotent and frees the port", async () => {
    server = createDeviceHttpServer(
      { host: "127.0.0.1", port: 0 },
      { health: () => ({ ok: true }) },
    );
    const { port } = await server.start();
    await Promise.all([server.close(), server.close()]);
    await expect(fetch(`http://127.0.0.1:${port}/healthz`)).rejects.toThrow();
  });
});
