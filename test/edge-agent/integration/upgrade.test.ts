import { createHash, randomBytes } from "node:crypto";
import { CreateBucketCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createEdgeAgent, type EdgeAgent } from "../../../edge-agent/agent.ts";
import { loadConfig } from "../../../edge-agent/config.ts";
import {
  createDeviceHttpServer,
  type DeviceHttpServer,
} from "../../../edge-agent/http/device-http.ts";
import { createFirmwareRoute } from "../../../edge-agent/http/firmware.ts";
import { createUdpTransport } from "../../../edge-agent/signalling/server.ts";
import {
  createSimulator,
  type Simulator,
  type SimulatorOptions,
} from "../../../edge-agent/simulator/index.ts";
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

/**
 * Issue 6 item 5 end to end on the agent side: a firmware-update command → UPDATE with the agent's
 * /fw/ URL → the simulator downloads it for real from fauxqs S3 through the agent (resuming with
 * Range), checks size and MD5, goes offline to flash and re-registers with the new version; bytes
 * served and UPGRADESTATUS arrive as progress events.
 */

const key = randomBytes(32);
const bucket = "upgrade-it";
const image = randomBytes(200_000);
const imageMd5 = createHash("md5").update(image).digest("hex");
const firmwareId = "fw-it";
const NEW_VERSION = "V5.6.0 build 260101";

let fauxqs: LocalFauxqs;
let s3: S3Client;
beforeAll(async () => {
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
});

let agent: EdgeAgent | undefined;
let http: DeviceHttpServer | undefined;
let sim: Simulator | undefined;
let progress: UpgradeProgress | undefined;
afterEach(async () => {
  await sim?.close();
  await agent?.close();
  await http?.close();
  progress?.close();
  sim = agent = http = progress = undefined;
});

async function start(o: Partial<SimulatorOptions>) {
  const upgradeEvents: UpgradeProgressEvent[] = [];
  const events: DeviceEvent[] = [];
  const p = createUpgradeProgress(
    { agentId: "it", bytesIntervalMs: 50 },
    { sink: { emit: (e) => void upgradeEvents.push(UpgradeProgressEvent.parse(e)) } },
  );
  progress = p;
  // The HTTP port first: its bound port is what the agent announces in the URL.
  let sessions: EdgeAgent["sessions"] | undefined;
  const h = createDeviceHttpServer(
    { host: "127.0.0.1", port: 0 },
    {
      health: () => ({ ok: true }),
      routes: [
        createFirmwareRoute(
          { key, bucket },
          { s3: () => s3, sessions: { get: (id) => sessions?.get(id) }, progress: p },
        ),
      ],
    },
  );
  http = h;
  const { port: httpPort } = await h.start();
  const config = loadConfig({
    EHOME_HOST: "127.0.0.1",
    EHOME_PUBLIC_HOST: "127.0.0.1",
    EHOME_SIGNAL_PORT: "0",
    EHOME_HTTP_PORT: String(httpPort),
    EHOME_AGENT_ID: "it",
    EHOME_KEEPALIVE_SECONDS: "1",
    EHOME_LEARN_DEVICES: "false",
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
      seed: 11,
      upgradeDownload: true,
      upgradeStatus: true,
      upgradeMs: 100,
      ...o,
    },
    { onError: () => {} },
  );
  sim = s;
  await s.start();
  await s.waitFor("all-online", 5000);
  const device = s.devices[0]!;
  const update = (md5 = imageMd5) =>
    a.commands.execute({
      commandId: "fw-1",
      deviceId: device.id,
      type: "firmware-update",
      params: {
        token: mintFirmwareToken(key, {
          deviceId: device.id,
          campaignId: "camp-it",
          firmwareId,
          expiresAt: Math.floor(Date.now() / 1000) + 600,
          attempt: 1,
        }),
        fileSize: image.length,
        md5,
        version: NEW_VERSION,
      },
      deadline: Date.now() + 10_000,
    });
  return { sim: s, device, events, upgradeEvents, update };
}

