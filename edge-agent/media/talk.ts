/**
 * Voice talk, agent side (issue 8 item 2; ehome-2.0 §8 `INVITETALK` row and the paragraph after
 * the table): `INVITETALK` with `Channel`, `AudioFormat` (`G711U`/`G711A`), `SinkIP`/`SinkPort` (a
 * pool port; TCP, so no `LinkMode`); the device answers 200 + `Session` and connects; both
 * directions then carry `$`-framed RTP (§4.1 item 3) with payload type 0 (PCMU) or 8 (PCMA), 20 ms
 * frames of 160 bytes.
 *
 * A client (WebSocket, websocket.ts) sends and receives audio as 8 kHz 16-bit little-endian PCM
 * (`codec: "pcm"`, converted with g711.ts) or raw G.711 (`codec: "g711"`). Toward the device the
 * audio is cut into 160-sample RTP packets (sequence +1, timestamp +160, one SSRC per talk); a
 * device socket that does not drain drops frames rather than queueing them. The device's audio
 * goes to the client through the connection's bounded queue (oldest dropped when it is slow).
 * One talk per device channel (`TALK_BUSY`); `stopTalk` sends `BYESTREAM` and releases the port.
 *
 * The cloud reaches it through the `talk-start` / `talk-stop` commands (media-commands.ts,
 * `executeTalkCommand`); the client joins on the viewer port's `/talk/<id>` (talk-http.ts).
 */
import { randomInt } from "node:crypto";
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import { type CatalogueView, DEFAULT_VIEW } from "../signalling/catalogue.ts";
import { childText } from "../signalling/codec/index.ts";
import type { CommandOutcome } from "../signalling/command-sender.ts";
import {
  decodeG711,
  encodeG711,
  G711_FRAME_SAMPLES,
  G711_PAYLOAD_TYPE,
  type G711Law,
} from "./g711.ts";
import type { MediaSend } from "./media-commands.ts";
import type { MediaLease, PortPool } from "./port-pool.ts";
import { type WsConnection, wrapWebSocket } from "./websocket.ts";

export type TalkAudioFormat = "G711U" | "G711A";
export type TalkCodec = "pcm" | "g711";

export const TALK_ERROR_CODES = {
  TALK_BUSY: "409: the device channel already has a talk session",
  TALK_NOT_FOUND: "no talk with this id on this agent",
  TALK_NO_SESSION: "the device accepted the talk but its answer carried no Session",
  TALK_PORTS: "no media port could be leased",
} as const;
export type TalkErrorCode = keyof typeof TALK_ERROR_CODES;

/**
 * How a talk start ended. The device's own outcome (refused, no answer, offline) passes through
 * unchanged, so the command result says `failed` / `timed-out` / `device-offline` exactly as for
 * any other command (the API's 502 / 504 / 409).
 */
export type TalkOutcome =
  | { kind: "ok"; talkId: string; session: string; port: number }
  | Exclude<CommandOutcome, { kind: "ok" }>
  | { kind: "failed"; code: TalkErrorCode; message: string };

export interface TalkManagerConfig {
  publicHost: string;
  acceptTimeoutMs: number;
  /** No audio either way this long: the client is closed (1001) and the talk stopped. */
  idleMs: number;
  /** Bytes queued toward a slow client. Default 64 KiB (about 4 s of PCM). */
  maxClientQueueBytes?: number;
  /** Bytes unsent toward the device beyond which frames are dropped. Default 16 KiB. */
  maxDeviceQueueBytes?: number;
}

export interface TalkManagerDeps {
  pool: PortPool;
  send: MediaSend;
  device(deviceId: string): { host: string; view?: CatalogueView } | undefined;
}

export interface TalkCounters {
  framesToDevice: number;
  framesFromDevice: number;
  framesDroppedToDevice: number;
}

interface Talk {
  talkId: string;
  deviceId: string;
  channel: number;
  law: G711Law;
  lease: MediaLease;
  session?: string;
  socket?: Socket;
  client?: { ws: WsConnection; codec: TalkCodec };
  /** G.711 bytes waiting to fill a 160-byte frame toward the device. */
  pending: Buffer;
  /** Bytes of an incomplete `$` record from the device. */
  inbound: Buffer;
  seq: number;
  timestamp: number;
  ssrc: number;
  counters: TalkCounters;
  ended: boolean;
}

