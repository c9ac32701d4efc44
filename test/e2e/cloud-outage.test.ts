import { mkdtempSync, rmSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { RaisedAlarm } from "../../edge-agent/simulator/index.ts";
import { SNAPSHOT_JPEG } from "../../edge-agent/simulator/media-files.ts";
import { recordAlarmDeliveries } from "./helpers/alarm-deliveries.ts";
import { eventually, usePlatform } from "./helpers/platform.ts";

/**
 * Cloud outage (issue 7 item 1), end to end on the platform `npm start` composes: SQS, S3 and
 * DynamoDB become unreachable for everything in the process while simulated devices keep
 * keepaliving, re-registering and raising alarms. Devices must stay online and be answered throughout; uploads are
 * refused with 503 + Retry-After; the alarm events beyond the sink's memory bound (30 here) spill
 * to disk; when the cloud returns, every alarm reaches the alarm-events queue at least once and in
 * each device's order, counted at the queue (what SQS acknowledged), and the registry catches up.
 */

const spillDir = mkdtempSync(join(tmpdir(), "ehome-e2e-spill-"));
// Registered first: runs after the platform (and its sinks) closed.
afterAll(() => rmSync(spillDir, { recursive: true, force: true }));

const DEVICES = 5;
const ALARMS = 100;

const p = usePlatform({
  agentEnv: {
    EHOME_KEEPALIVE_SECONDS: "1",
    EHOME_OFFLINE_AFTER_MISSED: "3",
    EHOME_SPILL_DIR: spillDir,
  },
  // A small memory bound so the outage spills; retries capped at 1 s so recovery is quick.
  cloud: { events: { lingerMs: 20, maxQueued: 30, retryBaseMs: 50, retryMaxMs: 1000 } },
});

// biome-ignore lint/suspicious/noExplicitAny: response JSON is navigated freely; assertions check it
type Json = any;

function postPicture(port: number, deviceId: string, picId: string) {
  return new Promise<{ status: number; retryAfter: string | undefined }>((resolve, reject) => {
    const req = request(
      {
        host: "127.0.0.1",
        port,
        method: "POST",
        path: `/pictures?DeviceID=${encodeURIComponent(deviceId)}&PicID=${picId}`,
      },
      (res) => {
        res.resume();
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            retryAfter: res.headers["retry-after"] as string | undefined,
          }),
        );
      },
    );
    req.on("error", reject);
    req.end(SNAPSHOT_JPEG);
  });
}

