import { describe, expect, it } from "vitest";
import { passthroughReading } from "../../edge-agent/simulator/passthrough-reporter.ts";
import { eventually, usePlatform } from "./helpers/platform.ts";

/**
 * GPS tracks and passthrough (issue 8 items 4-6) through the whole platform `npm start` composes:
 * simulated devices report GPS over UDP (ehome-2.0 §2.9), the agent answers, batches positions per
 * device onto the device-data queue, the device-data function stores them, and the API reads the
 * track back; TRANSPARENT goes to the device and back, and the device's own TRANSPARENT messages
 * are listed.
 */

const POINTS = 1000;
/** Starts on the FE capture's longitude (43713595 E = 121.426653°), drives north-east and back. */
const PATH: [number, number][] = [
  [121.426653, 31.2],
  [121.43, 31.205],
  [121.44, 31.21],
];

const p = usePlatform({ agentEnv: { EHOME_KEEPALIVE_SECONDS: "5" } });

interface TrackBody {
  positions: { time: string; sequence: number; longitude: number; latitude: number }[];
  nextCursor?: string;
}

async function wholeTrack(deviceId: string) {
  const out: TrackBody["positions"] = [];
  let cursor: string | undefined;
  do {
    const qs = new URLSearchParams({ limit: "1000", ...(cursor ? { cursor } : {}) });
    const res = await p().api<TrackBody>("GET", `/devices/${deviceId}/track?${qs}`);
    expect(res.status).toBe(200);
    out.push(...res.body.positions);
    cursor = res.body.nextCursor;
  } while (cursor);
  return out;
}

describe("GPS tracks and passthrough with the simulator", () => {
  it(`a ${POINTS}-point GPS track along a path comes back ordered, de-duplicated, in decimal degrees`, async () => {
    const sim = await p().simulator({
      devices: 1,
      idPrefix: "e2e-gps-",
      gpsIntervalSeconds: 0.005,
      gpsMaxReports: POINTS,
      gpsPath: PATH,
      // A share of answers "lost": those reports come again with RetransFlag 1, same Sequence.
      gpsAnswerLossRate: 0.05,
      gpsRetryMs: 20,
      registerSpreadMs: 0,
    });
    const id = sim.devices[0]!.id;
    await p().api("PUT", `/devices/${id}`, { allowed: true });
    await sim.start();
    await sim.waitFor("all-online", 10_000);

    const track = await eventually(
      async () => {
        const t = await wholeTrack(id);
        return t.length >= POINTS ? t : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    const counters = sim.stats();
    expect(counters.gpsSent).toBe(POINTS);
    expect(counters.gpsResent).toBeGreaterThan(0);
    expect(track).toHaveLength(POINTS);
    expect(new Set(track.map((t) => t.sequence)).size).toBe(POINTS);
    const keys = track.map((t) => `${t.time}#${String(t.sequence).padStart(10, "0")}`);
    expect(keys).toEqual([...keys].sort());
    // The first fix is the first waypoint: 121.426653 E goes out as 43713595 and comes back.
    expect(track[0]).toMatchObject({ longitude: 121.426653, latitude: 31.2 });
    for (const t of track) {
      expect(t.longitude).toBeGreaterThanOrEqual(121.426653);
      expect(t.longitude).toBeLessThanOrEqual(121.44);
      expect(t.latitude).toBeGreaterThanOrEqual(31.2);
      expect(t.latitude).toBeLessThanOrEqual(31.21);
    }

    const latest = await p().api<{ position: { sequence: number } }>(
      "GET",
      `/devices/${id}/position`,
    );
    expect(latest.status).toBe(200);
    expect(latest.body.position.sequence).toBe(track.at(-1)!.sequence);

    const geo = await p().api<{ geometry: { type: string; coordinates: number[][] } }>(
      "GET",
      `/devices/${id}/track?limit=10&format=geojson`,
    );
    expect(geo.body.geometry.type).toBe("LineString");
    expect(geo.body.geometry.coordinates[0]).toEqual([121.426653, 31.2]);
    await sim.close();
    // About 15 s alone (1,000 reports, each waiting for its answer); more beside other e2e files.
  }, 120_000);

  it("passthrough both directions: TRANSPARENT echoed by the device; its own messages listed", async () => {
    const sim = await p().simulator({
      devices: 1,
      idPrefix: "e2e-pt-",
      passthroughIntervalSeconds: 0.2,
      registerSpreadMs: 0,
    });
    const id = sim.devices[0]!.id;
    await p().api("PUT", `/devices/${id}`, { allowed: true });
    await sim.start();
    await sim.waitFor("all-online", 10_000);
    // The registry has applied the device's `registered` event: commands can be routed.
    await eventually(async () => {
      const res = await p().api<{ status: string }>("GET", `/devices/${id}`);
      return res.body.status === "online" ? true : undefined;
    });

    const data = Buffer.from([0x01, 0x03, 0x00, 0x00, 0x00, 0x0a, 0xc5, 0xcd]).toString("base64");
    const sent = await p().api<{ state: string; result: { data: string; channel: number } }>(
      "POST",
      `/devices/${id}/passthrough?wait=10`,
      { channel: 1, data },
    );
    expect(sent.status).toBe(200);
    expect(sent.body).toMatchObject({ state: "succeeded", result: { channel: 1, data } });

    const bad = await p().api("POST", `/devices/${id}/passthrough`, { channel: 1, data: "@@" });
    expect(bad.status).toBe(422);

    const listed = await eventually(
      async () => {
        const res = await p().api<{ messages: { data: string; receivedAt: string }[] }>(
          "GET",
          `/devices/${id}/passthrough`,
        );
        return res.body.messages.length >= 3 ? res.body.messages : undefined;
      },
      { timeoutMs: 20_000, intervalMs: 300 },
    );
    expect(Buffer.from(listed[0]!.data, "base64")).toEqual(passthroughReading(id, 0));
    expect(Buffer.from(listed[1]!.data, "base64")).toEqual(passthroughReading(id, 1));
    const since = await p().api<{ messages: { data: string }[] }>(
      "GET",
      `/devices/${id}/passthrough?since=${encodeURIComponent(listed[0]!.receivedAt)}`,
    );
    expect(Buffer.from(since.body.messages[0]!.data, "base64")).toEqual(passthroughReading(id, 1));
    expect(sim.stats().passthroughAnswered).toBeGreaterThanOrEqual(3);

    const caps = await p().api<{ source: string; capabilities: { abilities: object } }>(
      "GET",
      `/devices/${id}/capabilities`,
    );
    expect(caps.status).toBe(200);
    expect(caps.body.source).toBe("device");
    expect(caps.body.capabilities.abilities).toMatchObject({ channelNumber: 1, preview: true });
    const cached = await p().api<{ source: string }>("GET", `/devices/${id}/capabilities`);
    expect(cached.body.source).toBe("cache");
    await sim.close();
  }, 60_000);
});
