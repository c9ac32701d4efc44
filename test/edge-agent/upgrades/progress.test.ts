import { randomBytes } from "node:crypto";
import { afterEach, describe, expect, it, vi } from "vitest";
import { COMMANDS } from "../../../edge-agent/signalling/catalogue.ts";
import { buildFields, childText } from "../../../edge-agent/signalling/codec/index.ts";
import {
  createUpgradeProgress,
  type UpgradeProgress,
} from "../../../edge-agent/upgrades/progress.ts";
import { CommandResult } from "../../../lib/contracts/commands.ts";
import {
  type FirmwareTokenClaims,
  mintFirmwareToken,
  UpgradeProgressEvent,
} from "../../../lib/contracts/upgrades.ts";
import { deviceRequestDatagram, registerDatagram, responseDatagram } from "../helpers/devices.ts";
import { type Harness, startHarness } from "../helpers/harness.ts";

const DEV = "10.1.1.1";
const key = randomBytes(32);
const claims: FirmwareTokenClaims = {
  deviceId: "cam-1",
  campaignId: "camp-7",
  firmwareId: "fw-9",
  expiresAt: Math.floor(Date.now() / 1000) + 3600,
  attempt: 3,
};

let h: Harness | undefined;
let progress: UpgradeProgress | undefined;
afterEach(async () => {
  progress?.close();
  await h?.close();
  h = undefined;
  vi.useRealTimers();
});

function tracker(options: { bytesIntervalMs?: number } = {}) {
  const events: UpgradeProgressEvent[] = [];
  progress = createUpgradeProgress(
    { agentId: "agent-test", ...options },
    { sink: { emit: (e) => void events.push(UpgradeProgressEvent.parse(e)) } },
  );
  return { progress, events };
}

const tick = () => new Promise((r) => setImmediate(r));
const statusParams = (status: string, percent?: string, description?: string) =>
  buildFields(COMMANDS.upgradeStatus.params, { deviceId: "cam-1", status, percent, description });

describe("firmware-update → UPDATE (ehome-2.0 §6, §8 row UPDATE)", () => {
  it("sends URL (the agent's /fw/ link), FileSize, MD5 and Version, and succeeds on 200", async () => {
    const { progress: p } = tracker();
    h = await startHarness(
      { EHOME_PUBLIC_HOST: "203.0.113.7", EHOME_HTTP_PORT: "8088" },
      { upgrades: p },
    );
    h.transport.deliver(registerDatagram({ deviceId: "cam-1", sequence: 1 }), DEV, 40001);
    const token = mintFirmwareToken(key, claims);
    const md5 = "0123456789abcdef0123456789abcdef";
    const run = h.agent.commands.execute({
      commandId: "c-fw",
      deviceId: "cam-1",
      type: "firmware-update",
      params: { token, fileSize: 1234, md5, version: "V5.6.0 build 260101" },
      deadline: Date.now() + 60_000,
    });
    await tick();
    const req = h.requestsTo(40001).at(-1)!;
    expect(req.command).toBe(COMMANDS.update.command);
    expect(req.header.method).toBe(COMMANDS.update.method);
    const f = COMMANDS.update.params;
    const url = childText(req.params, f.url)!;
    expect(url).toBe(`http://203.0.113.7:8088/fw/${token}`);
    expect(Buffer.byteLength(url)).toBeLessThanOrEqual(512);
    expect(childText(req.params, f.fileSize)).toBe("1234");
    expect(childText(req.params, f.md5)).toBe(md5);
    expect(childText(req.params, f.version)).toBe("V5.6.0 build 260101");
    h.transport.deliver(responseDatagram(req.header.sequence, req.command, 200), DEV, 40001);
    const r = CommandResult.parse(await run);
    expect(r).toMatchObject({
      state: "succeeded",
      result: { url, version: "V5.6.0 build 260101" },
    });
  });

  it("a device refusing UPDATE fails the command with its status", async () => {
    h = await startHarness();
    h.transport.deliver(registerDatagram({ deviceId: "cam-1", sequence: 1 }), DEV, 40001);
    const run = h.agent.commands.execute({
      commandId: "c-fw2",
      deviceId: "cam-1",
      type: "firmware-update",
      params: { token: mintFirmwareToken(key, claims), fileSize: 10, version: "V2" },
      deadline: Date.now() + 60_000,
    });
    await tick();
    const req = h.requestsTo(40001).at(-1)!;
    expect(childText(req.params, COMMANDS.update.params.md5)).toBeUndefined();
    h.transport.deliver(responseDatagram(req.header.sequence, req.command, 400), DEV, 40001);
    expect(await run).toMatchObject({
      state: "failed",
      error: { code: "DEVICE_ERROR", status: 400 },
    });
  });
});