/** `$` + channel 0 + length + RTP v2 header + payload (ehome-2.0 §4.1 item 3 and 4). */
export function talkRtpRecord(
  payloadType: number,
  seq: number,
  timestamp: number,
  ssrc: number,
  payload: Uint8Array,
): Buffer {
  const out = Buffer.allocUnsafe(4 + 12 + payload.length);
  out[0] = 0x24;
  out[1] = 0;
  out.writeUInt16BE(12 + payload.length, 2);
  out[4] = 0x80;
  out[5] = payloadType & 0x7f;
  out.writeUInt16BE(seq & 0xffff, 6);
  out.writeUInt32BE(timestamp >>> 0, 8);
  out.writeUInt32BE(ssrc >>> 0, 12);
  out.set(payload, 16);
  return out;
}

/** Splits `$` records; returns the RTP payloads and the bytes left over. */
export function splitTalkRecords(buf: Buffer): { payloads: Buffer[]; rest: Buffer } {
  const payloads: Buffer[] = [];
  let i = 0;
  while (i + 4 <= buf.length) {
    if (buf[i] !== 0x24) {
      i++;
      continue;
    }
    const n = buf.readUInt16BE(i + 2);
    if (i + 4 + n > buf.length) break;
    const p = buf.subarray(i + 4, i + 4 + n);
    i += 4 + n;
    if (n < 12 || (p[0]! & 0xc0) !== 0x80) continue;
    let hl = 12 + 4 * (p[0]! & 0x0f);
    if (p[0]! & 0x10 && hl + 4 <= n) hl += 4 + 4 * p.readUInt16BE(hl + 2);
    if (hl < n) payloads.push(p.subarray(hl));
  }
  return { payloads, rest: Buffer.from(buf.subarray(i)) };
}

export interface TalkManager {
  startTalk(
    deviceId: string,
    spec: { talkId: string; channel: number; audioFormat: TalkAudioFormat },
  ): Promise<TalkOutcome>;
  /** Joins the WebSocket client (upgrade already answered) to a talk. */
  attachClient(
    talkId: string,
    deviceId: string,
    codec: TalkCodec,
    socket: Duplex,
  ): "ok" | "not-found" | "busy";
  stopTalk(talkId: string): Promise<boolean>;
  /** Whether a client may join now (talk-http.ts checks before the upgrade). */
  clientSlot(talkId: string, deviceId: string): "free" | "busy" | "not-found";
  counters(talkId: string): TalkCounters | undefined;
  close(): Promise<void>;
}

