import { randomBytes } from "node:crypto";
import { createServer, type Server } from "node:http";
import { connect, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import {
  acceptWebSocket,
  createWsParser,
  encodeWsFrame,
  WS_OPCODE,
  type WsConnection,
  websocketAccept,
} from "../../../edge-agent/media/websocket.ts";
import { clientFrame } from "../../helpers/websocket-client.ts";

/** RFC 6455: the handshake (§4.2.2), client masking (§5.3), fragments (§5.4), control frames (§5.5). */

describe("WebSocket frames", () => {
  it("the handshake key of RFC 6455 §1.3", () => {
    expect(websocketAccept("dGhlIHNhbXBsZSBub25jZQ==")).toBe("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  });

  it("the masked 'Hello' of §5.7, byte by byte", () => {
    const p = createWsParser({ maxMessageBytes: 1024 });
    const bytes = Buffer.from([0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]);
    const events = [...bytes].flatMap((b) => p.push(Buffer.from([b])).events);
    expect(events).toEqual([{ kind: "message", binary: false, data: Buffer.from("Hello") }]);
  });

  it("fragments with a ping between them; 16- and 64-bit lengths", () => {
    const p = createWsParser({ maxMessageBytes: 100_000 });
    const a = randomBytes(300);
    const b = randomBytes(70_000);
    const r = p.push(
      Buffer.concat([
        clientFrame(a, WS_OPCODE.binary, false),
        clientFrame(Buffer.from("hi"), WS_OPCODE.ping),
        clientFrame(b, WS_OPCODE.continuation, true),
      ]),
    );
    expect(r.error).toBeUndefined();
    expect(r.events[0]).toEqual({ kind: "ping", data: Buffer.from("hi") });
    expect(r.events[1]).toEqual({ kind: "message", binary: true, data: Buffer.concat([a, b]) });
  });

  it("refuses unmasked frames (1002) and oversize messages (1009)", () => {
    expect(
      createWsParser({ maxMessageBytes: 10 }).push(encodeWsFrame(2, Buffer.from("x"))).error,
    ).toMatchObject({ code: 1002 });
    expect(
      createWsParser({ maxMessageBytes: 10 }).push(clientFrame(Buffer.alloc(11), 2)).error,
    ).toMatchObject({ code: 1009 });
  });
});

describe("WebSocket connection over HTTP upgrade", () => {
  let server: Server | undefined;
  const sockets: Socket[] = [];
  afterEach(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
    server = undefined;
  });

  async function start(onConn: (c: WsConnection) => void, idleMs = 5_000) {
    const s = createServer();
    server = s;
    s.on("upgrade", (req, socket) => {
      let conn: WsConnection | undefined;
      conn = acceptWebSocket(
        req,
        socket,
        { maxMessageBytes: 4096, maxQueuedBytes: 1 << 20, idleMs },
        { onMessage: (d) => conn?.send(d), onClose: () => {} },
      );
      if (conn) onConn(conn);
    });
    await new Promise<void>((r) => s.listen(0, "127.0.0.1", () => r()));
    const port = (s.address() as { port: number }).port;
    const sock = connect(port, "127.0.0.1");
    sockets.push(sock);
    const received: Buffer[] = [];
    sock.on("data", (d: Buffer) => received.push(d));
    const key = randomBytes(16).toString("base64");
    sock.write(
      `GET /talk/x HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    );
    return { sock, key, all: () => Buffer.concat(received) };
  }

  const until = async (f: () => boolean) => {
    for (let i = 0; i < 200 && !f(); i++) await new Promise((r) => setTimeout(r, 10));
    expect(f()).toBe(true);
  };

  it("101 with the accept key, echo of a binary message, pong, close answered", async () => {
    const { sock, key, all } = await start(() => {});
    await until(() => all().includes("\r\n\r\n"));
    const head = all().toString("latin1");
    expect(head).toMatch(/^HTTP\/1\.1 101/);
    expect(head).toContain(`Sec-WebSocket-Accept: ${websocketAccept(key)}`);
    const headLen = head.indexOf("\r\n\r\n") + 4;
    sock.write(clientFrame(Buffer.from([1, 2, 3]), WS_OPCODE.binary));
    sock.write(clientFrame(Buffer.from("p"), WS_OPCODE.ping));
    sock.write(clientFrame(Buffer.from([0x03, 0xe8]), WS_OPCODE.close));
    await until(() => all().length >= headLen + 5 + 3 + 4);
    const frames = all().subarray(headLen);
    expect([...frames.subarray(0, 5)]).toEqual([0x82, 3, 1, 2, 3]);
    expect([...frames.subarray(5, 8)]).toEqual([0x8a, 1, 0x70]);
    expect([...frames.subarray(8, 12)]).toEqual([0x88, 2, 0x03, 0xe8]);
  });

  it("an idle client is closed with 1001", async () => {
    const { all } = await start(() => {}, 50);
    await until(() => all().includes(Buffer.from([0x88, 0x06, 0x03, 0xe9])));
  });
});
