import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { UPLOAD } from "../../edge-agent/signalling/catalogue.ts";
import { eventually, usePlatform } from "./helpers/platform.ts";

/**
 * Capture round trip on the platform as `npm start` composes it: POST /devices/{id}/captures →
 * capture record + `capture` command → the agent's queue → MANUALSNAP with the platform's PicID to
 * a simulator device (which answers 200) → the picture uploaded to the agent's picture server
 * (`POST /pictures`, from the device's address; played by the test until the simulator uploads
 * by itself) → streamed to S3 → media-uploaded on the alarm-events queue → alarms function →
 * capture `ready` → GET /captures/{id} with a presigned URL whose bytes are the upload's.
 * Prints the POST → ready latency (p50/p99) as a JSON line.
 */

const p = usePlatform({ agentEnv: { EHOME_KEEPALIVE_SECONDS: "1" } });

// biome-ignore lint/suspicious/noExplicitAny: response JSON is navigated freely; assertions check it
type Json = any;
const ROUNDS = 20;

function percentile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
}

async function upload(deviceId: string, picId: string, body: Buffer): Promise<number> {
  const { host, port } = p().platform.deviceHttp!.address();
  const query = new URLSearchParams({
    [UPLOAD.fields.deviceId]: deviceId,
    [UPLOAD.fields.picId]: picId,
    [UPLOAD.fields.channel]: "1",
  });
  const res = await fetch(`http://${host}:${port}${UPLOAD.paths.picture}?${query}`, {
    method: "POST",
    headers: { "content-type": "image/jpeg" },
    body,
  });
  await res.arrayBuffer();
  return res.status;
}

describe("captures end to end", () => {
  it("POST → MANUALSNAP → upload → ready with a presigned URL, byte-identical; latency p50/p99", async () => {
    const sim = await p().simulator({ devices: 1, idPrefix: "e2e-cap-" });
    const deviceId = sim.devices[0]!.id;
    await sim.start();
    await sim.waitFor("all-online", 10_000);
    await eventually(async () => {
      const res = await p().api<Json>("GET", `/devices/${deviceId}`);
      return res.body.status === "online" ? true : undefined;
    });

    const latencies: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const jpeg = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), randomBytes(2048)]);
      const started = performance.now();
      const created = await p().api<Json>("POST", `/devices/${deviceId}/captures`, { channel: 1 });
      expect(created.status).toBe(202);
      const { captureId, picId } = created.body;
      expect(await upload(deviceId, picId, jpeg)).toBe(200);
      const ready = await eventually(
        async () => {
          const res = await p().api<Json>("GET", `/captures/${captureId}`);
          return res.body.state === "ready" ? res.body : undefined;
        },
        { timeoutMs: 10_000, intervalMs: 10 },
      );
      latencies.push(performance.now() - started);
      const url = new URL(ready.picture.url);
      expect(url.searchParams.get("response-content-type")).toBe("image/jpeg");
      const fetched = Buffer.from(await (await fetch(url)).arrayBuffer());
      expect(fetched.equals(jpeg)).toBe(true);
      // The MANUALSNAP command went through the command path and succeeded.
      const command = await p().api<Json>("GET", `/commands/${ready.commandId}`);
      expect(command.body).toMatchObject({ type: "capture", params: { picId } });
    }
    const sorted = [...latencies].sort((a, b) => a - b);
    const p50 = Math.round(percentile(sorted, 0.5));
    const p99 = Math.round(percentile(sorted, 0.99));
    console.log(
      JSON.stringify({ bench: "capture-round-trip", rounds: ROUNDS, p50Ms: p50, p99Ms: p99 }),
    );
    expect(p50).toBeLessThan(2_000);
  }, 90_000);
});
