import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { QueryCommand } from "@aws-sdk/client-dynamodb";
import { GetQueueAttributesCommand } from "@aws-sdk/client-sqs";
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
 * registry function behind the local poller → DynamoDB Local → API. The devices send their first
 * REGISTER spread evenly over `spreadMs` (issue 7: "50,000 devices register within 30 s").
 * Measured: the time until the agent holds every session, until the devices table lists every
 * device online, and until the walk of `GET /devices?status=online` that confirms it through the
 * API ends. The devices table is counted (a Query of the byStatus index, which itself loads
 * DynamoDB Local) only every few seconds while device events are still queued, and at once when
 * the queue is empty, so the measurement does not slow what it measures; the queue depth is
 * sampled every second. A timeline (every 5 s) records where the time goes. The local engines
 * stand in for SQS and DynamoDB, so the cloud-side times describe this machine, not AWS.
 */

/** One sample of the timeline. */
export interface StormSample {
  /** ms since the first REGISTER. */
  t: number;
  /** Sessions the agent holds. */
  sessions: number;
  /** Device events the agent has queued for SQS and not yet had acknowledged. */
  agentQueued: number;
  eventsSent: number;
  /** Messages in the device-events queue (visible + being handled). */
  queueDepth: number;
  /** Devices online in the devices table at the last count (–1 before the first). */
  tableOnline: number;
  provisioningReads: number;
  provisioningShed: number;
}

