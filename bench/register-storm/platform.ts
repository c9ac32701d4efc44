import { randomBytes } from "node:crypto";
import { QueryCommand } from "@aws-sdk/client-dynamodb";
import { createLocalPlatform } from "../../bin/local-platform.ts";
import { loadConfig } from "../../edge-agent/config.ts";
import { createLogger } from "../../edge-agent/log.ts";
import { DEVICES_BY_STATUS_INDEX } from "../../lib/contracts/tables.ts";
import { startGenerators } from "../lib/fleet.ts";
import { round } from "../lib/stats.ts";
import type { RegisterResult } from "../signalling/protocol.ts";
import { AGENT_ENV } from "../signalling/run.ts";

/**
 * The register storm against the whole platform as `npm start` composes it
 * (bin/local-platform.ts, in memory): agent + cloud adapters → device-events queue (fauxqs) →
 * registry function behind the local poller → DynamoDB Local → API. Measured: the time until the
 * agent holds every session, until the devices table lists every device online (counted by a
 * Query of the byStatus index every second), and, once, the walk of `GET /devices?status=online`
 * that confirms the count through the API. The local engines stand in for SQS and DynamoDB, so
 * the cloud-side times describe this machine, not AWS.
 */

export interface PlatformStormRun {
  devices: number;
  generators: number;
  registered: number;
  failed: number;
  refused: number;
  retries: number;
  /** Until the agent held a session for every device. */
  agentAllOnlineMs: number | null;
  /** Until the devices table listed every device online (registry applied every event). */
  registryAllOnlineMs: number | null;
  /** Devices the API listed online at the end (`GET /devices?status=online`, every page). */
  apiListedOnline: number;
  apiWalkMs: number;
  /** Events the agent sent to SQS during the storm. */
  eventsSent: number | null;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function stormThroughPlatform(o: {
  devices: number;
  generators: number;
  retryMs: number;
  maxSends: number;
  timeoutMs: number;
  log: (line: string) => void;
}): Promise<PlatformStormRun> {
  const token = randomBytes(12).toString("hex");
  const log = createLogger({ level: "error" });
  const platform = createLocalPlatform(
    {
      backends: { prefix: `storm${randomBytes(3).toString("hex")}` },
      api: { port: 0, host: "127.0.0.1", token },
      agent: loadConfig({
        ...AGENT_ENV,
        EHOME_AGENT_ID: "bench-storm-platform",
        EHOME_ALARM_PORT: "0",
        EHOME_HTTP_PORT: "0",
        EHOME_LOG_LEVEL: "error",
      }),
      env: { AWS_LAMBDA_LOG_LEVEL: "error" },
      agentSweepIntervalMs: 0,
      upgradesTickMs: 0,
    },
    { log },
  );
  await platform.start();
  const fleetless = { close: async () => {} };
  let generators = fleetless as Awaited<ReturnType<typeof startGenerators>> | typeof fleetless;
  try {
    const agent = platform.agent;
    const backends = platform.backends;
    if (!agent || !backends || !platform.api) {
      throw new Error(`platform did not start: ${platform.missing.join("; ")}`);
    }
    const address = agent.signalAddress();
    const g = await startGenerators({
      target: { host: address.host, port: address.port },
      devices: o.devices,
      generators: o.generators,
      idPrefix: "PSTORM",
    });
    generators = g;
    const countOnline = async (): Promise<number> => {
      let n = 0;
      let start: Record<string, unknown> | undefined;
      do {
        const out = await backends.clients.dynamodb.send(
          new QueryCommand({
            TableName: backends.resources.tables.devices,
            IndexName: DEVICES_BY_STATUS_INDEX,
            KeyConditionExpression: "#s = :s",
            ExpressionAttributeNames: { "#s": "status" },
            ExpressionAttributeValues: { ":s": { S: "online" } },
            Select: "COUNT",
            ...(start ? { ExclusiveStartKey: start as never } : {}),
          }),
        );
        n += out.Count ?? 0;
        start = out.LastEvaluatedKey;
      } while (start);
      return n;
    };
    const events0 = platform.cloud?.metrics().events_sent ?? null;
    const started = performance.now();
    const replies = Promise.all(
      g.generators.map((gen, k) =>
        gen.request<RegisterResult>(
          {
            type: "register",
            first: 0,
            count: g.slices[k]!.count,
            window: g.slices[k]!.count,
            retryMs: o.retryMs,
            maxSends: o.maxSends,
          },
          o.timeoutMs + o.retryMs * o.maxSends,
        ),
      ),
    );
    let agentAllOnlineMs: number | null = null;
    let registryAllOnlineMs: number | null = null;
    let lastCount = -1;
    let nextCount = 0;
    while (performance.now() - started < o.timeoutMs) {
      const t = performance.now() - started;
      if (agentAllOnlineMs === null && agent.sessions.size >= o.devices) {
        agentAllOnlineMs = Math.round(t);
      }
      if (t >= nextCount) {
        nextCount = t + 1000;
        lastCount = await countOnline();
        if (lastCount >= o.devices) {
          registryAllOnlineMs = Math.round(performance.now() - started);
          break;
        }
      }
      await sleep(50);
    }
    o.log(
      `platform storm of ${o.devices}: agent all online in ${agentAllOnlineMs ?? "–"} ms, ` +
        `devices table all online in ${registryAllOnlineMs ?? `– (${lastCount} after the timeout)`} ms`,
    );
    const parts = await replies;
    const eventsSent =
      events0 === null ? null : (platform.cloud?.metrics().events_sent ?? 0) - events0;
    // The API's view, once: every page of GET /devices?status=online.
    const walkStart = performance.now();
    let listed = 0;
    let cursor: string | undefined;
    do {
      const res = await fetch(
        `${platform.api.url}/devices?status=online&limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`,
        { headers: { authorization: `Bearer ${token}` } },
      );
      const body = (await res.json()) as { items: unknown[]; nextCursor?: string };
      listed += body.items.length;
      cursor = body.nextCursor;
    } while (cursor);
    const sends = parts.reduce((a, p) => a + p.sends, 0);
    return {
      devices: o.devices,
      generators: g.generators.length,
      registered: parts.reduce((a, p) => a + p.registered, 0),
      failed: parts.reduce((a, p) => a + p.failed, 0),
      refused: parts.reduce((a, p) => a + p.refused, 0),
      retries: sends - o.devices,
      agentAllOnlineMs,
      registryAllOnlineMs,
      apiListedOnline: listed,
      apiWalkMs: round(performance.now() - walkStart),
      eventsSent,
    };
  } finally {
    await generators.close();
    await platform.close("bench done");
  }
}
