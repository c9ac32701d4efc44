import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:https";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { makeSelfSignedCertificate } from "../helpers/self-signed.ts";

/**
 * `npm run agent` with `EHOME_HTTPS_*` (issue 8 item 7): the device routes are also served over
 * TLS with the configured certificate, and a certificate that cannot be loaded stops start-up
 * (exit 2) naming the variables.
 */

const require = createRequire(import.meta.url);
const tsx = require.resolve("tsx");
const main = new URL("../../edge-agent/main.ts", import.meta.url).pathname;

const dir = mkdtempSync(join(tmpdir(), "ehome-main-tls-"));
const certFile = join(dir, "cert.pem");
const keyFile = join(dir, "key.pem");
beforeAll(() => {
  makeSelfSignedCertificate(certFile, keyFile);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let child: ChildProcess | undefined;
afterEach(() => {
  if (child && child.exitCode === null) child.kill("SIGKILL");
  child = undefined;
});

function run(env: Record<string, string>) {
  const p = spawn(process.execPath, ["--import", tsx, main], {
    env: { PATH: process.env.PATH ?? "", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  child = p;
  let stderr = "";
  p.stdout!.resume();
  p.stderr!.on("data", (d) => (stderr += d));
  const exited = new Promise<number | null>((r) => p.on("exit", (code) => r(code)));
  return {
    exited,
    err: () => stderr,
    async waitFor(pred: () => boolean, ms = 15_000) {
      const start = Date.now();
      while (!pred()) {
        if (Date.now() - start > ms) throw new Error(`timed out; stderr: ${stderr}`);
        if (p.exitCode !== null) throw new Error(`exited ${p.exitCode}; stderr: ${stderr}`);
        await new Promise((r) => setTimeout(r, 25));
      }
    },
  };
}

const BASE = {
  EHOME_HOST: "127.0.0.1",
  EHOME_SIGNAL_PORT: "0",
  EHOME_ALARM_PORT: "0",
  EHOME_HTTP_PORT: "0",
  EHOME_LEARN_DEVICES: "false",
};

describe("npm run agent with EHOME_HTTPS_*", () => {
  it("serves the device routes over TLS with the configured certificate", async () => {
    const r = run({
      ...BASE,
      EHOME_HTTPS_CERT_FILE: certFile,
      EHOME_HTTPS_KEY_FILE: keyFile,
      EHOME_HTTPS_PORT: "0",
      EHOME_HTTPS_PUBLIC_PORT: "8443",
      EHOME_HTTPS_PUBLIC_HOST: "localhost",
    });
    await r.waitFor(() => r.err().includes("edge agent listening"));
    const line = r
      .err()
      .split("\n")
      .find((l) => l.includes("edge agent listening"))!;
    const listening = JSON.parse(line) as { https: string; downloads: string };
    expect(listening.downloads).toBe("https://localhost:8443");
    const port = Number(listening.https.split(":").at(-1));
    const health = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request(
        {
          host: "127.0.0.1",
          servername: "localhost",
          port,
          path: "/healthz",
          ca: readFileSync(certFile),
          agent: false,
        },
        (res) => {
          let body = "";
          res.on("data", (c: Buffer) => (body += c.toString()));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
        },
      );
      req.on("error", reject);
      req.end();
    });
    expect(health.status).toBe(200);
    expect(JSON.parse(health.body)).toMatchObject({ ok: true });
    child!.kill("SIGTERM");
    expect(await r.exited).toBe(0);
  });

  it("a certificate file that cannot be read or parsed stops start-up (exit 2)", async () => {
    const missing = run({
      ...BASE,
      EHOME_HTTPS_CERT_FILE: join(dir, "nope.pem"),
      EHOME_HTTPS_KEY_FILE: keyFile,
    });
    expect(await missing.exited).toBe(2);
    expect(missing.err()).toContain("EHOME_HTTPS_CERT_FILE");
    const garbage = join(dir, "garbage.pem");
    writeFileSync(garbage, "not a certificate");
    const bad = run({ ...BASE, EHOME_HTTPS_CERT_FILE: garbage, EHOME_HTTPS_KEY_FILE: keyFile });
    expect(await bad.exited).toBe(2);
    expect(bad.err()).toContain("EHOME_HTTPS_CERT_FILE");
  });
});