export interface PlatformStormRun {
  devices: number;
  generators: number;
  /** The first REGISTERs were spread evenly over this. */
  spreadMs: number;
  /** Until the last device got its reply (generators' view). */
  lastReplyMs: number;
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
  /** Until the end of that walk, when it listed every device (else null). */
  apiAllOnlineMs: number | null;
  /** Events the agent sent to SQS during the storm. */
  eventsSent: number | null;
  /** Until the device-events queue was empty with every event sent. */
  queueDrainedMs: number | null;
  /** Provisioning lookups: devices read, BatchGetItem calls, REGISTERs shed (queue full). */
  provisioning: { reads: number; batchReads: number; shed: number; readErrors: number } | null;
  /** Every 5 s. */
  timeline: StormSample[];
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function stormThroughPlatform(o: {
  devices: number;
  generators: number;
  spreadMs: number;
  retryMs: number;
  maxSends: number;
  timeoutMs: number;
  log: (line: string) => void;
}): Promise<PlatformStormRun> {
  const token = randomBytes(12).toString("hex");
  const log = createLogger({ level: "error" });
  // A spill directory of this run only: events the agent still held at a previous run's close
  // (its agent-shutdown offlines) would otherwise be sent again at this start, into this run.
  const spillDir = await mkdtemp(join(tmpdir(), "storm-spill-"));
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
        EHOME_SPILL_DIR: spillDir,
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
    const queueUrl = backends.resources.queues.deviceEvents.url;
    const queueDepth = async (): Promise<number> => {
      const out = await backends.clients.sqs.send(
        new GetQueueAttributesCommand({
          QueueUrl: queueUrl,
          AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        }),
      );
      const a = out.Attributes ?? {};
      return (
        Number(a.ApproximateNumberOfMessages ?? 0) +
        Number(a.ApproximateNumberOfMessagesNotVisible ?? 0)
      );
    };
    const metric = (name: string): number => {
      const m = platform.cloud?.metrics() as Record<string, number> | undefined;
      return m?.[name] ?? 0;
    };
    const events0 = platform.cloud ? metric("events_sent") : null;
    const prov0 = {
      reads: metric("provisioning_reads"),
      batchReads: metric("provisioning_batchReads"),
      shed: metric("provisioning_shed"),
      readErrors: metric("provisioning_readErrors"),
    };
    const started = performance.now();
    const replies = Promise.all(
      g.generators.map((gen, k) =>
        gen.request<RegisterResult>(
          {
            type: "register",
            first: 0,
            count: g.slices[k]!.count,
            window: g.slices[k]!.count,
            spreadMs: o.spreadMs,
            retryMs: o.retryMs,
            maxSends: o.maxSends,
          },
          o.timeoutMs + o.retryMs * o.maxSends,
        ),
      ),
    );
    let lastReplyMs = 0;
    let repliesDone = false;
    void replies.then((parts) => {
      repliesDone = true;
      lastReplyMs = Math.max(0, ...parts.map((p) => p.elapsedMs));
    });
    let agentAllOnlineMs: number | null = null;
    let registryAllOnlineMs: number | null = null;
    let queueDrainedMs: number | null = null;
    let lastCount = -1;
    let nextCount = 5000;
    let countCostMs = 0;
    let nextSample = 0;
    let nextDepth = 0;
    let depth = -1;
    const timeline: StormSample[] = [];
    while (performance.now() - started < o.timeoutMs) {
      const t = performance.now() - started;
      if (agentAllOnlineMs === null && agent.sessions.size >= o.devices) {
        agentAllOnlineMs = Math.round(t);
      }
      if (t >= nextDepth) {
        nextDepth = t + 1000;
        depth = await queueDepth();
        const drained = depth === 0 && agentAllOnlineMs !== null && metric("events_queued") === 0;
        if (drained && queueDrainedMs === null) queueDrainedMs = Math.round(t);
        // Count when the registry may be done (queue empty), else every few seconds, never more
        // than a quarter of the time: the Query loads the DynamoDB Local being measured.
        if (drained || t >= nextCount) {
          const c0 = performance.now();
          lastCount = await countOnline();
          countCostMs = performance.now() - c0;
          nextCount = performance.now() - started + Math.max(5000, 3 * countCostMs);
          if (lastCount >= o.devices) {
            // It was true when the count started.
            registryAllOnlineMs = Math.round(c0 - started);
          }
        }
      }
      if (t >= nextSample || registryAllOnlineMs !== null) {
        nextSample = t + 5000;
        const sample: StormSample = {
          t: Math.round(t),
          sessions: agent.sessions.size,
          agentQueued: metric("events_queued"),
          eventsSent: metric("events_sent") - (events0 ?? 0),
          queueDepth: depth,
          tableOnline: lastCount,
          provisioningReads: metric("provisioning_reads") - prov0.reads,
          provisioningShed: metric("provisioning_shed") - prov0.shed,
        };
        timeline.push(sample);
        o.log(`platform storm: ${JSON.stringify(sample)}`);
      }
      if (registryAllOnlineMs !== null) break;
      // Every device has given up or been answered, and nothing more can come.
      if (repliesDone && agentAllOnlineMs === null && depth === 0) break;
      await sleep(100);
    }
    o.log(
      `platform storm of ${o.devices}: agent all online in ${agentAllOnlineMs ?? "–"} ms, ` +
        `devices table all online in ${registryAllOnlineMs ?? `– (${lastCount} at the end)`} ms`,
    );
    const parts = await replies;
    const eventsSent = events0 === null ? null : metric("events_sent") - events0;
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
    const walkEnd = performance.now();
    const sends = parts.reduce((a, p) => a + p.sends, 0);
    return {
      devices: o.devices,
      generators: g.generators.length,
      spreadMs: o.spreadMs,
      lastReplyMs,
      registered: parts.reduce((a, p) => a + p.registered, 0),
      failed: parts.reduce((a, p) => a + p.failed, 0),
      refused: parts.reduce((a, p) => a + p.refused, 0),
      retries: sends - o.devices,
      agentAllOnlineMs,
      registryAllOnlineMs,
      apiListedOnline: listed,
      apiWalkMs: round(walkEnd - walkStart),
      apiAllOnlineMs: listed >= o.devices ? Math.round(walkEnd - started) : null,
      eventsSent,
      queueDrainedMs,
      provisioning: platform.cloud
        ? {
            reads: metric("provisioning_reads") - prov0.reads,
            batchReads: metric("provisioning_batchReads") - prov0.batchReads,
            shed: metric("provisioning_shed") - prov0.shed,
            readErrors: metric("provisioning_readErrors") - prov0.readErrors,
          }
        : null,
      timeline,
    };
  } finally {
    await generators.close();
    await platform.close("bench done");
    await rm(spillDir, { recursive: true, force: true });
  }
}
