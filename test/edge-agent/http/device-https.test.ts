import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  createDeviceHttpServer,
  type DeviceHttpServer,
} from "../../../edge-agent/http/device-http.ts";

/**
 * The device HTTP server with `tls` (issue 8 item 7): the same routes over TLS 1.2+, a client
 * that does not trust the certificate or speaks plain HTTP gets nothing, and a connection that
 * never finishes its handshake is cut after `handshakeTimeoutMs`.
 */

const dir = mkdtempSync(join(tmpdir(), "ehome-tls-"));
let cert = "";
let key = "";
beforeAll(() => {
  execFileSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-keyout",
      join(dir, "key.pem"),
      "-out",
      join(dir, "cert.pem"),
      "-days",
      "1",
      "-subj",
      "/CN=localhost",
      "-addext",
      "subjectAltName=DNS:localhost,IP:127.0.0.1",
    ],
    { stdio: "ignore" },
  );
  cert = readFileSync(join(dir, "cert.pem"), "utf8");
  key = readFileSync(join(dir, "key.pem"), "utf8");
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let server: DeviceHttpServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function start(handshakeTimeoutMs?: number) {
  server = createDeviceHttpServer(
    {
      host: "127.0.0.1",
      port: 0,
      tls: { cert, key },
      ...(handshakeTimeoutMs === undefined ? {} : { handshakeTimeoutMs }),
    },
    {
      health: () => ({ ok: true, agentId: "tls" }),
      routes: [
        {
          method: "GET",
          path: "/fw/",
          handle: (_req, res, path) => {
            res.writeHead(200, { "content-type": "text/plain" });
            res.end(path);
          },
        },
      ],
    },
  );
  return (await server.start()).port;
}

function get(port: number, path: string, ca?: string) {
  return new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = httpsRequest(
      {
        host: "127.0.0.1",
        servername: "localhost",
        port,
        path,
        agent: false,
        ...(ca ? { ca } : {}),
      },
      (res) => {
        let body = "";
        res.on("data", (c: Buffer) => {
          body += c.toString();
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on("error", reject);
    req.end();
  });
}

describe("device HTTP over TLS", () => {
  it("serves /healthz and the mounted routes to a client trusting the certificate", async () => {
    const port = await start();
    expect(await get(port, "/healthz", cert)).toMatchObject({ status: 200 });
    expect(await get(port, "/fw/abc", cert)).toEqual({ status: 200, body: "/fw/abc" });
  });

  it("a client without the CA refuses the certificate; plain HTTP on the TLS port gets no answer", async () => {
    const port = await start();
    await expect(get(port, "/healthz")).rejects.toThrow(/self[- ]signed|certificate/i);
    const plain = await new Promise<string>((resolve) => {
      const req = httpRequest({ host: "127.0.0.1", port, path: "/healthz", agent: false }, (res) =>
        resolve(`status ${res.statusCode}`),
      );
      req.on("error", (err) => resolve(`error ${(err as NodeJS.ErrnoException).code}`));
      req.end();
    });
    expect(plain).toMatch(/^error /);
  });

  it("cuts a connection that never completes the handshake, and close() is idempotent", async () => {
    const port = await start(200);
    const closedAfter = await new Promise<number>((resolve) => {
      const started = Date.now();
      const socket = connect(port, "127.0.0.1");
      socket.on("error", () => {});
      socket.on("close", () => resolve(Date.now() - started));
    });
    expect(closedAfter).toBeGreaterThanOrEqual(150);
    expect(closedAfter).toBeLessThan(5000);
    await server!.close();
    await server!.close();
  });
});
