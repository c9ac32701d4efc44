import { createSocket, type Socket } from "node:dgram";
import { isIPv6 } from "node:net";
import type { Logger } from "../log.ts";
import type { DatagramHandlers, DatagramTransport, Peer } from "../ports.ts";

/**
 * The UDP adapter of the signalling port (the only file of the core that imports node:dgram; style
 * rule 1). Every datagram is read into a 64 KiB buffer (libuv's UDP read size), so nothing is
 * truncated the way FE's 1024-byte reads are (ehome-2.0 §1.1, C); what is larger than
 * EHOME_MAX_DATAGRAM_BYTES is refused by the agent.
 *
 * The kernel queue (SO_RCVBUF) is a different thing: the kernel charges each queued datagram its
 * buffer overhead (1-2 KiB+), so a 64 KiB queue holds only a few dozen REGISTERs and a registration
 * storm of 1,000 devices loses half of them. We ask for 4 MiB; Linux caps the request at
 * net.core.rmem_max, which operators of large fleets should raise. What the kernel granted is
 * logged at start (`receiveBufferBytes()`; Linux reports twice the accepted request, the
 * bookkeeping overhead it adds), with a warning when it is less than asked for.
 */

export interface UdpTransportOptions {
  host: string;
  port: number;
  /** Requested SO_RCVBUF in bytes (the kernel may cap it). Default 4 MiB. */
  recvBufferSize?: number;
  /** Where the granted receive buffer is reported at start. Default: not reported. */
  log?: Pick<Logger, "info" | "warn">;
}

export interface UdpTransport extends DatagramTransport {
  /** SO_RCVBUF as the kernel reports it after bind (Linux: twice what it accepted). */
  receiveBufferBytes(): number | undefined;
}

export const DEFAULT_RECV_BUFFER = 4 * 1024 * 1024;

export function createUdpTransport(options: UdpTransportOptions): UdpTransport {
  let socket: Socket | undefined;
  let bound: Peer | undefined;
  let granted: number | undefined;
  const requested = options.recvBufferSize ?? DEFAULT_RECV_BUFFER;
  let closing: Promise<void> | undefined;
  let onSent: ((err: Error | null) => void) | undefined;

  return {
    start(handlers: DatagramHandlers) {
      if (socket) return Promise.reject(new Error("UDP transport already started"));
      const s = createSocket({
        type: isIPv6(options.host) ? "udp6" : "udp4",
        recvBufferSize: requested,
      });
      socket = s;
      // One callback for every send: no closure per datagram on the hot path.
      onSent = (err) => {
        if (err) handlers.onSendError(err);
      };
      s.on("message", (msg, rinfo) => handlers.onDatagram(msg, rinfo.address, rinfo.port));
      return new Promise<Peer>((resolve, reject) => {
        const fail = (err: Error) => {
          socket = undefined;
          s.close();
          reject(err);
        };
        s.once("error", fail);
        s.bind(options.port, options.host, () => {
          s.off("error", fail);
          // After bind, socket errors are send/receive errors; they must not crash the agent.
          s.on("error", (err) => handlers.onSendError(err));
          const a = s.address();
          bound = { host: a.address, port: a.port };
          try {
            granted = s.getRecvBufferSize();
          } catch {
            granted = undefined;
          }
          const fields = { port: a.port, requestedBytes: requested, grantedBytes: granted };
          // Linux doubles what it accepts: less than the request means net.core.rmem_max capped it.
          if (granted !== undefined && granted < requested) {
            options.log?.warn(
              "UDP receive buffer smaller than requested: raise net.core.rmem_max",
              fields,
            );
          } else options.log?.info("UDP receive buffer", fields);
          resolve(bound);
        });
      });
    },
    send(bytes, host, port) {
      if (!socket || closing) throw new Error("UDP transport is not running");
      socket.send(bytes, port, host, onSent);
    },
    address() {
      if (!bound) throw new Error("UDP transport is not bound");
      return bound;
    },
    receiveBufferBytes: () => granted,
    close() {
      closing ??= new Promise<void>((resolve) => {
        const s = socket;
        if (!s) return resolve();
        try {
          s.close(() => resolve());
        } catch {
          resolve();
        }
      });
      return closing;
    },
  };
}