const statuses = (events: UpgradeProgressEvent[]) =>
  events.flatMap((e) => (e.kind === "device-status" ? [e.status] : []));
const lastBytes = (events: UpgradeProgressEvent[]) =>
  events.filter((e) => e.kind === "bytes-served").at(-1);

describe("simulator firmware upgrade through the agent (ehome-2.0 §6, §8 UPDATE / UPGRADESTATUS)", () => {
  it("downloads with a resumed Range, flashes offline and re-registers with the new version", async () => {
    const {
      sim: s,
      device,
      events,
      upgradeEvents,
      update,
    } = await start({
      upgradeInterruptBytes: 70_000,
    });
    expect(CommandResult.parse(await update()).state).toBe("succeeded");
    await expect
      .poll(() => events.find((e) => e.type === "firmware-changed"), { timeout: 5000 })
      .toMatchObject({ deviceId: device.id });
    expect(device.firmwareVersion).toBe(NEW_VERSION);
    await s.waitFor("all-online", 5000);
    expect(s.stats()).toMatchObject({
      firmwareDownloads: 1,
      firmwareBytes: image.length,
      upgradeFailures: 0,
      firmwareChanges: 1,
    });
    // SUCCEEDED goes out after the re-REGISTER, under the campaign of the last firmware-update.
    await expect
      .poll(() => statuses(upgradeEvents), { timeout: 5000 })
      .toEqual(["DOWNLOADING", "UPGRADING", "SUCCEEDED"]);
    // Two requests (70 000 bytes, then the rest by Range) add up to the image exactly.
    expect(lastBytes(upgradeEvents)).toMatchObject({
      deviceId: device.id,
      campaignId: "camp-it",
      bytes: image.length,
      totalBytes: image.length,
      reachedEnd: true,
    });
  });

  it("bad-checksum: reports FAILED and stays on the old version", async () => {
    const { sim: s, device, upgradeEvents, update } = await start({ upgradeFault: "bad-checksum" });
    const before = device.firmwareVersion;
    expect(CommandResult.parse(await update()).state).toBe("succeeded");
    await expect
      .poll(() => statuses(upgradeEvents), { timeout: 5000 })
      .toEqual(["DOWNLOADING", "FAILED"]);
    expect(s.stats()).toMatchObject({ upgradeFailures: 1, firmwareDownloads: 0, reboots: 0 });
    expect(device.firmwareVersion).toBe(before);
    expect(device.state).toBe("online");
  });

  it("a wrong MD5 in UPDATE fails the same way (the device checks what it received)", async () => {
    const { sim: s, upgradeEvents, update } = await start({});
    await update("0".repeat(32));
    await expect.poll(() => statuses(upgradeEvents), { timeout: 5000 }).toContain("FAILED");
    expect(s.stats().upgradeFailures).toBe(1);
  });

  it("refuse: UPDATE is answered non-200 and nothing is downloaded", async () => {
    const { sim: s, upgradeEvents, update } = await start({ upgradeFault: "refuse" });
    const r = CommandResult.parse(await update());
    expect(r).toMatchObject({ state: "failed", error: { code: "DEVICE_ERROR", status: 401 } });
    expect(s.stats().firmwareBytes).toBe(0);
    expect(upgradeEvents).toEqual([]);
  });

  it("never-return: downloads, then goes silent for good", async () => {
    const {
      sim: s,
      device,
      upgradeEvents,
      update,
    } = await start({
      upgradeFault: "never-return",
    });
    await update();
    await expect.poll(() => device.state, { timeout: 5000 }).toBe("stopped");
    expect(s.stats().firmwareDownloads).toBe(1);
    expect(lastBytes(upgradeEvents)).toMatchObject({ bytes: image.length, reachedEnd: true });
    expect(device.firmwareVersion).not.toBe(NEW_VERSION);
  });
});
