import { resolve } from "node:path";
import type { EdgeAgent } from "../edge-agent/agent.ts";
import { type AgentConfig, ConfigError, loadConfig } from "../edge-agent/config.ts";
import { createLogger, type Logger } from "../edge-agent/log.ts";
import type { LocalBackends } from "../lib/local/backends.ts";
import { DEFAULT_API_PORT, type LocalHttpApi, resolveApiToken } from "../lib/local/http-api.ts";
import { createLocalPlatform } from "./local-platform.ts";

/**
 * `npm start`: the whole platform on one machine, no AWS account (architecture §5). DynamoDB
 * Local and fauxqs keep their state under `.ehome/`; the Lambda handlers run behind SQS pollers
 * with their event source settings and behind a local HTTP server; the edge agent owns the
 * device ports (all composed in ./local-platform.ts). The one place that reads process.env;
 * Ctrl-C stops all.
 *
 * Runner variables (besides the agent's EHOME_* ones): EHOME_API_PORT (3000), EHOME_API_HOST
 * (127.0.0.1), EHOME_API_TOKEN (generated), EHOME_DATA_DIR (.ehome), EHOME_DYNAMODB_PORT and
 * EHOME_FAUXQS_PORT (free ports).
 */

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

  const platform = createLocalPlatform(
    {
      backends: { dataDir, dynamodbPort: dbPort, fauxqsPort: sqsPort },
      api: { port: apiPort, host: process.env.EHOME_API_HOST?.trim() || "127.0.0.1", token },
      agent: agentConfig,
      env: process.env,
    },
    { log },
  );
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    // A second Ctrl-C exits at once; DynamoDB Local still dies with us (see lib/local/dynamodb.ts).
    if (++signals > 1) process.exit(130);
    void platform.close(signal).then(() => process.exit(0));
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);

  try {
    await platform.start();
  } catch (err) {
    log.error("embedded backends did not start", { err });
    process.stderr.write(`npm start: ${(err as Error).message}\n`);
    process.exit(1);
  }
  const backends = platform.backends;
  if (!backends) return; // stopped by a signal while starting
  const { api, agent } = platform;
  const missing = [...platform.missing];

  const signal = agent?.signalAddress();
  log.info("local platform ready", {
    api: api?.url ?? null,
    signalling: signal ? `${signal.host}:${signal.port}` : null,
    deviceHttp: platform.deviceHttp
      ? `${platform.deviceHttp.address().host}:${platform.deviceHttp.address().port}`
      : null,
    dynamodb: backends.endpoints.dynamodb,
    fauxqs: backends.endpoints.fauxqs,
    dataDir,
    startupMs: backends.timings,
    notWired: missing,
  });
  const deviceHttp = platform.deviceHttp?.address();
  const deviceHttps = platform.deviceHttps?.address();
  printBanner({
    backends,
    api,
    token,
    generated,
    agent,
    agentConfig,
    dataDir,
    missing,
    deviceHttp,
    deviceHttps,
  });
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
  deviceHttp: { host: string; port: number } | undefined;
  deviceHttps: { host: string; port: number } | undefined;
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
    `    alarms       udp ${facts.agent?.alarmAddress() ? `${facts.agent.alarmAddress()!.host}:${facts.agent.alarmAddress()!.port}` : "NOT RUNNING"}   (ALARM; announced in the REGISTER reply)`,
    `    device HTTP  tcp ${facts.deviceHttp ? `${facts.deviceHttp.host}:${facts.deviceHttp.port}` : "NOT RUNNING"}   (GET /healthz, POST /pictures, POST /videos, GET /fw/<token>)`,
    ...(c.httpsListen
      ? [
          `    device HTTPS tcp ${facts.deviceHttps ? `${facts.deviceHttps.host}:${facts.deviceHttps.port}` : "NOT RUNNING"}   (the same routes over TLS; firmware URLs are https)`,
        ]
      : []),
    `    media        tcp ${c.mediaPorts.min}-${c.mediaPorts.max}   (one port per live, playback, download or talk session, TCP or UDP; viewers on EHOME_VIEWER_PORT)`,
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