describe("cloud outage", () => {
  it(`devices stay online through an SQS+S3+DynamoDB outage; ${ALARMS} alarms raised during it all arrive, in order, after it`, async () => {
    const fx = p();
    const cloud = fx.platform.cloud!;
    // What SQS acknowledged on the alarm-events queue, in acknowledgement order.
    const delivered = recordAlarmDeliveries(fx, "e2e-record-alarms");

    const sim = await fx.simulator({ devices: DEVICES, idPrefix: "e2e-out-" });
    await sim.start();
    await sim.waitFor("all-online", 10_000);
    await eventually(async () => {
      const res = await fx.api<Json>("GET", `/devices/${sim.devices[0]!.id}`);
      return res.body.status === "online" ? true : undefined;
    });
    // One more device that drops off during the outage and comes back: its presence transitions
    // must reach the registry in order afterwards.
    const flap = await fx.simulator({ devices: 1, idPrefix: "e2e-out-flap-" });
    await flap.start();
    await flap.waitFor("all-online", 10_000);
    const flapId = flap.devices[0]!.id;
    await eventually(async () => {
      const res = await fx.api<Json>("GET", `/devices/${flapId}`);
      return res.body.status === "online" ? true : undefined;
    });
    const answeredBefore = sim.stats().keepalivesAnswered;

    // ---- the outage ------------------------------------------------------------------------
    const outage = fx.cloudOutage(["sqs", "s3", "dynamodb"]);
    const raised: { deviceId: string; alarm: RaisedAlarm }[] = [];
    for (let i = 0; i < ALARMS; i++) {
      const device = sim.devices[i % DEVICES]!;
      raised.push({
        deviceId: device.id,
        alarm: device.raiseAlarm({ action: "start", pictures: 0 }),
      });
      if (i % DEVICES === DEVICES - 1) await new Promise((r) => setTimeout(r, 10));
    }
    // A device never seen before cannot be checked against the devices table: its REGISTER is
    // left unanswered (not refused), and it gets in once DynamoDB is back.
    const late = await fx.simulator({
      devices: 1,
      idPrefix: "e2e-out-late-",
      registerRetryMs: 500,
    });
    await late.start();
    // An upload cannot be stored: refused, retryable, never acknowledged.
    const upload = await postPicture(
      fx.platform.deviceHttp!.address().port,
      sim.devices[0]!.id,
      "p-out",
    );
    expect(upload).toEqual({ status: 503, retryAfter: "5" });

    // Longer than the keepalive timeout (3 s): nobody goes offline, keepalives keep being answered,
    // except the device that falls silent (offline, keepalive-timeout) and then comes back.
    flap.devices[0]!.goSilent();
    await new Promise((r) => setTimeout(r, 4_000));
    flap.devices[0]!.resume();
    // Its next KEEPALIVE is answered 403 (the agent dropped it), so it registers again.
    await eventually(async () => (fx.agent.sessions.get(flapId) ? true : undefined), {
      timeoutMs: 10_000,
      intervalMs: 50,
    });
    const during = cloud.health();
    expect(during.cloudReachable).toBe(false);
    // /healthz shows it, and stays 200: an agent is not unhealthy because the cloud is.
    const healthz = await fetch(
      `http://127.0.0.1:${fx.platform.deviceHttp!.address().port}/healthz`,
    );
    expect(healthz.status).toBe(200);
    expect(((await healthz.json()) as Json).cloud).toMatchObject({
      cloudReachable: false,
      dropped: 0,
    });
    expect(during.spilled).toBeGreaterThan(0); // beyond the 30 held in memory
    expect(during.dropped).toBe(0);
    expect(fx.agent.metrics()).toMatchObject({ sessions_expired: 1, alarm_reports: ALARMS });
    expect(fx.agent.sessions.size).toBe(DEVICES + 1);
    expect(fx.agent.sessions.get(late.devices[0]!.id)).toBeUndefined();
    expect(sim.stats().states.online).toBe(DEVICES);
    expect(sim.stats().keepalivesAnswered).toBeGreaterThan(answeredBefore + DEVICES * 2);
    expect(delivered.all).toHaveLength(0);

    // ---- the cloud returns ---------------------------------------------------------------------
    const outageEnded = performance.now();
    outage.restore();
    await eventually(
      async () => {
        const seen = delivered.keys();
        return raised.every((r) => seen.has(`${r.deviceId}#${r.alarm.sequence}`))
          ? true
          : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 50 },
    );
    const flushedMs = Math.round(performance.now() - outageEnded);
    await late.waitFor("all-online", 10_000);
    // Each device's alarms, first deliveries only, in the order the device raised them.
    for (const device of sim.devices) {
      const order = raised.filter((r) => r.deviceId === device.id).map((r) => r.alarm.sequence);
      expect(delivered.firsts(device.id)).toEqual(order);
    }
    // The registry catches up: the late device is online there too.
    await eventually(
      async () => {
        const res = await fx.api<Json>("GET", `/devices/${late.devices[0]!.id}`);
        return res.body.status === "online" ? true : undefined;
      },
      { timeoutMs: 30_000 },
    );
    // The flapping device: online → offline (keepalive-timeout) → online, in that order.
    const transitions = await eventually(
      async () => {
        const res = await fx.api<Json>("GET", `/devices/${flapId}/presence?limit=100`);
        const items = [...(res.body.items ?? [])].reverse() as Json[];
        const seq = items
          .filter((i) => i.type === "online" || i.type === "offline")
          .map((i) => (i.reason ? `${i.type}:${i.reason}` : i.type));
        return seq.length >= 3 ? seq : undefined;
      },
      { timeoutMs: 30_000 },
    );
    expect(transitions.slice(-3)).toEqual(["online", "offline:keepalive-timeout", "online"]);
    expect((await fx.api<Json>("GET", `/devices/${flapId}`)).body.status).toBe("online");
    await eventually(async () => (cloud.health().buffered === 0 ? true : undefined), {
      timeoutMs: 10_000,
    });
    const after = cloud.health();
    expect(after).toMatchObject({ cloudReachable: true, buffered: 0, dropped: 0 });
    console.log(
      JSON.stringify({
        bench: "cloud-outage-e2e",
        alarms: ALARMS,
        delivered: delivered.all.length,
        spilled: after.spilled,
        retries: after.retries,
        flushedMs,
      }),
    );
    fx.backends.clients.sqs.middlewareStack.remove("e2e-record-alarms");
  }, 90_000);
});
