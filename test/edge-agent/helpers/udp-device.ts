import { createSocket, type Socket } from "node:dgram";
import type { Message } from "../../../edge-agent/signalling/codec/index.ts";
import { decodeAsDevice } from "./devices.ts";

/** A hand-rolled device on a real loopback UDP socket. */
export interface UdpDevice {
  readonly port: number;
  send(bytes: Uint8Array): void;
  /** Next datagram from the agent (decoded as a device would), or rejects after `ms`. */
  next(ms?: number): Promise<Message>;
  /** Datagrams received and not yet taken. */
  readonly inbox: Message[];
  close(): Promise<void>;
}

export async function createUdpDevice(agent: { host: string; port: number }): Promise<UdpDevice> {
  const socket: Socket = createSocket("udp4");
  const inbox: Message[] = [];
  const waiters: Array<(m: Message) => void> = [];
  socket.on("message", (bytes) => {
    const m = decodeAsDevice(bytes);
    const w = waiters.shift();
    if (w) w(m);
    else inbox.push(m);
  });
  await new Promise<void>((r) => socket.bind(0, "127.0.0.1", () => r()));
  return {
    port: socket.address().port,
    inbox,
    send(bytes) {
      socket.send(bytes, agent.port, agent.host);
    },
    next(ms = 2000) {
      const queued = inbox.shift();
      if (queued) return Promise.resolve(queued);
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => {
          const i = waiters.indexOf(w);
          if (i >= 0) waiters.splice(i, 1);
          reject(new Error(`no datagram within ${ms} ms`));
        }, ms);
        const w = (m: Message) => {
          clearTimeout(t);
          resolve(m);
        };
        waiters.push(w);
      });
    },
    close: () => new Promise<void>((r) => socket.close(() => r())),
  };
}
