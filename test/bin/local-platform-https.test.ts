import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { request } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { usePlatform } from "../e2e/helpers/platform.ts";
import { makeSelfSignedCertificate } from "../helpers/self-signed.ts";

/**
 * `npm start` with `EHOME_HTTPS_CERT_FILE`/`EHOME_HTTPS_KEY_FILE` (issue 8 item 7): firmware URLs
 * become https, so the platform's agent serves the device routes over TLS too, with the same
 * health check, and stops that listener with the agent.
 */

// A self-signed P-256 certificate for 127.0.0.1, made before the platform starts.
const dir = mkdtempSync(join(tmpdir(), "ehome-platform-https-"));
const certFile = join(dir, "cert.pem");
const keyFile = join(dir, "key.pem");
makeSelfSignedCertificate(certFile, keyFile);
const ca = readFileSync(certFile, "utf8");
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const p = usePlatform({
  agentEnv: {
    EHOME_HTTPS_CERT_FILE: certFile,
    EHOME_HTTPS_KEY_FILE: keyFile,
    EHOME_HTTPS_PORT: "0",
    EHOME_HTTPS_PUBLIC_PORT: "8443",
  },
});

function getHttps(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: "127.0.0.1", port, path, ca, servername: "localhost", agent: false },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          body += chunk;
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end();
  });
}

describe("npm start with a device certificate", () => {
  it("serves GET /healthz over TLS on the agent's HTTPS port", async () => {
    const { platform, agentId } = p();
    const https = platform.deviceHttps;
    expect(https).toBeDefined();
    expect(platform.agents[0]?.deviceHttps).toBe(https);
    // Its own port, beside the plain HTTP one.
    expect(https!.address().port).not.toBe(platform.deviceHttp!.address().port);
    const res = await getHttps(https!.address().port, "/healthz");
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toMatchObject({ ok: true, agentId });
  });

  it("stops the HTTPS listener when the agent stops", async () => {
    const { platform } = p();
    const port = platform.deviceHttps!.address().port;
    await platform.agents[0]!.close();
    await expect(getHttps(port, "/healthz")).rejects.toThrow(/ECONNREFUSED/);
  });
});
