/**
 * A small WebSocket server side (RFC 6455) for voice talk (issue 8 item 2): the client's audio
 * arrives and leaves as binary messages on the viewer HTTP server. No `ws` package: the handshake
 * (§4.2.2), the frame format (§5.2), client masking (§5.3, required), fragmentation (§5.4), ping,
 * pong and close (§5.5) are here, with a message size cap (close 1009) and protocol errors (1002).
 *
 * `createWsParser` is pure (bytes in, frames out); `acceptWebSocket` answers an HTTP upgrade and
 * returns a `WsConnection` with a bounded send queue that drops the oldest queued messages when
 * the client reads too slowly (audio: late is worse than lost), an idle timeout and one idempotent
 * `close()`.
 */
import { createHash } from "node:crypto";
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";

const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

export const WS_OPCODE = {
  continuation: 0x0,
  text: 0x1,
  binary: 0x2,
  close: 0x8,
  ping: 0x9,
  pong: 0xa,
} as const;

/** RFC 6455 §4.2.2 item 5: `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key`. */
export function websocketAccept(key: string): string {
  return createHash("sha1")
    .update(key + GUID)
    .digest("base64");
}

export type WsEvent =
  | { kind: "message"; binary: boolean; data: Buffer }
  | { kind: "ping"; data: Buffer }
  | { kind: "pong"; data: Buffer }
  | { kind: "close"; code: number | undefined; reason: string };

export interface WsParserResult {
  events: WsEvent[];
  /** A protocol violation: the connection must be closed with this code (1002, 1009). */
  error?: { code: number; reason: string };
}

export interface WsParser {
  push(chunk: Uint8Array): WsParserResult;
}

/** Frames a client sent (masked) → events; messages reassembled up to `maxMessageBytes`. */
export function createWsParser(options: { maxMessageBytes: number }): WsParser {
  let buf = Buffer.alloc(0);
  let parts: Buffer[] | null = null;
  let partBytes = 0;
  let partBinary = false;
  let failed = false;

  return {
    push(chunk) {
      const events: WsEvent[] = [];
      if (failed) return { events };
      buf = buf.length === 0 ? Buffer.from(chunk) : Buffer.concat([buf, chunk]);
      const fail = (code: number, reason: string): WsParserResult => {
        failed = true;
        buf = Buffer.alloc(0);
        return { events, error: { code, reason } };
      };
      for (;;) {
        if (buf.length < 2) break;
        const b0 = buf[0]!;
        const b1 = buf[1]!;
        const fin = (b0 & 0x80) !== 0;
        const opcode = b0 & 0x0f;
        if (b0 & 0x70) return fail(1002, "reserved bits set");
        if (!(b1 & 0x80)) return fail(1002, "client frames must be masked");
        let len = b1 & 0x7f;
        let at = 2;
        if (len === 126) {
          if (buf.length < 4) break;
          len = buf.readUInt16BE(2);
          at = 4;
        } else if (len === 127) {
          if (buf.length < 10) break;
          const big = buf.readBigUInt64BE(2);
          if (big > BigInt(options.maxMessageBytes)) return fail(1009, "message too big");
          len = Number(big);
          at = 10;
        }
        const control = opcode >= 0x8;
        if (control && (len > 125 || !fin)) return fail(1002, "bad control frame");
        if (!control && partBytes + len > options.maxMessageBytes) {
          return fail(1009, "message too big");
        }
        if (buf.length < at + 4 + len) break;
        const mask = buf.subarray(at, at + 4);
        const data = Buffer.allocUnsafe(len);
        for (let i = 0; i < len; i++) data[i] = buf[at + 4 + i]! ^ mask[i & 3]!;
        buf = buf.subarray(at + 4 + len);
        switch (opcode) {
          case WS_OPCODE.ping:
            events.push({ kind: "ping", data });
            break;
          case WS_OPCODE.pong:
            events.push({ kind: "pong", data });
            break;
          case WS_OPCODE.close: {
            if (len === 1) return fail(1002, "bad close payload");
            const code = len >= 2 ? data.readUInt16BE(0) : undefined;
            events.push({ kind: "close", code, reason: data.subarray(2).toString("utf8") });
            failed = true;
            return { events };
          }
          case WS_OPCODE.text:
          case WS_OPCODE.binary:
            if (parts !== null) return fail(1002, "new message inside a fragmented one");
            if (fin) {
              events.push({ kind: "message", binary: opcode === WS_OPCODE.binary, data });
            } else {
              parts = [data];
              partBytes = len;
              partBinary = opcode === WS_OPCODE.binary;
            }
            break;
          case WS_OPCODE.continuation:
            if (parts === null) return fail(1002, "continuation without a message");
            parts.push(data);
            partBytes += len;
            if (fin) {
              events.push({ kind: "message", binary: partBinary, data: Buffer.concat(parts) });
              parts = null;
              partBytes = 0;
            }
            break;
          default:
            return fail(1002, "unknown opcode");
        }
      }
      return { events };
    },
  };
}