export function createTalkManager(config: TalkManagerConfig, deps: TalkManagerDeps): TalkManager {
  const talks = new Map<string, Talk>();
  const byChannel = new Map<string, Talk>();
  const maxDeviceQueue = config.maxDeviceQueueBytes ?? 16 * 1024;

  const toDevice = (t: Talk, g711: Buffer) => {
    t.pending = t.pending.length ? Buffer.concat([t.pending, g711]) : g711;
    while (t.pending.length >= G711_FRAME_SAMPLES) {
      const frame = t.pending.subarray(0, G711_FRAME_SAMPLES);
      t.pending = t.pending.subarray(G711_FRAME_SAMPLES);
      const record = talkRtpRecord(G711_PAYLOAD_TYPE[t.law], t.seq, t.timestamp, t.ssrc, frame);
      t.seq = (t.seq + 1) & 0xffff;
      t.timestamp = (t.timestamp + G711_FRAME_SAMPLES) >>> 0;
      const s = t.socket;
      if (!s || s.destroyed || s.writableLength > maxDeviceQueue) {
        t.counters.framesDroppedToDevice++;
        continue;
      }
      s.write(record);
      t.counters.framesToDevice++;
    }
  };

  const fromDevice = (t: Talk, chunk: Buffer) => {
    const { payloads, rest } = splitTalkRecords(
      t.inbound.length ? Buffer.concat([t.inbound, chunk]) : chunk,
    );
    t.inbound = rest;
    for (const p of payloads) {
      t.counters.framesFromDevice++;
      const c = t.client;
      if (!c) continue;
      c.ws.send(c.codec === "pcm" ? decodeG711(p, t.law) : p);
    }
  };

  const end = async (t: Talk, bye: boolean) => {
    if (t.ended) return;
    t.ended = true;
    talks.delete(t.talkId);
    if (byChannel.get(`${t.deviceId}\n${t.channel}`) === t) {
      byChannel.delete(`${t.deviceId}\n${t.channel}`);
    }
    t.client?.ws.close(1000, "talk ended");
    if (bye && t.session !== undefined) {
      await deps.send(t.deviceId, "byeStream", { session: t.session }).catch(() => undefined);
    }
    t.lease.release();
    await t.lease.done;
  };

  return {
    async startTalk(deviceId, spec) {
      const key = `${deviceId}\n${spec.channel}`;
      if (byChannel.has(key)) {
        return { kind: "failed", code: "TALK_BUSY", message: "the channel already has a talk" };
      }
      const device = deps.device(deviceId);
      if (!device) return { kind: "offline" };
      let lease: MediaLease;
      try {
        lease = await deps.pool.acquire({
          host: device.host,
          acceptTimeoutMs: config.acceptTimeoutMs,
        });
      } catch (err) {
        return { kind: "failed", code: "TALK_PORTS", message: (err as Error).message };
      }
      const t: Talk = {
        talkId: spec.talkId,
        deviceId,
        channel: spec.channel,
        law: spec.audioFormat === "G711A" ? "alaw" : "ulaw",
        lease,
        pending: Buffer.alloc(0),
        inbound: Buffer.alloc(0),
        seq: randomInt(0, 0x10000),
        timestamp: randomInt(0, 2 ** 31),
        ssrc: randomInt(1, 2 ** 31),
        counters: { framesToDevice: 0, framesFromDevice: 0, framesDroppedToDevice: 0 },
        ended: false,
      };
      talks.set(t.talkId, t);
      byChannel.set(key, t);
      lease.connection.then(
        (socket) => {
          t.socket = socket;
          socket.on("data", (c: Buffer) => fromDevice(t, c));
          socket.once("close", () => void end(t, false));
        },
        () => void end(t, true),
      );
      const view = device.view ?? DEFAULT_VIEW;
      // ehome-2.0 §8 INVITETALK row: Channel, AudioFormat, SinkIP, SinkPort (LinkMode absent: TCP).
      const outcome = await deps.send(deviceId, "inviteTalk", {
        channel: spec.channel,
        audioFormat: spec.audioFormat,
        sinkIp: config.publicHost,
        sinkPort: lease.port,
      });
      if (outcome.kind !== "ok") {
        await end(t, false);
        return outcome;
      }
      const session = childText(outcome.params, view.commands.inviteTalk.reply.session ?? "");
      if (!session) {
        await end(t, false);
        return { kind: "failed", code: "TALK_NO_SESSION", message: "no Session in the answer" };
      }
      t.session = session;
      if (t.ended) {
        await deps.send(deviceId, "byeStream", { session }).catch(() => undefined);
        return { kind: "failed", code: "TALK_NOT_FOUND", message: "stopped while starting" };
      }
      return { kind: "ok", talkId: t.talkId, session, port: lease.port };
    },

    attachClient(talkId, deviceId, codec, socket) {
      const t = talks.get(talkId);
      if (!t || t.deviceId !== deviceId) return "not-found";
      if (t.client) return "busy";
      const ws = wrapWebSocket(
        socket,
        {
          maxMessageBytes: 64 * 1024,
          maxQueuedBytes: config.maxClientQueueBytes ?? 64 * 1024,
          idleMs: config.idleMs,
        },
        {
          onMessage: (data) => {
            if (t.ended) return;
            toDevice(t, codec === "pcm" ? encodeG711(data, t.law) : Buffer.from(data));
          },
          onClose: () => {
            if (t.client?.ws === ws) t.client = undefined;
          },
        },
      );
      t.client = { ws, codec };
      return "ok";
    },

    async stopTalk(talkId) {
      const t = talks.get(talkId);
      if (!t) return false;
      await end(t, true);
      return true;
    },

    clientSlot(talkId, deviceId) {
      const t = talks.get(talkId);
      if (!t || t.deviceId !== deviceId) return "not-found";
      return t.client ? "busy" : "free";
    },

    counters: (talkId) => {
      const t = talks.get(talkId);
      return t ? { ...t.counters } : undefined;
    },

    async close() {
      await Promise.all([...talks.values()].map((t) => end(t, true)));
    },
  };
}
