import { once } from "node:events";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { createRelay, type Relay } from "../../../edge-agent/media/relay.ts";
import { hikPs } from "./helpers/ps-fixtures.ts";

const tick = () => new Promise((r) => setImmediate(r));

describe("relay over real HTTP: a client that stops reading", () => {
  let server: http.Server | undefined;
  let relay: Relay | undefined;

  afterEach(async () => {
    relay?.close();
    server?.closeAllConnections();
    if (server) await new Promise((r) => server?.close(r));
  });

  it("is dropped after drainTimeoutMs while a reading client gets every byte", async () => {
    const cap = 256 * 1024;
    relay = createRelay({ maxViewerBufferBytes: cap, drainTimeoutMs: 300 });
    const r = relay;
    const reasons: string[] = [];
    let peakBacklog = 0;
    const responses: http.ServerResponse[] = [];
    server = http.createServer((req, res) => {
      res.writeHead(200, { "content-type": "video/mp2p" });
      responses.push(res);
      r.addViewer(res, "ps", (why) => reasons.push(`${req.url}:${why}`));
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    const port = (server.address() as AddressInfo).port;

    let received = 0;
    const fastDone = new Promise<void>((resolve) => {
      http.get({ host: "127.0.0.1", port, path: "/fast", agent: false }, (res) => {
        res.on("data", (c: Buffer) => {
          received += c.length;
        });
        res.on("end", resolve);
      });
    });
    const slowReq = http.get({ host: "127.0.0.1", port, path: "/slow", agent: false }, (res) => {
      // Stops reading: the kernel buffers fill, then the response's writableLength grows.
      res.pause();
      res.socket.pause();
    });
    slowReq.on("error", () => undefined);
    while (r.stats().viewers < 2) await tick();

    // ~16 MB of PS (more than loopback socket buffers hold), pushed in 64 KiB reads.
    const stream = hikPs({ frames: 400, keyEvery: 50, frameBytes: 40_000, seed: 8 });
    for (let at = 0; at < stream.ps.length; at += 64 * 1024) {
      r.push(stream.ps.subarray(at, at + 64 * 1024));
      const slow = responses[1];
      if (slow) peakBacklog = Math.max(peakBacklog, slow.writableLength);
      await tick();
    }
    const deadline = Date.now() + 5000;
    while (!reasons.includes("/slow:slow") && Date.now() < deadline) {
      await new Promise((res) => setTimeout(res, 50));
    }
    expect(reasons).toContain("/slow:slow");
    expect(r.stats().viewersDropped).toBe(1);
    expect(r.stats().packsDropped).toBeGreaterThan(0);
    // The relay never wrote past the cap into the stalled response (one keyframe pack of slack).
    expect(peakBacklog).toBeLessThanOrEqual(cap + 4 * 40_000 + 1024);
    r.end();
    await fastDone;
    expect(received).toBe(stream.ps.length);
  }, 20_000);
});
