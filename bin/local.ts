import { resolve } from "node:path";
import { createEdgeAgent, type EdgeAgent } from "../edge-agent/agent.ts";
import {
  type CloudAdapters,
  cloudConfigFromEnv,
  createCloudAdapters,
} from "../edge-agent/cloud/index.ts";
import { type AgentConfig, ConfigError, loadConfig } from "../edge-agent/config.ts";
import { createLogger, type Logger } from "../edge-agent/log.ts";
import type { ReportSink } from "../edge-agent/ports.ts";
import { createUdpTransport } from "../edge-agent/signalling/server.ts";
import { createApiAppFromEnv } from "../functions/api/handler.ts";
import { createCommandResultsHandlerFromEnv } from "../functions/command-results/handler.ts";
import { createRegistryHandlerFromEnv } from "../functions/registry/handler.ts";
import { type LocalBackends, startLocalBackends } from "../lib/local/backends.ts";
import {
  DEFAULT_API_PORT,
  type LocalHttpApi,
  resolveApiToken,
  startHttpApi,
} from "../lib/local/http-api.ts";
import {
  createSqsEventSource,
  eventSourceConfigFor,
  type SqsEventSource,
  type SqsHandler,
} from "../lib/local/sqs-event-source.ts";

/**
 * `npm start`: the whole platform on one machine, no AWS account (architecture §5). DynamoDB
 * Local and fauxqs keep their state under `.ehome/`; the Lambda handlers run behind SQS pollers
 * with their event source settings and behind a local HTTP server; the edge agent owns the
 * device ports. The one place that reads process.env and wires the parts; Ctrl-C stops all.
 *
 * Runner variables (besides the agent's EHOME_* ones): EHOME_API_PORT (3000), EHOME_API_HOST
 * (127.0.0.1), EHOME_API_TOKEN (generated), EHOME_DATA_DIR (.ehome), EHOME_DYNAMODB_PORT and
 * EHOME_FAUXQS_PORT (free ports).
 */

type Stop = { name: string; close: () => Promise<void> };

function portFrom(name: string, fallback: number): number {
  const value = process.env[name]?.trim();
  if (!value) return fallback;
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65_535) {
    throw new ConfigError(name, `expected a TCP port (0-65535), got ${JSON.stringify(value)}`);
  }
  return port;
}