describe("UPGRADESTATUS → device-status progress (ehome-2.0 §8 row UPGRADESTATUS)", () => {
  it("is tied to the campaign of the last firmware-update sent to the device", async () => {
    const { progress: p, events } = tracker();
    h = await startHarness({}, { reports: p, upgrades: p });
    h.transport.deliver(registerDatagram({ deviceId: "cam-1", sequence: 1 }), DEV, 40001);
    const run = h.agent.commands.execute({
      commandId: "c-fw3",
      deviceId: "cam-1",
      type: "firmware-update",
      params: { token: mintFirmwareToken(key, claims), fileSize: 10, version: "V2" },
      deadline: Date.now() + 60_000,
    });
    await tick();
    const req = h.requestsTo(40001).at(-1)!;
    h.transport.deliver(responseDatagram(req.header.sequence, req.command, 200), DEV, 40001);
    await run;
    h.transport.deliver(
      deviceRequestDatagram(
        COMMANDS.upgradeStatus.command,
        50,
        statusParams("DOWNLOADING", "40", "fetching"),
      ),
      DEV,
      40001,
    );
    h.transport.deliver(
      deviceRequestDatagram(COMMANDS.upgradeStatus.command, 51, statusParams("failed")),
      DEV,
      40001,
    );
    await tick();
    expect(events).toMatchObject([
      {
        kind: "device-status",
        deviceId: "cam-1",
        campaignId: "camp-7",
        attempt: 3,
        agentId: "agent-test",
        status: "DOWNLOADING",
        percent: 40,
        description: "fetching",
      },
      { kind: "device-status", status: "FAILED" },
    ]);
    expect(events[1]).not.toHaveProperty("percent");
  });

  it("is dropped (counted) for a device with no known campaign or an unknown Status", () => {
    const { progress: p, events } = tracker();
    const report = (deviceId: string, status: string) =>
      p.report({
        kind: "upgradeStatus",
        deviceId,
        sequence: 1,
        address: "10.0.0.1:1",
        params: statusParams(status, "10"),
        receivedAt: Date.now(),
      });
    report("cam-1", "UPGRADING");
    p.download(claims, 100).end(false);
    report("cam-1", "REBOOTING");
    report("cam-1", "UPGRADING");
    expect(p.counters()).toMatchObject({ statusDropped: 2, statusEvents: 1 });
    expect(events.filter((e) => e.kind === "device-status")).toMatchObject([
      { campaignId: "camp-7", status: "UPGRADING", percent: 10 },
    ]);
  });
});

describe("upgrade-failed alarm (AlarmType 18)", () => {
  it("fails the device's upgrade under its campaign; other alarm types and unknown devices are ignored", () => {
    const { progress: p, events } = tracker();
    const alarm = (deviceId: string, alarmType: string) =>
      p.report({
        kind: "alarm",
        deviceId,
        sequence: 9,
        address: "10.0.0.1:1",
        params: buildFields(COMMANDS.alarm.params, { deviceId, alarmType, alarmAction: "0" }),
        receivedAt: Date.now(),
      });
    alarm("cam-1", "18"); // no campaign known yet
    p.download(claims, 100).end(false);
    alarm("cam-1", "3");
    alarm("cam-1", "18");
    expect(events.filter((e) => e.kind === "device-status")).toMatchObject([
      { deviceId: "cam-1", campaignId: "camp-7", status: "FAILED" },
    ]);
  });
});

describe("bytes-served throttling", () => {
  it("emits at most one event per interval while bytes flow, and one when a response ends", () => {
    vi.useFakeTimers();
    const { progress: p, events } = tracker({ bytesIntervalMs: 2000 });
    const d = p.download(claims, 1000);
    d.add(100); // first bytes: reported at once
    d.add(100);
    d.add(100);
    expect(events.map((e) => e.kind === "bytes-served" && e.bytes)).toEqual([100]);
    vi.advanceTimersByTime(1999);
    expect(events).toHaveLength(1);
    vi.advanceTimersByTime(1);
    expect(events.map((e) => e.kind === "bytes-served" && e.bytes)).toEqual([100, 300]);
    d.add(700);
    d.end(true);
    d.end(true);
    expect(events.at(-1)).toMatchObject({ bytes: 1000, totalBytes: 1000, reachedEnd: true });
    expect(events).toHaveLength(3);
    vi.advanceTimersByTime(10_000);
    expect(events).toHaveLength(3);
    // Requests of the same (device, campaign, attempt) count the bytes of the image they cover:
    // a re-sent overlap counts once.
    const again = p.download(claims, 1000, 900);
    again.add(100);
    again.end(true);
    expect(events.at(-1)).toMatchObject({ bytes: 1000, reachedEnd: true });
  });

  it("counts distinct bytes over resumed, overlapping ranges", () => {
    const { progress: p, events } = tracker({ bytesIntervalMs: 0 });
    const first = p.download(claims, 1000, 0);
    first.add(600); // written to the socket; the device kept only 400 and resumes from there
    first.end(false);
    const second = p.download(claims, 1000, 400);
    second.add(600);
    second.end(true);
    expect(events.at(-1)).toMatchObject({ bytes: 1000, totalBytes: 1000, reachedEnd: true });
    const other = p.download({ ...claims, attempt: 4 }, 1000, 0);
    other.add(10);
    other.end(false);
    expect(events.at(-1)).toMatchObject({ attempt: 4, bytes: 10, reachedEnd: false });
  });
});
