import { createSocket, type Socket as DgramSocket } from "node:dgram";
import { Writable } from "node:stream";
import type { Random } from "./random.ts";

/**
 * The simulated device's side of UDP media (issue 8; ehome-2.0 §8 `LinkMode` UDP: plain RTP
 * datagrams, no `$` framing, the same 0x0d / 0x1c markers). A Writable standing in for the TCP
 * socket of a media push (media-push.ts writes `$` records from framer.ts into it): each record's
 * RTP packet goes out as one datagram from the device's address to `SinkIP:SinkPort`.
 *
 * Impairments, seeded: `lossRate` drops a packet, `reorderRate` holds a packet back and sends it
 * after the next one (a swap). Emits `connect` once bound, like a net.Socket; `end()` sends what
 * is held and closes.
 */

export interface UdpPushOptions {
  target: { host: string; port: number };
  localAddress?: string;
  /** Share (0..1) of packets not sent. */
  lossRate?: number;
  /** Share (0..1) of packets sent after the next one. */
  reorderRate?: number;
  random: Random;
}

export interface UdpPushStats {
  packetsSent: number;
  packetsDropped: number;
  packetsReordered: number;
}

export class UdpPushSocket extends Writable {
  private readonly udp: DgramSocket;
  private readonly options: UdpPushOptions;
  /** Bytes of an incomplete `$` record carried between writes. */
  private rest: Buffer = Buffer.alloc(0);
  private heldBack: Buffer | null = null;
  private ready = false;
  private readonly counts: UdpPushStats = {
    packetsSent: 0,
    packetsDropped: 0,
    packetsReordered: 0,
  };

  constructor(options: UdpPushOptions) {
    super({ highWaterMark: 64 * 1024, decodeStrings: true });
    this.options = options;
    const family = options.target.host.includes(":") ? "udp6" : "udp4";
    this.udp = createSocket(family);
    this.udp.on("error", (err) => this.destroy(err));
    this.udp.bind(
      { port: 0, ...(options.localAddress ? { address: options.localAddress } : {}) },
      () => {
        this.ready = true;
        this.emit("connect");
      },
    );
  }

  /** (net.Socket's; nothing to do for datagrams.) */
  setNoDelay(): this {
    return this;
  }

  stats(): UdpPushStats {
    return { ...this.counts };
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.sendRecords(chunk, cb);
  }

  override _final(cb: (err?: Error | null) => void): void {
    const held = this.heldBack;
    this.heldBack = null;
    if (held) this.send(held, () => cb());
    else cb();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    try {
      this.udp.close();
    } catch {
      // Not bound or already closed.
    }
    cb(err);
  }

  private sendRecords(chunk: Buffer, cb: (err?: Error | null) => void): void {
    let b = this.rest.length > 0 ? Buffer.concat([this.rest, chunk]) : chunk;
    const packets: Buffer[] = [];
    let i = 0;
    while (i + 4 <= b.length) {
      if (b[i] !== 0x24) {
        // Not a record (e.g. a private header): not sent over UDP.
        i++;
        continue;
      }
      const n = b.readUInt16BE(i + 2);
      if (i + 4 + n > b.length) break;
      packets.push(b.subarray(i + 4, i + 4 + n));
      i += 4 + n;
    }
    b = b.subarray(i);
    this.rest = b.length > 0 ? Buffer.from(b) : Buffer.alloc(0);
    let pending = 1;
    let failed: Error | null = null;
    const settle = (err?: Error | null) => {
      if (err) failed ??= err;
      if (--pending === 0) cb(failed);
    };
    const { random, lossRate = 0, reorderRate = 0 } = this.options;
    for (const p of packets) {
      if (lossRate > 0 && random() < lossRate) {
        this.counts.packetsDropped++;
        continue;
      }
      if (this.heldBack === null && reorderRate > 0 && random() < reorderRate) {
        this.heldBack = p;
        this.counts.packetsReordered++;
        continue;
      }
      pending++;
      this.send(p, settle);
      const held = this.heldBack;
      if (held) {
        this.heldBack = null;
        pending++;
        this.send(held, settle);
      }
    }
    settle();
  }

  private send(packet: Buffer, cb: (err?: Error | null) => void): void {
    if (!this.ready || this.destroyed) {
      cb();
      return;
    }
    this.counts.packetsSent++;
    const { host, port } = this.options.target;
    this.udp.send(packet, port, host, (err) => cb(err ?? null));
  }
}
