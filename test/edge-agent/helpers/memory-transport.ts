import type { DatagramHandlers, DatagramTransport, Peer } from "../../../edge-agent/ports.ts";

export interface SentDatagram {
  bytes: Buffer;
  host: string;
  port: number;
}

/** An in-memory signalling socket: tests deliver datagrams and inspect what the agent sent. */
export interface MemoryTransport extends DatagramTransport {
  readonly sent: SentDatagram[];
  deliver(bytes: Uint8Array, host: string, port: number): void;
  /** Makes the next `send` throw (a closed socket). */
  failNextSend(): void;
  /** Reports an asynchronous send error. */
  reportSendError(err: Error): void;
  readonly closed: boolean;
}

export function createMemoryTransport(
  bound: Peer = { host: "127.0.0.1", port: 7660 },
): MemoryTransport {
  let handlers: DatagramHandlers | undefined;
  let failNext = false;
  let closed = false;
  const sent: SentDatagram[] = [];
  return {
    sent,
    async start(h) {
      handlers = h;
      return bound;
    },
    send(bytes, host, port) {
      if (closed) throw new Error("closed");
      if (failNext) {
        failNext = false;
        throw new Error("send failed");
      }
      sent.push({ bytes: Buffer.from(bytes), host, port });
    },
    address: () => bound,
    async close() {
      closed = true;
    },
    deliver(bytes, host, port) {
      if (!handlers) throw new Error("transport not started");
      handlers.onDatagram(Buffer.from(bytes), host, port);
    },
    failNextSend() {
      failNext = true;
    },
    reportSendError(err) {
      handlers?.onSendError(err);
    },
    get closed() {
      return closed;
    },
  };
}
