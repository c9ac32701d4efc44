import { createSocket, type Socket } from "node:dgram";
import type {
  PlatformRequestMessage,
  ResponseMessage,
} from "../../../edge-agent/signalling/codec/index.ts";
import {
  decodeAsDevice,
  keepaliveDatagram,
  registerDatagram,
  responseDatagram,
} from "../helpers/devices.ts";

/**
 * A hand-made EHOME 2.0 device on a real loopback UDP socket: registers, sends keepalives, records
 * the platform requests it receives and answers them with 200 (datagrams built by the shared test
 * helpers through the codec and the catalogue).
 */
export interface LoopbackDevice {
  readonly deviceId: string;
  /** Platform requests received, oldest first. */
  readonly requests: PlatformRequestMessage[];
  register(options?: { password?: string }): Promise<ResponseMessage>;
  keepalive(): Promise<ResponseMessage>;
  close(): Promise<void>;
}

export async function createLoopbackDevice(
  agent: { host: string; port: number },
  deviceId: string,
): Promise<LoopbackDevice> {
  const socket: Socket = createSocket("udp4");
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
  const requests: PlatformRequestMessage[] = [];
  const waiting = new Map<number, (r: ResponseMessage) => void>();
  let sequence = 100;

  socket.on("message", (bytes) => {
    const m = decodeAsDevice(bytes);
    if (m.kind === "response") {
      waiting.get(m.header.sequence)?.(m);
      waiting.delete(m.header.sequence);
    } else if (m.kind === "platform-request") {
      requests.push(m);
      socket.send(responseDatagram(m.header.sequence, m.command, 200), agent.port, agent.host);
    }
  });

  const exchange = (bytes: Buffer, seq: number): Promise<ResponseMessage> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        waiting.delete(seq);
        reject(new Error(`${deviceId}: no response to sequence ${seq}`));
      }, 3_000);
      waiting.set(seq, (r) => {
        clearTimeout(timer);
        resolve(r);
      });
      socket.send(bytes, agent.port, agent.host);
    });

  return {
    deviceId,
    requests,
    register(options = {}) {
      const seq = ++sequence;
      return exchange(registerDatagram({ deviceId, sequence: seq, ...options }), seq);
    },
    keepalive() {
      const seq = ++sequence;
      return exchange(keepaliveDatagram(deviceId, seq), seq);
    },
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
}
