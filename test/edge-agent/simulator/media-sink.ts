import net from "node:net";
import { createDeframer, type Deframer } from "../../../edge-agent/media/deframer.ts";

/**
 * The platform's media side for simulator tests: a loopback TCP server that accepts device pushes
 * and de-frames each connection with the agent's de-framer (ehome-2.0 §4.1) into clean PS.
 */

export interface SinkConnection {
  socket: net.Socket;
  raw: Buffer[];
  ps: Buffer[];
  deframer: Deframer;
  /** performance.now() of each data event with the PS bytes it completed. */
  arrivals: Array<{ at: number; bytes: number }>;
  closed: boolean;
  /** The device half-closed (sent FIN) before the socket closed. */
  ended: boolean;
}

export class MediaSink {
  readonly connections: SinkConnection[] = [];
  private constructor(
    private readonly server: net.Server,
    private readonly holdOpen: boolean,
  ) {}

  /**
   * `paused`: accepted connections are not read until `resume(i)` (backpressure tests).
   * `holdOpen`: the device's FIN is not answered (the platform closes later, e.g. after BYESTREAM).
   */
  static async start(options: { paused?: boolean; holdOpen?: boolean } = {}): Promise<MediaSink> {
    const server = net.createServer({
      pauseOnConnect: options.paused ?? false,
      allowHalfOpen: options.holdOpen ?? false,
    });
    const sink = new MediaSink(server, options.holdOpen ?? false);
    server.on("connection", (socket) => sink.accept(socket));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    return sink;
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  /** PS de-framed so far on connection `i`. */
  ps(i = 0): Buffer {
    return Buffer.concat(this.connections[i]?.ps ?? []);
  }

  resume(i = 0): void {
    this.connections[i]?.socket.resume();
  }

  raw(i = 0): Buffer {
    return Buffer.concat(this.connections[i]?.raw ?? []);
  }

  async waitFor(check: () => boolean, timeoutMs = 5000): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (!check()) {
      if (performance.now() > deadline) throw new Error("media sink: timed out waiting");
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  async close(): Promise<void> {
    for (const c of this.connections) c.socket.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  private accept(socket: net.Socket): void {
    const c: SinkConnection = {
      socket,
      raw: [],
      ps: [],
      deframer: createDeframer(),
      arrivals: [],
      closed: false,
      ended: false,
    };
    this.connections.push(c);
    socket.on("data", (chunk) => {
      c.raw.push(chunk);
      const out = c.deframer.push(chunk);
      let bytes = 0;
      for (const b of out) {
        c.ps.push(Buffer.from(b));
        bytes += b.length;
      }
      c.arrivals.push({ at: performance.now(), bytes });
    });
    socket.on("end", () => {
      c.ended = true;
      if (!this.holdOpen) socket.end();
    });
    socket.on("error", () => {});
    socket.on("close", () => {
      c.closed = true;
    });
  }
}

/** Splits a program stream into packs (each from its `00 00 01 BA`). */
export function packs(ps: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let start = -1;
  for (let i = 0; i + 3 < ps.length; i++) {
    if (ps[i] === 0 && ps[i + 1] === 0 && ps[i + 2] === 1 && ps[i + 3] === 0xba) {
      if (start >= 0) out.push(ps.subarray(start, i));
      start = i;
      i += 13;
    }
  }
  if (start >= 0) out.push(ps.subarray(start));
  return out;
}

/** The PTS of a pack's first video PES (90 kHz). */
export function packPts(pack: Buffer): number | undefined {
  for (let i = 0; i + 13 < pack.length; i++) {
    if (pack[i] === 0 && pack[i + 1] === 0 && pack[i + 2] === 1 && pack[i + 3] === 0xe0) {
      if ((pack[i + 7]! & 0x80) === 0) return undefined;
      const p = pack.subarray(i + 9, i + 14);
      return (
        ((p[0]! >> 1) & 0x07) * 2 ** 30 +
        (((p[1]! << 7) | (p[2]! >> 1)) << 15) +
        ((p[3]! << 7) | (p[4]! >> 1))
      );
    }
  }
  return undefined;
}

/** Whether a pack carries a system header (before an IDR, ehome-2.0 §4.1). */
export function hasSystemHeader(pack: Buffer): boolean {
  const sh = 14 + (pack[13]! & 0x07);
  return pack[sh] === 0 && pack[sh + 1] === 0 && pack[sh + 2] === 1 && pack[sh + 3] === 0xbb;
}
