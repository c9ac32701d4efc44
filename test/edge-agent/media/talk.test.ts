import { randomBytes } from "node:crypto";
import { createServer, type Server } from "node:http";
import { connect, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { createEdgeAgent, type EdgeAgent } from "../../../edge-agent/agent.ts";
import { loadConfig } from "../../../edge-agent/config.ts";
import { decodeG711, encodeG711 } from "../../../edge-agent/media/g711.ts";
import {
  type AgentMedia,
  createAgentMedia,
  mediaConfigFromEnv,
} from "../../../edge-agent/media/index.ts";
import type { MediaSend } from "../../../edge-agent/media/media-commands.ts";
import { createPortPool, type PortPool } from "../../../edge-agent/media/port-pool.ts";
import {
  createTalkManager,
  splitTalkRecords,
  type TalkManager,
  talkRtpRecord,
} from "../../../edge-agent/media/talk.ts";
import { answerWebSocketUpgrade } from "../../../edge-agent/media/websocket.ts";
import { createUdpTransport } from "../../../edge-agent/signalling/server.ts";
import { createSimulator, type Simulator } from "../../../edge-agent/simulator/index.ts";
import { mintTalkToken, talkUrl } from "../../../lib/contracts/talk.ts";
import {
  clientFrame,
  serverPayloads,
  tone,
  zeroCrossings,
} from "../../helpers/websocket-client.ts";
import { freePortRange } from "./helpers/port-range.ts";

/**
 * Voice talk, agent side (issue 8 item 2; ehome-2.0 §8 INVITETALK): PCM over the WebSocket reaches
 * the device as G.711 RTP (PT 0, 160-byte frames, sequence +1, timestamp +160) and decodes back
 * within the G.711 error; the device's 1 kHz tone reaches the client as PCM; one talk per channel.
 */

let pool: PortPool | undefined;
let talk: TalkManager | undefined;
let server: Server | undefined;
const sockets: Socket[] = [];

let agent: EdgeAgent | undefined;
let sim: Simulator | undefined;
let media: AgentMedia | undefined;

afterEach(async () => {
  await sim?.close();
  if (media) {
    await media.close();
    expect(media.pool.available()).toBe(media.pool.size);
  }
  media = undefined;
  await talk?.close();
  await agent?.close();
  sim = undefined;
  agent = undefined;
  for (const s of sockets) s.destroy();
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  if (pool) expect(pool.available()).toBe(pool.size);
  await pool?.close();
  pool = undefined;
  talk = undefined;
  server = undefined;
});

const until = async (f: () => boolean, ms = 3000) => {
  for (let i = 0; i < ms / 10 && !f(); i++) await new Promise((r) => setTimeout(r, 10));
  expect(f()).toBe(true);
};

/** The talk manager's WebSocket endpoint, as the viewer server would route `/talk/<id>`. */
async function talkServer(t: TalkManager, deviceId: string): Promise<number> {
  server = createServer();
  server.on("upgrade", (req, socket) => {
    const url = new URL(req.url ?? "/", "http://x");
    const id = url.pathname.split("/").pop()!;
    if (!answerWebSocketUpgrade(req, socket)) return;
    t.attachClient(id, deviceId, url.searchParams.get("codec") === "g711" ? "g711" : "pcm", socket);
  });
  await new Promise<void>((r) => server!.listen(0, "127.0.0.1", () => r()));
  return (server.address() as { port: number }).port;
}

async function setup() {
  pool = createPortPool({ mediaPorts: await freePortRange(2), host: "127.0.0.1" });
  const sent: Array<{ command: string; values: Record<string, unknown> }> = [];
  const device: { socket?: Socket; received: Buffer[] } = { received: [] };
  const send = (async (_id: string, command: string, values: Record<string, unknown> = {}) => {
    sent.push({ command, values });
    if (command === "inviteTalk") {
      const s = connect(Number(values.sinkPort), "127.0.0.1");
      sockets.push(s);
      s.on("data", (c: Buffer) => device.received.push(c));
      device.socket = s;
      return { kind: "ok", status: 200, description: "OK", params: { Session: "4242" } };
    }
    return { kind: "ok", status: 200, description: "OK", params: {} };
  }) as unknown as MediaSend;
  talk = createTalkManager(
    { publicHost: "127.0.0.1", acceptTimeoutMs: 2000, idleMs: 5000 },
    { pool, send, device: () => ({ host: "127.0.0.1" }) },
  );
  const t = talk;
  server = createServer();
  server.on("upgrade", (req, socket) => {
    const url = new URL(req.url ?? "/", "http://x");
    const id = url.pathname.split("/").pop()!;
    if (!answerWebSocketUpgrade(req, socket)) return;
    t.attachClient(id, "cam-1", url.searchParams.get("codec") === "g711" ? "g711" : "pcm", socket);
  });
  await new Promise<void>((r) => server!.listen(0, "127.0.0.1", () => r()));
  const port = (server.address() as { port: number }).port;
  return { sent, device, port, talk: t };
}

async function client(port: number, talkId: string, path = `/talk/${talkId}?codec=pcm`) {
  const s = connect(port, "127.0.0.1");
  sockets.push(s);
  const chunks: Buffer[] = [];
  s.on("data", (c: Buffer) => chunks.push(c));
  s.write(
    `GET ${path} HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${randomBytes(16).toString("base64")}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
  );
  await until(() => Buffer.concat(chunks).includes("\r\n\r\n"));
  const all = () => {
    const b = Buffer.concat(chunks);
    return b.subarray(b.indexOf("\r\n\r\n") + 4);
  };
  return { s, all };
}

describe("voice talk (INVITETALK, G.711 over $-RTP)", () => {
  it("PCM from the client reaches the device as PCMU RTP; the device's 1 kHz tone reaches the client; one talk per channel", async () => {
    const { sent, device, port, talk: t } = await setup();
    const started = await t.startTalk("cam-1", { talkId: "t1", channel: 1, audioFormat: "G711U" });
    expect(started).toMatchObject({ kind: "ok", session: "4242" });
    expect(sent[0]).toMatchObject({
      command: "inviteTalk",
      values: { channel: 1, audioFormat: "G711U", sinkIp: "127.0.0.1" },
    });
    expect(
      await t.startTalk("cam-1", { talkId: "t2", channel: 1, audioFormat: "G711U" }),
    ).toMatchObject({ kind: "failed", code: "TALK_BUSY" });

    const c = await client(port, "t1");
    // 100 ms of a 440 Hz tone in two messages that do not fall on frame boundaries.
    const pcm = tone(800, 440);
    c.s.write(clientFrame(pcm.subarray(0, 500)));
    c.s.write(clientFrame(pcm.subarray(500)));
    await until(() => splitTalkRecords(Buffer.concat(device.received)).payloads.length === 5);
    const wire = Buffer.concat(device.received);
    const heads: Array<{ pt: number; seq: number; ts: number }> = [];
    for (let i = 0; i < wire.length; i += 4 + wire.readUInt16BE(i + 2)) {
      expect(wire[i]).toBe(0x24);
      heads.push({
        pt: wire[i + 5]! & 0x7f,
        seq: wire.readUInt16BE(i + 6),
        ts: wire.readUInt32BE(i + 8),
      });
    }
    expect(heads.every((h) => h.pt === 0)).toBe(true);
    for (let k = 1; k < heads.length; k++) {
      expect(heads[k]!.seq).toBe((heads[0]!.seq + k) & 0xffff);
      expect(heads[k]!.ts).toBe((heads[0]!.ts + 160 * k) >>> 0);
    }
    const g = Buffer.concat(splitTalkRecords(wire).payloads);
    expect(g).toHaveLength(800);
    const back = decodeG711(g, "ulaw");
    for (let i = 0; i < 800; i++) {
      const x = pcm.readInt16LE(i * 2);
      expect(Math.abs(back.readInt16LE(i * 2) - x)).toBeLessThanOrEqual(Math.abs(x) / 16 + 16);
    }

    // The device sends 200 ms of a 1 kHz tone as PCMU RTP.
    const deviceTone = encodeG711(tone(1600, 1000), "ulaw");
    for (let k = 0; k < 10; k++) {
      device.socket!.write(
        talkRtpRecord(0, k, k * 160, 4242, deviceTone.subarray(k * 160, (k + 1) * 160)),
      );
    }
    await until(() => Buffer.concat(serverPayloads(c.all())).length === 3200);
    const heard = Buffer.concat(serverPayloads(c.all()));
    // 1 kHz for 200 ms: 400 zero crossings.
    expect(Math.abs(zeroCrossings(heard) - 400)).toBeLessThanOrEqual(4);

    expect(await t.stopTalk("t1")).toBe(true);
    expect(sent.at(-1)).toMatchObject({ command: "byeStream", values: { session: "4242" } });
    // The channel is free again.
    const again = await t.startTalk("cam-1", { talkId: "t3", channel: 1, audioFormat: "G711A" });
    expect(again).toMatchObject({ kind: "ok" });
  });
});

describe("voice talk with the device simulator", () => {
  it("INVITETALK: the simulated device hears the client's PCM as PCMA and its 1 kHz tone reaches the client", async () => {
    const config = loadConfig(
      {
        EHOME_HOST: "127.0.0.1",
        EHOME_SIGNAL_PORT: "0",
        EHOME_AGENT_ID: "agent-talk",
        EHOME_LEARN_DEVICES: "false",
      },
      { hostname: "t", pid: 1 },
    );
    const a = createEdgeAgent(config, {
      transport: createUdpTransport({ host: "127.0.0.1", port: 0 }),
      events: { emit() {} },
    });
    agent = a;
    await a.start();
    pool = createPortPool({ mediaPorts: await freePortRange(2), host: "127.0.0.1" });
    talk = createTalkManager(
      { publicHost: "127.0.0.1", acceptTimeoutMs: 5000, idleMs: 5000 },
      {
        pool,
        send: (id, command, values) => a.commands.send(id, command, values),
        device: (id) => a.sessions.get(id),
      },
    );
    sim = await createSimulator(
      { agent: a.signalAddress(), devices: 1, seed: 3, talkMode: "tone" },
      { onError: () => {} },
    );
    await sim.start();
    await sim.waitFor("all-online", 10_000);
    const device = sim.devices[0]!;
    const port = await talkServer(talk, device.id);
    const started = await talk.startTalk(device.id, {
      talkId: "sim-talk",
      channel: 1,
      audioFormat: "G711A",
    });
    expect(started).toMatchObject({ kind: "ok" });
    const c = await client(port, "sim-talk");
    // 300 ms of the device's tone (20 ms frames in real time).
    await until(() => Buffer.concat(serverPayloads(c.all())).length >= 4800, 5000);
    const heard = Buffer.concat(serverPayloads(c.all())).subarray(0, 4800);
    expect(Math.abs(zeroCrossings(heard) - 600)).toBeLessThanOrEqual(6);

    const pcm = tone(1600, 300);
    c.s.write(clientFrame(pcm));
    await until(() => (device.talkSessions()[0]?.received.length ?? 0) >= 1600, 5000);
    const got = decodeG711(device.talkSessions()[0]!.received, "alaw");
    for (let i = 0; i < 1600; i++) {
      const x = pcm.readInt16LE(i * 2);
      expect(Math.abs(got.readInt16LE(i * 2) - x)).toBeLessThanOrEqual(Math.abs(x) / 16 + 16);
    }
    expect(await talk.stopTalk("sim-talk")).toBe(true);
    await until(() => device.talkSessions()[0]?.ended === true);
  });
});

describe("voice talk in the composed agent media module", () => {
  it("the talk WebSocket is served on the viewer port with a talk token; the device's tone is heard", async () => {
    const config = loadConfig(
      {
        EHOME_HOST: "127.0.0.1",
        EHOME_SIGNAL_PORT: "0",
        EHOME_VIEWER_PORT: "0",
        EHOME_AGENT_ID: "agent-talk-composed",
        EHOME_LEARN_DEVICES: "false",
      },
      { hostname: "t", pid: 1 },
    );
    const a = createEdgeAgent(config, {
      transport: createUdpTransport({ host: "127.0.0.1", port: 0 }),
      events: { emit() {} },
      media: () => media?.manager,
    });
    agent = a;
    const key = randomBytes(32);
    media = createAgentMedia(
      {
        ...mediaConfigFromEnv({}, { ...config, mediaPorts: await freePortRange(2) }),
        tokenKey: key,
      },
      {
        send: (id, command, values) => a.commands.send(id, command, values),
        device: (id) => a.sessions.get(id),
      },
    );
    await a.start();
    const { viewerPort } = await media.start();
    sim = await createSimulator(
      { agent: a.signalAddress(), devices: 1, seed: 4 },
      { onError: () => {} },
    );
    await sim.start();
    await sim.waitFor("all-online", 10_000);
    const device = sim.devices[0]!;
    expect(
      await media.talk.startTalk(device.id, { talkId: "tk", channel: 1, audioFormat: "G711U" }),
    ).toMatchObject({ kind: "ok" });
    const token = mintTalkToken(key, {
      talkId: "tk",
      deviceId: device.id,
      expiresAt: Math.floor(Date.now() / 1000) + 60,
    });
    const url = new URL(talkUrl("127.0.0.1", viewerPort!, "tk", token, "pcm"));
    const c = await client(viewerPort!, "tk", `${url.pathname}${url.search}`);
    await until(() => Buffer.concat(serverPayloads(c.all())).length >= 3200, 5000);
    const heard = Buffer.concat(serverPayloads(c.all())).subarray(0, 3200);
    expect(Math.abs(zeroCrossings(heard) - 400)).toBeLessThanOrEqual(4);
  });
});
