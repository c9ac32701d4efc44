import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { request } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CreateBucketCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createEdgeAgent, type EdgeAgent } from "../../../edge-agent/agent.ts";
import { loadConfig } from "../../../edge-agent/config.ts";
import type { DeviceHttpServer } from "../../../edge-agent/http/device-http.ts";
import { createDeviceHttpsServer } from "../../../edge-agent/http/device-tls.ts";
import { createFirmwareRoute } from "../../../edge-agent/http/firmware.ts";
import { createUdpTransport } from "../../../edge-agent/signalling/server.ts";
import { createSimulator, type Simulator } from "../../../edge-agent/simulator/index.ts";
import {
  createUpgradeProgress,
  type UpgradeProgress,
} from "../../../edge-agent/upgrades/progress.ts";
import { CommandResult } from "../../../lib/contracts/commands.ts";
import { DeviceEvent } from "../../../lib/contracts/events.ts";
import { firmwareObjectKey } from "../../../lib/contracts/storage.ts";
import { mintFirmwareToken, UpgradeProgressEvent } from "../../../lib/contracts/upgrades.ts";
import { LOCAL_CREDENTIALS, LOCAL_REGION } from "../../../lib/local/clients.ts";
import { type LocalFauxqs, startFauxqs } from "../../../lib/local/fauxqs.ts";
import { makeSelfSignedCertificate } from "../../helpers/self-signed.ts";

/**
 * HTTPS for device downloads (issue 8 item 7): a self-signed certificate made here with openssl,
 * the agent configured with it (`EHOME_HTTPS_*`) so UPDATE carries an `https://localhost:<port>/fw/`
 * URL, the device routes served over TLS, and the simulator downloading the firmware with that
 * certificate as its CA, resuming with Range after a dropped connection. Without the CA the
 * device refuses the certificate and keeps its version.
 */

const key = randomBytes(32);
const bucket = "https-it";
const image = randomBytes(150_000);
const imageMd5 = createHash("md5").update(image).digest("hex");
const firmwareId = "fw-https";
const NEW_VERSION = "V5.7.0 build 261124";

const dir = mkdtempSync(join(tmpdir(), "ehome-https-"));
const certFile = join(dir, "cert.pem");
const keyFile = join(dir, "key.pem");

let fauxqs: LocalFauxqs;
let s3: S3Client;
let cert: string;
beforeAll(async () => {
  // A P-256 key (fast to make) and a certificate for localhost and 127.0.0.1, valid one day.
  makeSelfSignedCertificate(certFile, keyFile);
  cert = readFileSync(certFile, "utf8");
  fauxqs = await startFauxqs();
  s3 = new S3Client({
    region: LOCAL_REGION,
    endpoint: fauxqs.endpoint,
    credentials: LOCAL_CREDENTIALS,
    forcePathStyle: true,
  });
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  await s3.send(
    new PutObjectCommand({ Bucket: bucket, Key: firmwareObjectKey(firmwareId), Body: image }),
  );
});
afterAll(async () => {
  s3?.destroy();
  await fauxqs?.close();
  rmSync(dir, { recursive: true, force: true });
});

let agent: EdgeAgent | undefined;
let https: DeviceHttpServer | undefined;
let sim: Simulator | undefined;
let progress: UpgradeProgress | undefined;
afterEach(async () => {
  await sim?.close();
  await agent?.close();
  await https?.close();
  progress?.close();
  sim = agent = https = progress = undefined;
});

