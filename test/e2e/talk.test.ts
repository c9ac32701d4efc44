import { randomBytes } from "node:crypto";
import { connect, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { decodeG711 } from "../../edge-agent/media/g711.ts";
import { freePortRange } from "../edge-agent/media/helpers/port-range.ts";
import { clientFrame, serverPayloads, tone, zeroCrossings } from "../helpers/websocket-client.ts";
import { eventually, usePlatform } from "./helpers/platform.ts";

/**
 * Voice talk end to end on the platform `npm start` runs (issue 8 item 2; ehome-2.0 §8
 * INVITETALK): `POST /devices/{id}/talk` reaches the simulated device through the command queue
 * and the agent, the client's PCM on the WebSocket the API answered reaches the device as PCMU
 * RTP (same samples within the G.711 error), the device's 1 kHz tone reaches the client, a
 * second talk on the channel is 409 TALK_BUSY, and `DELETE /talk/{id}` ends the device's session
 * (BYESTREAM) and frees the agent's media port (a pool of one port: another talk then fits).
 */

const ports = await freePortRange(1);
const p = usePlatform({
  agentEnv: {
    EHOME_PUBLIC_HOST: "127.0.0.1",
    EHOME_KEEPALIVE_SECONDS: "2",
    EHOME_MEDIA_PORTS: `${ports.min}-${ports.max}`,
    EHOME_VIEWER_PORT: "0",
  },
});

// biome-ignore lint/suspicious/noExplicitAny: response JSON is navigated freely; assertions check it
type Json = any;

const sockets: Socket[] = [];
afterEach(() => {
  for (const s of sockets.splice(0)) s.destroy();
});

/** A minimal WebSocket client on `url`: the 101 status line, and everything after the headers. */
async function openTalk(url: string) {
  const u = new URL(url);
  const s = connect(Number(u.port), u.hostname);
  sockets.push(s);
  const chunks: Buffer[] = [];
  s.on("data", (c: Buffer) => chunks.push(c));
  s.on("error", () => {});
  s.write(
    `GET ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${randomBytes(16).toString("base64")}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
  );
  await eventually(async () => (Buffer.concat(chunks).includes("\r\n\r\n") ? true : undefined));
  const all = Buffer.concat(chunks);
  const status = all.subarray(0, all.indexOf("\r\n")).toString("latin1");
  const heard = () => {
    const b = Buffer.concat(chunks);
    return Buffer.concat(serverPayloads(b.subarray(b.indexOf("\r\n\r\n") + 4)));
  };
  return { s, status, heard };
}

describe("voice talk through the npm start platform", () => {
  it("POST /talk → WebSocket: PCM reaches the device as PCMU, its 1 kHz tone reaches the client; TALK_BUSY; DELETE → BYESTREAM and the port freed", async () => {
    const sim = await p().simulator({ devices: 1, idPrefix: "e2e-talk-", channels: 2 });
    await sim.start();
    await sim.waitFor("all-online", 10_000);
    const device = sim.devices[0]!;
    await eventually(async () => {
      const res = await p().api<Json>("GET", `/devices/${device.id}`);
      return res.body.status === "online" && res.body.channelCount === 2 ? true : undefined;
    });

    const started = await p().api<Json>("POST", `/devices/${device.id}/talk`, {
      channel: 1,
      audioFormat: "G711U",
      codec: "pcm",
    });
    expect(started.status).toBe(201);
    const { talkId, url } = started.body;
    expect(url).toMatch(/^ws:\/\/127\.0\.0\.1:\d+\/talk\/.+\?.*token=.+/);
    expect(new URL(url).pathname).toBe(`/talk/${talkId}`);
    await eventually(async () => (device.talkSessions().length === 1 ? true : undefined));
    expect(device.talkSessions()[0]).toMatchObject({ law: "ulaw", ended: false });

    // One talk per device channel.
    const busy = await p().api<Json>("POST", `/devices/${device.id}/talk`, { channel: 1 });
    expect(busy.status).toBe(409);
    expect(busy.body.code).toBe("TALK_BUSY");
    // The agent's only media port is this talk's: another channel finds none.
    const full = await p().api<Json>("POST", `/devices/${device.id}/talk`, { channel: 2 });
    expect(full.status).toBe(503);
    expect(full.body.code).toBe("MEDIA_PORTS_EXHAUSTED");

    const c = await openTalk(url);
    expect(c.status).toMatch(/^HTTP\/1\.1 101/);

    // 1 s of a 440 Hz tone, in 50 messages of 20 ms paced in real time.
    const pcm = tone(8000, 440);
    for (let k = 0; k < 50; k++) {
      c.s.write(clientFrame(pcm.subarray(k * 320, (k + 1) * 320)));
      await new Promise((r) => setTimeout(r, 20));
    }
    await eventually(async () =>
      device.talkSessions()[0]!.received.length >= 8000 ? true : undefined,
    );
    const talk = device.talkSessions()[0]!;
    expect(talk.received).toHaveLength(8000);
    expect(talk.framesReceived).toBe(50);
    const got = decodeG711(talk.received, "ulaw");
    for (let i = 0; i < 8000; i++) {
      const x = pcm.readInt16LE(i * 2);
      expect(Math.abs(got.readInt16LE(i * 2) - x)).toBeLessThanOrEqual(Math.abs(x) / 16 + 16);
    }

    // The device's tone since the client joined: at least 200 ms of 1 kHz = 400 crossings.
    await eventually(async () => (c.heard().length >= 3200 ? true : undefined));
    const heard = c.heard();
    const samples = Math.floor(heard.length / 2);
    const expected = (samples / 8000) * 2000;
    expect(Math.abs(zeroCrossings(heard.subarray(0, samples * 2)) - expected)).toBeLessThanOrEqual(
      expected * 0.02 + 4,
    );

    const stopped = await fetch(`${p().apiUrl}/talk/${talkId}`, {
      method: "DELETE",
      headers: { authorization: `Bearer ${p().token}` },
    });
    expect(stopped.status).toBe(204);
    await eventually(async () => (device.talkSessions()[0]!.ended ? true : undefined));
    expect(device.commands.some((cmd) => cmd.commandId === "byeStream" && cmd.status === 200)).toBe(
      true,
    );

    // The port is back: channel 1 takes it again, then lets go.
    const again = await p().api<Json>("POST", `/devices/${device.id}/talk`, { channel: 1 });
    expect(again.status).toBe(201);
    const bye = await fetch(`${p().apiUrl}/talk/${again.body.talkId}`, {
      method: "DELETE",
      headers: { authorization: `Bearer ${p().token}` },
    });
    expect(bye.status).toBe(204);
    await eventually(async () =>
      device.talkSessions().every((t) => t.ended) && device.talkSessions().length === 2
        ? true
        : undefined,
    );
  }, 30_000);
});