async function main(): Promise<void> {
  let agentConfig: AgentConfig;
  let apiPort: number;
  let dbPort: number;
  let sqsPort: number;
  try {
    // A stable id keeps the agent's command queue (named after it) the same across restarts.
    agentConfig = loadConfig({ EHOME_AGENT_ID: "local", ...process.env });
    apiPort = portFrom("EHOME_API_PORT", DEFAULT_API_PORT);
    dbPort = portFrom("EHOME_DYNAMODB_PORT", 0);
    sqsPort = portFrom("EHOME_FAUXQS_PORT", 0);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`npm start: invalid configuration: ${err.message}\n`);
    process.exit(2);
  }
  const log: Logger = createLogger({ level: agentConfig.logLevel });
  const dataDir = resolve(process.env.EHOME_DATA_DIR?.trim() || ".ehome");
  const { token, generated } = resolveApiToken(process.env.EHOME_API_TOKEN);

  const stops: Stop[] = [];
  const missing: string[] = [];
  let stopping: Promise<void> | undefined;
  const stopAll = (reason: string): Promise<void> => {
    stopping ??= (async () => {
      log.info("stopping", { reason });
      // Reverse start order: the agent's shutdown events still reach a running queue.
      for (const part of stops.reverse()) {
        try {
          await part.close();
        } catch (err) {
          log.error("stop failed", { part: part.name, err });
        }
      }
      log.info("stopped");
    })();
    return stopping;
  };
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    // A second Ctrl-C exits at once; DynamoDB Local still dies with us (see lib/local/dynamodb.ts).
    if (++signals > 1) process.exit(130);
    void stopAll(signal).then(() => process.exit(0));
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);

  // 1. Backends: fatal if they cannot start.
  let backends: LocalBackends;
  try {
    backends = await startLocalBackends(
      { dataDir, dynamodbPort: dbPort, fauxqsPort: sqsPort },
      { log: log.child({ part: "backends" }) },
    );
  } catch (err) {
    log.error("embedded backends did not start", { err });
    process.stderr.write(`npm start: ${(err as Error).message}\n`);
    process.exit(1);
  }
  stops.push({ name: "backends", close: backends.close });
  // Functions read their resources, region, dummy credentials and AWS_ENDPOINT_URL_* from the
  // environment, as on Lambda.
  Object.assign(process.env, backends.env);
  const env = process.env;
  const { queues } = backends.resources;

  // 2. SQS consumers, with the event source settings of their queues.
  const pollers: [keyof typeof queues, () => { handler: SqsHandler; close(): void }][] = [
    ["deviceEvents", () => createRegistryHandlerFromEnv(env)],
    ["commandResults", () => createCommandResultsHandlerFromEnv(env)],
  ];
  for (const [key, build] of pollers) {
    const name = queues[key].definition.consumer.handler;
    try {
      const fn = build();
      const source: SqsEventSource = createSqsEventSource(
        eventSourceConfigFor(queues[key], backends.endpoints.region),
        { sqs: backends.clients.sqs, handler: fn.handler, log: log.child({ function: name }) },
      );
      stops.push({
        name,
        close: async () => {
          await source.close();
          fn.close();
        },
      });
    } catch (err) {
      missing.push(`${name} function: ${(err as Error).message}`);
    }
  }

  // 3. The api function behind the local stand-in for API Gateway.
  let api: LocalHttpApi | undefined;
  try {
    const fn = createApiAppFromEnv(env);
    const server = await startHttpApi(
      { port: apiPort, host: process.env.EHOME_API_HOST?.trim() || "127.0.0.1", token },
      { app: fn.app, log: log.child({ function: "api" }) },
    ).catch((err: unknown) => {
      fn.close();
      throw err;
    });
    api = server;
    stops.push({
      name: "api",
      close: async () => {
        await server.close();
        fn.close();
      },
    });
  } catch (err) {
    missing.push(`HTTP API on port ${apiPort}: ${(err as Error).message}`);
  }

  // 4. The edge agent with its cloud adapters: device events to SQS, provisioning from the
  // devices table, its own command queue and heartbeat (so API commands reach it).
  const interimReports: ReportSink = {
    report(report) {
      log.info("device report (not forwarded yet)", {
        kind: report.kind,
        deviceId: report.deviceId,
      });
    },
  };
  // INTEGRATION POINT: alarm/picture/report forwarding (alarms function) is not built yet.
  missing.push("alarm and report forwarding: reports are only logged");
  let agent: EdgeAgent | undefined;
  let cloud: CloudAdapters | undefined;
  try {
    const cloudConfig = cloudConfigFromEnv(env, agentConfig);
    if (!cloudConfig) throw new Error("the local resources did not reach the environment");
    cloud = createCloudAdapters(cloudConfig, {
      sqs: backends.clients.sqs,
      dynamodb: backends.clients.dynamodb,
      log: log.child({ part: "cloud" }),
    });
    agent = createEdgeAgent(agentConfig, {
      transport: createUdpTransport({ host: agentConfig.host, port: agentConfig.signalPort }),
      events: cloud.events,
      provisioning: cloud.provisioning,
      reports: interimReports,
      log: log.child({ part: "agent", agentId: agentConfig.agentId }),
    });
    // Command queue and heartbeat first: the API can route to the agent from then on.
    await cloud.start(agent);
    await agent.start();
    const started = { agent, cloud };
    stops.push({ name: "agent cloud adapters", close: () => started.cloud.close() });
    stops.push({ name: "agent", close: () => started.agent.close() });
  } catch (err) {
    await agent?.close();
    await cloud?.close();
    agent = undefined;
    missing.push(
      `edge agent (UDP ${agentConfig.host}:${agentConfig.signalPort}): ${(err as Error).message}`,
    );
  }

  const signal = agent?.signalAddress();
  log.info("local platform ready", {
    api: api?.url ?? null,
    signalling: signal ? `${signal.host}:${signal.port}` : null,
    dynamodb: backends.endpoints.dynamodb,
    fauxqs: backends.endpoints.fauxqs,
    dataDir,
    startupMs: backends.timings,
    notWired: missing,
  });
  printBanner({ backends, api, token, generated, agent, agentConfig, dataDir, missing });
}

function printBanner(facts: {
  backends: LocalBackends;
  api: LocalHttpApi | undefined;
  token: string;
  generated: boolean;
  agent: EdgeAgent | undefined;
  agentConfig: AgentConfig;
  dataDir: string;
  missing: string[];
}): void {
  const { backends, api, agentConfig: c } = facts;
  const signal = facts.agent?.signalAddress();
  const lines = [
    "",
    "EHOME platform running locally (Ctrl-C stops everything)",
    "",
    `  API            ${api ? api.url : "NOT RUNNING"}`,
    `  API token      ${facts.token}${facts.generated ? "   (generated; set EHOME_API_TOKEN to keep one)" : ""}`,
    `  try            curl -H "Authorization: Bearer ${facts.token}" ${api?.url ?? "http://127.0.0.1:3000"}/devices`,
    "",
    "  Device-facing ports",
    `    signalling   udp ${signal ? `${signal.host}:${signal.port}` : "NOT RUNNING"}   (point devices' EHOME server here; public host ${c.publicHost})`,
    `    alarms       udp ${c.host}:${c.alarmPort}`,
    `    device HTTP  tcp ${c.host}:${c.httpPort}`,
    `    media        tcp ${c.mediaPorts.min}-${c.mediaPorts.max}`,
    "",
    `  Data           ${facts.dataDir}`,
    `  DynamoDB Local ${backends.endpoints.dynamodb}   (started in ${backends.timings.dynamodbMs} ms)`,
    `  SQS + S3       ${backends.endpoints.fauxqs}   (fauxqs, region ${backends.endpoints.region})`,
  ];
  if (facts.missing.length > 0) {
    lines.push("", "  Not wired yet:");
    for (const m of facts.missing) lines.push(`    - ${m}`);
  }
  process.stdout.write(`${lines.join("\n")}\n\n`);
}

await main();