/** The agent with its device routes over TLS, and one simulated device trusting `ca` (or not). */
async function start(simTls: { upgradeCa?: string }) {
  const upgradeEvents: UpgradeProgressEvent[] = [];
  const events: DeviceEvent[] = [];
  const p = createUpgradeProgress(
    { agentId: "https-it", bytesIntervalMs: 50 },
    { sink: { emit: (e) => void upgradeEvents.push(UpgradeProgressEvent.parse(e)) } },
  );
  progress = p;
  let sessions: EdgeAgent["sessions"] | undefined;
  // Bound first (port 0): the port devices are told is the one it got.
  const listen = loadConfig({
    EHOME_HOST: "127.0.0.1",
    EHOME_HTTPS_CERT_FILE: certFile,
    EHOME_HTTPS_KEY_FILE: keyFile,
    EHOME_HTTPS_PORT: "0",
    EHOME_HTTPS_PUBLIC_PORT: "1",
  });
  const h = createDeviceHttpsServer(listen, {
    health: () => ({ ok: true }),
    routes: [
      createFirmwareRoute(
        { key, bucket },
        { s3: () => s3, sessions: { get: (id) => sessions?.get(id) }, progress: p },
      ),
    ],
  })!;
  https = h;
  const { port } = await h.start();
  const config = loadConfig({
    EHOME_HOST: "127.0.0.1",
    EHOME_PUBLIC_HOST: "127.0.0.1",
    EHOME_SIGNAL_PORT: "0",
    EHOME_AGENT_ID: "https-it",
    EHOME_KEEPALIVE_SECONDS: "1",
    EHOME_LEARN_DEVICES: "false",
    EHOME_HTTPS_CERT_FILE: certFile,
    EHOME_HTTPS_KEY_FILE: keyFile,
    EHOME_HTTPS_PORT: String(port),
    EHOME_HTTPS_PUBLIC_HOST: "localhost",
  });
  const a = createEdgeAgent(config, {
    transport: createUdpTransport({ host: config.host, port: config.signalPort }),
    events: { emit: (e) => void events.push(DeviceEvent.parse(e)) },
    reports: p,
    upgrades: p,
  });
  agent = a;
  sessions = a.sessions;
  await a.start();
  const s = await createSimulator(
    {
      agent: a.signalAddress(),
      devices: 1,
      seed: 5,
      upgradeDownload: true,
      upgradeStatus: true,
      upgradeMs: 100,
      upgradeInterruptBytes: 60_000,
      ...simTls,
    },
    { onError: () => {} },
  );
  sim = s;
  await s.start();
  await s.waitFor("all-online", 5000);
  const device = s.devices[0]!;
  const update = () =>
    a.commands.execute({
      commandId: "fw-https-1",
      deviceId: device.id,
      type: "firmware-update",
      params: {
        token: mintFirmwareToken(key, {
          deviceId: device.id,
          campaignId: "camp-https",
          firmwareId,
          expiresAt: Math.floor(Date.now() / 1000) + 600,
          attempt: 1,
        }),
        fileSize: image.length,
        md5: imageMd5,
        version: NEW_VERSION,
      },
      deadline: Date.now() + 10_000,
    });
  return { sim: s, device, events, upgradeEvents, update, port };
}

describe("firmware over HTTPS with a self-signed certificate", () => {
  it("UPDATE carries an https URL; the device downloads it over TLS with the test CA, resuming with Range, and re-registers with the new version", async () => {
    const {
      sim: s,
      device,
      events,
      upgradeEvents,
      update,
      port,
    } = await start({
      upgradeCa: cert,
    });
    const result = CommandResult.parse(await update());
    expect(result.state).toBe("succeeded");
    const url = (result.result as { url: string }).url;
    expect(url).toMatch(new RegExp(`^https://localhost:${port}/fw/[A-Za-z0-9._-]+$`));
    expect(url.length).toBeLessThanOrEqual(512);
    await expect
      .poll(() => events.find((e) => e.type === "firmware-changed"), { timeout: 5000 })
      .toMatchObject({ deviceId: device.id });
    expect(device.firmwareVersion).toBe(NEW_VERSION);
    expect(s.stats()).toMatchObject({
      firmwareDownloads: 1,
      firmwareBytes: image.length,
      upgradeFailures: 0,
    });
    // Two TLS requests (60 000 bytes, then the rest by Range) add up to the image.
    await expect
      .poll(() => upgradeEvents.filter((e) => e.kind === "bytes-served").at(-1), {
        timeout: 5000,
      })
      .toMatchObject({ bytes: image.length, totalBytes: image.length, reachedEnd: true });
  });

  it("a device that does not trust the certificate refuses the download and keeps its version", async () => {
    const { sim: s, device, upgradeEvents, update } = await start({});
    const before = device.firmwareVersion;
    expect(CommandResult.parse(await update()).state).toBe("succeeded");
    await expect
      .poll(() => upgradeEvents.flatMap((e) => (e.kind === "device-status" ? [e.status] : [])), {
        timeout: 5000,
      })
      .toEqual(["DOWNLOADING", "FAILED"]);
    expect(s.stats()).toMatchObject({ upgradeFailures: 1, firmwareBytes: 0 });
    expect(device.firmwareVersion).toBe(before);
  });

  it("the TLS port answers Range requests itself: 206 with the asked bytes", async () => {
    const { device, port } = await start({ upgradeCa: cert });
    const token = mintFirmwareToken(key, {
      deviceId: device.id,
      campaignId: "camp-https",
      firmwareId,
      expiresAt: Math.floor(Date.now() / 1000) + 600,
    });
    // The route serves only the device's own address: the simulator device is on 127.0.0.1.
    const res = await new Promise<{ status: number; range: string; body: Buffer }>(
      (resolve, reject) => {
        const req = request(
          `https://localhost:${port}/fw/${token}`,
          { ca: cert, headers: { range: "bytes=100-199" }, agent: false },
          (r) => {
            const chunks: Buffer[] = [];
            r.on("data", (c: Buffer) => chunks.push(c));
            r.on("end", () =>
              resolve({
                status: r.statusCode ?? 0,
                range: String(r.headers["content-range"]),
                body: Buffer.concat(chunks),
              }),
            );
          },
        );
        req.on("error", reject);
        req.end();
      },
    );
    expect(res.status).toBe(206);
    expect(res.range).toBe(`bytes 100-199/${image.length}`);
    expect(res.body.equals(image.subarray(100, 200))).toBe(true);
  });
});
