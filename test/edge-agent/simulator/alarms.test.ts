import { GetObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createEdgeAgent, type EdgeAgent } from "../../../edge-agent/agent.ts";
import { createAlarmParts } from "../../../edge-agent/alarms/index.ts";
import { loadConfig } from "../../../edge-agent/config.ts";
import { createDeviceHttpServer } from "../../../edge-agent/http/device-http.ts";
import { silentLogger } from "../../../edge-agent/log.ts";
import { createUdpTransport } from "../../../edge-agent/signalling/server.ts";
import {
  createSimulator,
  type Simulator,
  type SimulatorOptions,
} from "../../../edge-agent/simulator/index.ts";
import { SNAPSHOT_JPEG } from "../../../edge-agent/simulator/media-files.ts";
import {
  type AlarmEvent,
  type AlarmQueueMessage,
  AlarmQueueMessage as AlarmQueueMessageSchema,
  type MediaUploadedEvent,
} from "../../../lib/contracts/alarms.ts";
import { LOCAL_CREDENTIALS, LOCAL_REGION } from "../../../lib/local/clients.ts";
import { type LocalFauxqs, startFauxqs } from "../../../lib/local/fauxqs.ts";
import { ensureBucket } from "../../../lib/local/resources.ts";
import { eventually, uniquePrefix } from "../../helpers/local-backends.ts";

// The simulator's alarms, uploads and MANUALSNAP against the real agent core, its alarm reporter
// and picture server, on fauxqs S3 (ehome-2.0 §5.1, §8).

let fauxqs: LocalFauxqs;
let s3: S3Client;
let bucket: string;

beforeAll(async () => {
  fauxqs = await startFauxqs();
  s3 = new S3Client({
    region: LOCAL_REGION,
    credentials: LOCAL_CREDENTIALS,
    forcePathStyle: true,
    endpoint: fauxqs.endpoint,
  });
  bucket = uniquePrefix("media");
  await ensureBucket(s3, bucket);
});

afterAll(async () => {
  s3?.destroy();
  await fauxqs?.close();
});

const open: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const close of open.splice(0).reverse()) await close();
});

interface Rig {
  agent: EdgeAgent;
  sim: Simulator;
  events: AlarmQueueMessage[];
  alarms(): AlarmEvent[];
  media(): MediaUploadedEvent[];
}

async function rig(options: Partial<SimulatorOptions> = {}): Promise<Rig> {
  const events: AlarmQueueMessage[] = [];
  const late: { agent?: EdgeAgent } = {};
  const parts = createAlarmParts(
    { agentId: "agent-sim", maxPictureBytes: 1024 * 1024, maxVideoBytes: 8 * 1024 * 1024 },
    {
      // Every event must satisfy the contract.
      sink: { emit: (e) => void events.push(AlarmQueueMessageSchema.parse(e)) },
      media: { bucket, s3: () => s3 },
      sessions: () => late.agent?.sessions,
      log: silentLogger,
    },
  );
  const http = createDeviceHttpServer(
    { host: "127.0.0.1", port: 0 },
    { health: () => ({ ok: true }), routes: parts.routes },
  );
  const { port: httpPort } = await http.start();
  open.push(() => http.close());
  const config = loadConfig({
    EHOME_AGENT_ID: "agent-sim",
    EHOME_HOST: "127.0.0.1",
    EHOME_PUBLIC_HOST: "127.0.0.1",
    EHOME_SIGNAL_PORT: "0",
    EHOME_ALARM_PORT: "0",
    EHOME_HTTP_PORT: String(httpPort),
    EHOME_LEARN_DEVICES: "false",
  });
  const agent = createEdgeAgent(config, {
    transport: createUdpTransport({ host: "127.0.0.1", port: 0 }),
    alarmTransport: createUdpTransport({ host: "127.0.0.1", port: 0 }),
    events: { emit: () => {} },
    reports: parts.reports,
  });
  late.agent = agent;
  await agent.start();
  open.push(() => agent.close());
  const sim = await createSimulator({
    agent: agent.signalAddress(),
    devices: 1,
    registerSpreadMs: 10,
    seed: 11,
    ...options,
  });
  open.push(() => sim.close());
  await sim.start();
  await sim.waitFor("all-online", 5000);
  return {
    agent,
    sim,
    events,
    alarms: () => events.filter((e): e is AlarmEvent => e.type === "alarm"),
    media: () => events.filter((e): e is MediaUploadedEvent => e.type === "media-uploaded"),
  };
}

const objectBytes = async (key: string) => {
  const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return Buffer.from(await out.Body!.transformToByteArray());
};

const until = <T>(probe: () => T | undefined) =>
  eventually(async () => probe(), { timeoutMs: 5000, intervalMs: 20 });

