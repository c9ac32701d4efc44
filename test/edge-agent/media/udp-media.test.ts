import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createSocket } from "node:dgram";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { get, type IncomingMessage } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { createEdgeAgent, type EdgeAgent } from "../../../edge-agent/agent.ts";
import { loadConfig } from "../../../edge-agent/config.ts";
import { createFramer } from "../../../edge-agent/media/framer.ts";
import {
  type AgentMedia,
  createAgentMedia,
  mediaConfigFromEnv,
} from "../../../edge-agent/media/index.ts";
import { createPortPool, type PortPool } from "../../../edge-agent/media/port-pool.ts";
import { createUdpTransport } from "../../../edge-agent/signalling/server.ts";
import { createSimulator, type Simulator } from "../../../edge-agent/simulator/index.ts";
import { CommandResult } from "../../../lib/contracts/commands.ts";
import {
  mintStreamToken,
  StreamEvent,
  StreamStartResult,
  streamUrl,
} from "../../../lib/contracts/media.ts";
import { until } from "./helpers/media-rig.ts";
import { freePortRange } from "./helpers/port-range.ts";

/**
 * UDP media (issue 8 item 1, ehome-2.0 §8 LinkMode): the simulator pushes plain RTP datagrams
 * with 2% loss and reordering; the agent reorders, counts the loss, de-frames and relays; the TS
 * viewer's bytes read in ffprobe; the port is back in the pool afterwards. And the UDP lease on its
 * own: only the device's address is accepted, fragments around a hole are dropped.
 */

const KEY = randomBytes(32);
const tmp = mkdtempSync(join(tmpdir(), "udp-media-"));
let agent: EdgeAgent | undefined;
let media: AgentMedia | undefined;
let sim: Simulator | undefined;
let pool: PortPool | undefined;

afterAll(() => rmSync(tmp, { recursive: true, force: true }));

afterEach(async () => {
  await sim?.close();
  if (media) {
    await media.close();
    expect(media.pool.available()).toBe(media.pool.size);
  }
  await agent?.close();
  await pool?.close();
  sim = undefined;
  media = undefined;
  agent = undefined;
  pool = undefined;
});

async function start(simOptions: Record<string, unknown>) {
  const config = loadConfig(
    {
      EHOME_HOST: "127.0.0.1",
      EHOME_SIGNAL_PORT: "0",
      EHOME_VIEWER_PORT: "0",
      EHOME_AGENT_ID: "agent-udp-media",
      EHOME_LEARN_DEVICES: "false",
    },
    { hostname: "t", pid: 1 },
  );
  const events: StreamEvent[] = [];
  const a = createEdgeAgent(config, {
    transport: createUdpTransport({ host: "127.0.0.1", port: 0 }),
    events: { emit() {} },
    media: () => media?.manager,
  });
  agent = a;
  media = createAgentMedia(
    {
      ...mediaConfigFromEnv({}, { ...config, mediaPorts: await freePortRange(2) }),
      tokenKey: KEY,
    },
    {
      send: (id, command, values) => a.commands.send(id, command, values),
      device: (id) => a.sessions.get(id),
      events: { emit: (e) => void events.push(StreamEvent.parse(e)) },
    },
  );
  await a.start();
  const { viewerPort } = await media.start();
  sim = await createSimulator(
    { agent: a.signalAddress(), devices: 1, seed: 11, ...simOptions },
    { onError: () => {} },
  );
  await sim.start();
  await sim.waitFor("all-online", 10_000);
  return { a, events, viewerPort: viewerPort!, device: sim.devices[0]! };
}

function fetch(url: string) {
  return new Promise<{ res: IncomingMessage; bytes: () => Buffer; ended: Promise<void> }>(
    (resolve, reject) => {
      get(url, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        const ended = new Promise<void>((r) => res.once("close", () => r()));
        resolve({ res, bytes: () => Buffer.concat(chunks), ended });
      }).on("error", reject);
    },
  );
}

/**
 * ffprobe of a TS: errors are expected where frames were lost, so stderr is not checked. `frames`
 * are the video frames the TS carries (demuxed packets); `decoded` those the decoder produced (a
 * GOP whose IDR was lost does not decode until the next IDR).
 */
function probeTs(bytes: Buffer) {
  const path = join(tmp, `${randomBytes(4).toString("hex")}.ts`);
  writeFileSync(path, bytes);
  const r = spawnSync(
    "ffprobe",
    [
      "-v",
      "quiet",
      "-f",
      "mpegts",
      "-count_frames",
      "-count_packets",
      "-select_streams",
      "v:0",
      "-show_entries",
      "stream=codec_name,width,height,nb_read_frames,nb_read_packets",
      "-of",
      "json",
      path,
    ],
    { encoding: "utf8" },
  );
  const out = JSON.parse(r.stdout).streams[0];
  const pts = spawnSync(
    "ffprobe",
    [
      "-v",
      "quiet",
      "-f",
      "mpegts",
      "-select_streams",
      "v:0",
      "-show_entries",
      "packet=pts",
      "-of",
      "json",
      path,
    ],
    { encoding: "utf8" },
  );
  const all = (JSON.parse(pts.stdout).packets as Array<{ pts?: number }>)
    .map((k) => k.pts)
    .filter((v): v is number => typeof v === "number");
  return {
    codec: out.codec_name as string,
    width: out.width as number,
    height: out.height as number,
    frames: Number(out.nb_read_packets),
    decoded: Number(out.nb_read_frames),
    firstPts: Math.min(...all),
    lastPts: Math.max(...all),
  };
}

