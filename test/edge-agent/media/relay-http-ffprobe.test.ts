import { once } from "node:events";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createRelay, type Relay, type ViewerSink } from "../../../edge-agent/media/relay.ts";
import { type MediaDir, mediaDir } from "./helpers/ffprobe.ts";
import { h264AccessUnits, psFromUnits } from "./helpers/ps-fixtures.ts";

/** GET a viewer URL; resolves with everything the response carried once it ends. */
function fetchAll(port: number, path: string): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    const req = http.get({ host: "127.0.0.1", port, path, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve(Buffer.concat(chunks)));
      res.on("error", reject);
    });
    req.on("error", reject);
  });
}

describe("relay over real HTTP responses, TS output checked by ffprobe", () => {
  let dir: MediaDir;
  let es: Buffer;
  let server: http.Server;
  let port: number;
  let relay: Relay;
  let joined: () => void = () => undefined;

  beforeAll(async () => {
    dir = await mediaDir();
    es = await dir.ffmpeg(
      [
        ...["-f", "lavfi", "-i", "testsrc=size=640x360:rate=25", "-t", "2"],
        ...["-c:v", "libx264", "-g", "25", "-bf", "0", "-f", "h264"],
      ],
      "in.h264",
    );
    server = http.createServer((req, res) => {
      res.writeHead(200, { "content-type": req.url === "/ts" ? "video/mp2t" : "video/mp2p" });
      // An http.ServerResponse is a ViewerSink.
      const sink: ViewerSink = res;
      relay.addViewer(sink, req.url === "/ts" ? "ts" : "ps");
      joined();
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    port = (server.address() as AddressInfo).port;
  }, 60_000);

  afterAll(async () => {
    relay?.close();
    server?.closeAllConnections();
    await new Promise((r) => server?.close(r));
    await dir?.remove();
  });

  /** Opens a viewer and waits until the relay has it (wrapped: an async function would await it). */
  async function view(path: string): Promise<{ body: Promise<Buffer> }> {
    const added = new Promise<void>((r) => {
      joined = r;
    });
    const body = fetchAll(port, path);
    await added;
    return { body };
  }

  it("serves an early and a late TS viewer and a PS viewer: all playable, late ones from the keyframe", async () => {
    relay = createRelay({});
    const { units, keyframes } = h264AccessUnits(es);
    const stream = psFromUnits(units, { keyframes });
    const early = await view("/ts");
    const splitAt = 35;
    for (const p of stream.packs.slice(0, splitAt)) relay.push(p);
    const late = await view("/ts");
    const ps = await view("/ps");
    expect(relay.stats()).toMatchObject({ viewers: 3, tsViewers: 2 });
    for (
      let at = Buffer.concat(stream.packs.slice(0, splitAt)).length;
      at < stream.ps.length;
      at += 1316
    ) {
      relay.push(stream.ps.subarray(at, at + 1316));
    }
    relay.end();
    const [earlyTs, lateTs, psOut] = await Promise.all([early.body, late.body, ps.body]);

    const fromKey = Buffer.concat(stream.packs.slice(25));
    expect(psOut.equals(fromKey)).toBe(true);

    const a = await dir.probe(earlyTs, "early.ts");
    expect(a.errors).toBe("");
    expect(a.streams[0]).toMatchObject({ codec_name: "h264", width: 640, height: 360 });
    expect(Number(a.streams[0]!.nb_read_frames)).toBe(50);

    const b = await dir.probe(lateTs, "late.ts");
    expect(b.errors).toBe("");
    expect(b.streams[0]).toMatchObject({ codec_name: "h264", width: 640, height: 360 });
    expect(Number(b.streams[0]!.nb_read_frames)).toBe(25);
    // The late viewer's TS starts with PAT then PMT.
    expect([lateTs[0], lateTs[1]! & 0x5f, lateTs[2]]).toEqual([0x47, 0x40, 0x00]);

    const c = await dir.probe(psOut, "late.mpg");
    expect(c.errors).toBe("");
    expect(Number(c.streams[0]!.nb_read_frames)).toBe(25);

    expect(relay.stats()).toMatchObject({ viewers: 0, viewersDropped: 0, packsDropped: 0 });
  }, 30_000);
});