describe("simulated alarms with pictures and videos", () => {
  it("an alarm names its PicIDs/VideoIds; the files arrive after it, stored byte-identical", async () => {
    const r = await rig({ alarmPictures: 2, alarmVideos: 1, videoBytes: 4096 });
    const device = r.sim.devices[0]!;
    const raised = device.raiseAlarm({ alarmType: 3, channel: 1 });
    const [alarm] = await until(() => (r.alarms().length === 1 ? r.alarms() : undefined));
    expect(alarm).toMatchObject({
      deviceId: device.id,
      sequence: raised.sequence,
      alarmType: 3,
      alarmAction: "start",
      videoChannel: 1,
      alarmTime: raised.alarmTime,
      picIds: raised.picIds,
      videoIds: raised.videoIds,
      retransmitted: false,
    });
    expect(raised.picIds).toHaveLength(2);
    const media = await until(() => (r.media().length === 3 ? r.media() : undefined));
    const pictures = media.filter((m) => m.kind === "picture");
    expect(pictures.map((m) => (m.kind === "picture" ? m.picId : "")).sort()).toEqual(
      [...raised.picIds].sort(),
    );
    for (const p of pictures) expect(await objectBytes(p.key)).toEqual(Buffer.from(SNAPSHOT_JPEG));
    const video = media.find((m) => m.kind === "video")!;
    expect(video).toMatchObject({ videoId: raised.videoIds[0], size: 4096 });
    // Alarm first, then its media.
    expect(r.events[0]!.type).toBe("alarm");
    await until(() => (device.counters.alarmsAnswered === 1 ? true : undefined));
    // It went to the announced alarm port, not the signalling port (ehome-2.0 §2.1, §5.1).
    expect(Number(device.registration?.alarmServerPort)).toBe(r.agent.alarmAddress()!.port);
    expect(r.agent.metrics()).toMatchObject({ alarm_port_datagrams: 1, alarm_reports: 1 });
    expect(device.counters).toMatchObject({ alarmsSent: 1, uploadsSent: 3, uploadsOk: 3 });
  });

  it("orders: before (media first), twice (each file twice), never (no upload)", async () => {
    const r = await rig({ alarmPictures: 1, alarmVideos: 0 });
    const device = r.sim.devices[0]!;
    device.raiseAlarm({ order: "before" });
    await until(() => (r.alarms().length === 1 ? true : undefined));
    expect(r.events.map((e) => e.type)).toEqual(["media-uploaded", "alarm"]);

    r.events.length = 0;
    device.raiseAlarm({ order: "twice" });
    await until(() => (r.media().length === 2 && r.alarms().length === 1 ? true : undefined));
    const ids = r.media().map((m) => (m.kind === "picture" ? m.picId : ""));
    expect(ids[0]).toBe(ids[1]);

    r.events.length = 0;
    const never = device.raiseAlarm({ order: "never" });
    await until(() => (r.alarms().length === 1 ? true : undefined));
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(r.media()).toHaveLength(0);
    expect(r.alarms()[0]!.picIds).toEqual(never.picIds);
    expect(device.counters.uploadsSkipped).toBe(1);
  });

  it("periodic alarms with a stop, and lost uploads (--upload-fail-rate 1)", async () => {
    const r = await rig({
      alarmEverySeconds: 0.1,
      alarmStopAfterMs: 20,
      uploadFailRate: 1,
    });
    await until(() => (r.alarms().some((a) => a.alarmAction === "stop") ? true : undefined));
    const starts = r.alarms().filter((a) => a.alarmAction === "start");
    expect(starts.length).toBeGreaterThan(0);
    expect(r.alarms().find((a) => a.alarmAction === "stop")!.picIds).toEqual([]);
    expect(r.media()).toHaveLength(0);
    expect(r.sim.stats().uploadsSkipped).toBeGreaterThan(0);
  });
});

describe("MANUALSNAP (capture command)", () => {
  it("answers 200, then uploads a real JPEG under the platform's PicID", async () => {
    const r = await rig();
    const device = r.sim.devices[0]!;
    const result = await r.agent.commands.execute({
      commandId: "c-1",
      deviceId: device.id,
      type: "capture",
      params: { channel: 1, picId: "cap-0001" },
      deadline: Date.now() + 10_000,
    });
    expect(result.state).toBe("succeeded");
    const [picture] = await until(() => (r.media().length === 1 ? r.media() : undefined));
    expect(picture).toMatchObject({ kind: "picture", picId: "cap-0001", channel: 1 });
    const bytes = await objectBytes(picture!.key);
    expect(bytes).toEqual(Buffer.from(SNAPSHOT_JPEG));
    expect([...bytes.subarray(0, 3)]).toEqual([0xff, 0xd8, 0xff]);
    expect(device.counters.snapshots).toBe(1);
  });
});
