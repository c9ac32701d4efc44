/**
 * Time to first byte (issue 4, bench/media): from `POST /devices/{id}/streams` (a live stream) to
 * the first byte at a PS viewer, through the platform `npm start` runs (bin/local-platform.ts: the
 * api function, the agent's command queue, the in-process agent with its media module, the viewer
 * port) with one simulator device pushing in real time. The viewer GETs `urls.ps` as soon as the
 * POST answers. Each run stops its stream (`DELETE /streams/{id}`) and waits until the device
 * stream is gone, so every run opens a new device stream. Median and p95 over the runs.
 */
import { randomBytes } from "node:crypto";
import { createServer } from "node:net";
import { createLocalPlatform } from "../../bin/local-platform.ts";
import { loadConfig } from "../../edge-agent/config.ts";
import { createLogger } from "../../edge-agent/log.ts";
import { createSimulator } from "../../edge-agent/simulator/index.ts";
import { median, quantile, round } from "../lib/stats.ts";

export interface FirstByteOptions {
  runs: number;
  streamType: "main" | "sub";
}

export interface FirstByteRun {
  /** POST sent → its 201. */
  postMs: number;
  /** POST sent → the first body byte at the viewer. */
  firstByteMs: number;
}

export interface FirstByteScenario {
  name: "time-to-first-byte";
  runs: number;
  streamType: "main" | "sub";
  postMsMedian: number;
  postMsP95: number;
  firstByteMsMedian: number;
  firstByteMsP95: number;
  firstByteMsMax: number;
  perRun: FirstByteRun[];
}

// biome-ignore lint/suspicious/noExplicitAny: API answers are navigated freely and checked at run time
type Json = Record<string, any>;

async function freeRange(n: number): Promise<number> {
  const canBind = (port: number) =>
    new Promise<boolean>((resolve) => {
      const s = createServer();
      s.once("error", () => resolve(false));
      s.listen({ port, host: "127.0.0.1", exclusive: true }, () => s.close(() => resolve(true)));
    });
  for (let attempt = 0; attempt < 50; attempt++) {
    const min = 40_000 + Math.floor(Math.random() * 10_000);
    let ok = true;
    for (let p = min; p < min + n && ok; p++) ok = await canBind(p);
    if (ok) return min;
  }
  throw new Error(`no ${n} consecutive free ports`);
}

async function eventually<T>(probe: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error("timed out waiting");
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Resolves with the time the first body byte arrived, then drops the connection. */
async function firstByteAt(url: string): Promise<number> {
  const controller = new AbortController();
  const res = await fetch(url, { signal: controller.signal });
  if (res.status !== 200) throw new Error(`viewer: HTTP ${res.status}`);
  const reader = res.body!.getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) throw new Error("viewer: the stream ended before any byte");
    if (value.length > 0) {
      const at = performance.now();
      controller.abort();
      await reader.cancel().catch(() => {});
      return at;
    }
  }
}

export async function runFirstByteBench(options: FirstByteOptions): Promise<FirstByteScenario> {
  const token = randomBytes(12).toString("hex");
  const log = createLogger({ level: "silent", bindings: { bench: "media-first-byte" } });
  const mediaBase = await freeRange(8);
  const platform = createLocalPlatform(
    {
      backends: { prefix: `bench-${randomBytes(4).toString("hex")}` },
      api: { port: 0, host: "127.0.0.1", token },
      agent: loadConfig(
        {
          EHOME_AGENT_ID: `bench-${randomBytes(3).toString("hex")}`,
          EHOME_HOST: "127.0.0.1",
          EHOME_PUBLIC_HOST: "127.0.0.1",
          EHOME_SIGNAL_PORT: "0",
          EHOME_ALARM_PORT: "0",
          EHOME_HTTP_PORT: "0",
          EHOME_VIEWER_PORT: "0",
          EHOME_KEEPALIVE_SECONDS: "5",
          EHOME_MEDIA_PORTS: `${mediaBase}-${mediaBase + 7}`,
          EHOME_LOG_LEVEL: "silent",
        },
        { hostname: "bench", pid: process.pid },
      ),
      cloud: { events: { lingerMs: 20 } },
    },
    { log },
  );
  let sim: Awaited<ReturnType<typeof createSimulator>> | undefined;
  try {
    await platform.start();
    if (!platform.api || !platform.agent) {
      throw new Error(`platform did not start: ${platform.missing.join("; ")}`);
    }
    const apiUrl = platform.api.url;
    const api = async (method: string, path: string, body?: unknown) => {
      const res = await fetch(`${apiUrl}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${token}`,
          ...(body === undefined ? {} : { "content-type": "application/json" }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      const text = await res.text();
      return { status: res.status, body: (text ? JSON.parse(text) : {}) as Json };
    };
    const address = platform.agent.signalAddress();
    sim = await createSimulator({
      devices: 1,
      idPrefix: "tfb-",
      registerSpreadMs: 10,
      agent: { host: address.host, port: address.port },
    });
    await sim.start();
    await sim.waitFor("all-online", 15_000);
    const deviceId = sim.devices[0]!.id;
    await eventually(async () => {
      const res = await api("GET", `/devices/${deviceId}`);
      return res.body.status === "online" ? true : undefined;
    }, 15_000);

    const runs: FirstByteRun[] = [];
    for (let r = 0; r < options.runs; r++) {
      const t0 = performance.now();
      const started = await api("POST", `/devices/${deviceId}/streams`, {
        kind: "live",
        channel: 1,
        streamType: options.streamType,
      });
      const tPost = performance.now();
      if (started.status !== 201) {
        throw new Error(`POST /streams: ${started.status} ${JSON.stringify(started.body)}`);
      }
      const tFirst = await firstByteAt(started.body.urls.ps as string);
      runs.push({ postMs: round(tPost - t0, 1), firstByteMs: round(tFirst - t0, 1) });
      const streamId = started.body.streamId as string;
      await api("DELETE", `/streams/${streamId}`);
      // The next run must open a new device stream, not join this one: wait until the stop
      // reached the streams table, then a little for the device connection to close.
      await eventually(async () => {
        const res = await api("GET", `/streams/${streamId}`);
        return res.body.state === "stopped" ? true : undefined;
      }, 10_000).catch(() => undefined);
      await new Promise((r) => setTimeout(r, 200));
    }
    const post = runs.map((x) => x.postMs);
    const first = runs.map((x) => x.firstByteMs);
    return {
      name: "time-to-first-byte",
      runs: runs.length,
      streamType: options.streamType,
      postMsMedian: round(median(post), 1),
      postMsP95: round(quantile(post, 0.95), 1),
      firstByteMsMedian: round(median(first), 1),
      firstByteMsP95: round(quantile(first, 0.95), 1),
      firstByteMsMax: round(Math.max(...first), 1),
      perRun: runs,
    };
  } finally {
    await sim?.close();
    await platform.close("bench done");
  }
}