const command = (deviceId: string, type: string, params: Record<string, unknown>) => ({
  commandId: `${type}-${randomBytes(3).toString("hex")}`,
  deviceId,
  type: type as "reboot",
  params,
  deadline: Date.now() + 30_000,
});

describe("UDP media (LinkMode UDP)", () => {
  it("live over UDP with 2% loss and reordering: TS reads in ffprobe, loss counted, port released", async () => {
    const { a, events, viewerPort, device } = await start({
      mediaSpeed: 4,
      mediaLossRate: 0.02,
      mediaReorderRate: 0.05,
    });
    const started = CommandResult.parse(
      await a.commands.execute(
        command(device.id, "stream-start", {
          streamId: "udp-live",
          kind: "live",
          channel: 1,
          streamType: "main",
          transport: "udp",
        }),
      ),
    );
    expect(started.state).toBe("succeeded");
    expect(StreamStartResult.parse(started.result).transport).toBe("udp");
    const token = mintStreamToken(KEY, {
      streamId: "udp-live",
      deviceId: device.id,
      expiresAt: Math.floor(Date.now() / 1000) + 60,
    });
    const ts = await fetch(streamUrl("127.0.0.1", viewerPort, "udp-live", "ts", token));
    expect(ts.res.statusCode).toBe(200);
    await until(() => ts.bytes().length > 500_000, 15_000);
    const push = device.mediaSessions().find((s) => s.kind === "live")!;
    expect(push.framing).toBe("rtp");
    const sentBeforeStop = push.framesSent;
    const stop = CommandResult.parse(
      await a.commands.execute(command(device.id, "stream-stop", { streamId: "udp-live" })),
    );
    expect(stop.state).toBe("succeeded");
    await ts.ended;
    expect(media!.pool.available()).toBe(media!.pool.size);

    const got = probeTs(ts.bytes());
    expect(got).toMatchObject({ codec: "h264", width: 640, height: 360 });
    // The frames the device sent from the viewer's first to its last (PTS step 3600 at 25 fps;
    // the device goes on sending until BYESTREAM reaches it): ≥ 90% of them arrived.
    const sent = (got.lastPts - got.firstPts) / 3600 + 1;
    expect(sent).toBeGreaterThan(sentBeforeStop * 0.75);
    expect(got.frames).toBeGreaterThanOrEqual(Math.floor(sent * 0.9));
    expect(got.frames).toBeLessThanOrEqual(sent);
    expect(got.decoded).toBeGreaterThan(sent / 2);

    const mine = events.filter((e) => e.streamId === "udp-live");
    expect(mine.at(-1)!.state).toBe("stopped");
    const lost = mine.at(-1)!.counters.packetsLost!;
    // About 2% of the packets (a frame of `main` is 2-40 packets of 1,400 bytes).
    const packets = mine.at(-1)!.counters.bytesIn / 1400;
    expect(lost).toBeGreaterThan(0);
    expect(lost).toBeLessThan(packets * 0.1);
  }, 40_000);
});

describe("UDP lease", () => {
  it("accepts only the device's address, reorders, drops fragments around a hole, releases its port", async () => {
    pool = createPortPool({ mediaPorts: await freePortRange(1), host: "127.0.0.1" });
    const lease = await pool.acquireUdp({ host: "127.0.0.1", idleMs: 300 });
    expect(pool.available()).toBe(0);
    const framer = createFramer({ ssrc: 7, maxPayloadBytes: 100 });
    // One whole chunk (0x0d), then a chunk in 3 fragments, then a whole chunk.
    const records = [
      ...framer.frame(Buffer.alloc(50, 1)),
      ...framer.frame(Buffer.alloc(250, 2)),
      ...framer.frame(Buffer.alloc(50, 3)),
    ].map((r) => r.subarray(4));
    expect(records).toHaveLength(5);
    const intruder = createSocket("udp4");
    const device = createSocket("udp4");
    await new Promise<void>((r) => intruder.bind(0, "127.0.0.2", () => r()));
    await new Promise<void>((r) => device.bind(0, "127.0.0.1", () => r()));
    const send = (s: typeof device, p: Buffer) =>
      new Promise<void>((r) => s.send(p, lease.port, "127.0.0.1", () => r()));
    await send(intruder, records[0]!);
    // Order on the wire: 0, 2 (first fragment), 4, 1 ... record 3 (middle... last) never sent.
    await send(device, records[0]!);
    const conn = await lease.connection;
    const got: Buffer[] = [];
    conn.on("data", (c: Buffer) => got.push(c));
    const closed = new Promise<void>((r) => conn.once("close", () => r()));
    await send(device, records[1]!); // first fragment
    await send(device, records[2]!); // middle fragment
    // records[3] (the last fragment) is lost.
    await send(device, records[4]!);
    await closed;
    intruder.close();
    device.close();
    // `$` records out: chunk 0, the first and middle fragments, then (gap) the next chunk.
    const wire = Buffer.concat(got);
    const seqs: number[] = [];
    for (let i = 0; i < wire.length; i += 4 + wire.readUInt16BE(i + 2)) {
      expect(wire[i]).toBe(0x24);
      seqs.push(wire.readUInt16BE(i + 6));
    }
    expect(seqs).toEqual([0, 1, 2, 4]);
    expect(lease.stats()).toMatchObject({ refused: 1, packets: 4, packetsLost: 1 });
    expect(await lease.done).toBe("socket-closed");
    expect(pool.available()).toBe(1);
  });
});