/** A server frame (never masked, §5.1). */
export function encodeWsFrame(opcode: number, payload: Uint8Array = Buffer.alloc(0)): Buffer {
  const n = payload.length;
  const head = n < 126 ? 2 : n < 0x10000 ? 4 : 10;
  const out = Buffer.allocUnsafe(head + n);
  out[0] = 0x80 | opcode;
  if (n < 126) out[1] = n;
  else if (n < 0x10000) {
    out[1] = 126;
    out.writeUInt16BE(n, 2);
  } else {
    out[1] = 127;
    out.writeBigUInt64BE(BigInt(n), 2);
  }
  out.set(payload, head);
  return out;
}

export function encodeWsClose(code: number, reason = ""): Buffer {
  const r = Buffer.from(reason.slice(0, 100), "utf8");
  const p = Buffer.allocUnsafe(2 + r.length);
  p.writeUInt16BE(code, 0);
  r.copy(p, 2);
  return encodeWsFrame(WS_OPCODE.close, p);
}

export interface WsConnectionOptions {
  maxMessageBytes: number;
  /** Bytes queued toward a slow client; beyond, the oldest queued messages are dropped. */
  maxQueuedBytes: number;
  /** No message from the client this long: closed with 1001. */
  idleMs: number;
}

export interface WsConnectionHandlers {
  onMessage(data: Buffer, binary: boolean): void;
  /** Once, whatever closed it. */
  onClose(code: number, reason: string): void;
}

export interface WsConnection {
  /** Queues a binary message; false when it (or older ones) had to be dropped. */
  send(data: Uint8Array): boolean;
  counters(): { received: number; sent: number; dropped: number; pings: number };
  close(code?: number, reason?: string): void;
}

/**
 * Answers the upgrade (101 with `Sec-WebSocket-Accept`), or 400 and undefined when the request is
 * not a version-13 WebSocket handshake.
 */
export function acceptWebSocket(
  req: IncomingMessage,
  socket: Duplex,
  options: WsConnectionOptions,
  handlers: WsConnectionHandlers,
): WsConnection | undefined {
  return answerWebSocketUpgrade(req, socket) ? wrapWebSocket(socket, options, handlers) : undefined;
}

/** The handshake alone: 101 and true, or 400 (socket ended) and false. */
export function answerWebSocketUpgrade(req: IncomingMessage, socket: Duplex): boolean {
  const key = req.headers["sec-websocket-key"];
  const upgrade = String(req.headers.upgrade ?? "").toLowerCase();
  const valid =
    req.method === "GET" &&
    upgrade === "websocket" &&
    req.headers["sec-websocket-version"] === "13" &&
    typeof key === "string" &&
    Buffer.from(key, "base64").length === 16;
  if (!valid) {
    socket.end("HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
    return false;
  }
  socket.write(
    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
      `Sec-WebSocket-Accept: ${websocketAccept(key)}\r\n\r\n`,
  );
  return true;
}

export function wrapWebSocket(
  socket: Duplex,
  options: WsConnectionOptions,
  handlers: WsConnectionHandlers,
): WsConnection {
  const parser = createWsParser({ maxMessageBytes: options.maxMessageBytes });
  const queue: Buffer[] = [];
  let queued = 0;
  let closed = false;
  let lastIn = Date.now();
  const c = { received: 0, sent: 0, dropped: 0, pings: 0 };

  const flush = () => {
    while (queue.length > 0 && !closed) {
      const f = queue.shift()!;
      queued -= f.length;
      c.sent++;
      if (!socket.write(f)) return;
    }
  };

  const finish = (code: number, reason: string, frame: boolean) => {
    if (closed) return;
    closed = true;
    clearInterval(idleTimer);
    queue.length = 0;
    queued = 0;
    if (frame && socket.writable) socket.write(encodeWsClose(code, reason));
    socket.end();
    // A client that does not close its side in time is cut.
    setTimeout(() => socket.destroy(), 1000).unref();
    handlers.onClose(code, reason);
  };

  const idleTimer = setInterval(
    () => {
      if (Date.now() - lastIn >= options.idleMs) finish(1001, "idle", true);
    },
    Math.max(10, Math.min(options.idleMs, 1000)),
  );
  idleTimer.unref();

  socket.on("data", (chunk: Buffer) => {
    if (closed) return;
    lastIn = Date.now();
    const r = parser.push(chunk);
    for (const e of r.events) {
      if (closed) return;
      if (e.kind === "message") {
        c.received++;
        handlers.onMessage(e.data, e.binary);
      } else if (e.kind === "ping") {
        c.pings++;
        socket.write(encodeWsFrame(WS_OPCODE.pong, e.data));
      } else if (e.kind === "close") {
        // §5.5.1: answer with the same code (1000 when none was given).
        finish(e.code ?? 1000, e.reason, true);
      }
    }
    if (r.error) finish(r.error.code, r.error.reason, true);
  });
  socket.on("drain", flush);
  socket.on("error", () => finish(1006, "socket error", false));
  socket.on("close", () => finish(1006, "connection closed", false));

  return {
    send(data) {
      if (closed) return false;
      const frame = encodeWsFrame(WS_OPCODE.binary, data);
      let kept = true;
      queue.push(frame);
      queued += frame.length;
      while (queued > options.maxQueuedBytes && queue.length > 1) {
        queued -= queue.shift()!.length;
        c.dropped++;
        kept = false;
      }
      if (socket.writableNeedDrain) return kept;
      flush();
      return kept;
    },
    counters: () => ({ ...c }),
    close(code = 1000, reason = "") {
      finish(code, reason, true);
    },
  };
}
