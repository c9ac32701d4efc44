import { randomBytes } from "node:crypto";
import { afterAll, beforeAll } from "vitest";
import {
  createLocalPlatform,
  type LocalAgent,
  type LocalPlatform,
  type LocalPlatformOptions,
} from "../../../bin/local-platform.ts";
import type { EdgeAgent } from "../../../edge-agent/agent.ts";
import { loadConfig } from "../../../edge-agent/config.ts";
import { createLogger } from "../../../edge-agent/log.ts";
import {
  createSimulator,
  type Simulator,
  type SimulatorOptions,
} from "../../../edge-agent/simulator/index.ts";
import type { LocalBackends } from "../../../lib/local/backends.ts";
import { uniquePrefix } from "../../helpers/local-backends.ts";

/**
 * The platform `npm start` runs (bin/local-platform.ts), started once per test file on in-memory
 * backends with a unique resource prefix, free ports and the given agent variables, plus simulators
 * pointed at its agent. Everything is closed in afterAll. `EHOME_TEST_LOG=debug` shows the logs.
 *
 *   const p = usePlatform({ agentEnv: { EHOME_KEEPALIVE_SECONDS: "1" } });
 *   const res = await p().api("GET", "/devices");
 */

export interface PlatformFixtureOptions {
  /** EHOME_* variables of the in-process agent; `false` runs no agent in this process. */
  agentEnv?: Record<string, string> | false;
  /** Backend tuning (e.g. a short visibility timeout for DLQ tests). */
  backends?: Omit<LocalPlatformOptions["backends"], "dataDir" | "prefix">;
  /**
   * Data folder of the backends (DynamoDB Local on disk under `dynamodb/`, fauxqs snapshots under
   * `fauxqs/`); unset keeps both in memory. The engines-stopped fault test needs DynamoDB on disk.
   */
  dataDir?: string;
  api?: LocalPlatformOptions["api"]["config"];
  cloud?: LocalPlatformOptions["cloud"];
  /** Environment of the functions (e.g. `ALARM_MEDIA_DEADLINE_SECONDS`). */
  env?: LocalPlatformOptions["env"];
  /** See `LocalPlatformOptions.alarmSweepIntervalMs`. */
  alarmSweepIntervalMs?: number;
  /** Upgrade engine tick interval (`LocalPlatformOptions.upgradesTickMs`). */
  upgradesTickMs?: number;
  /**
   * More in-process agents (multi-agent), one per entry: EHOME_* variables over the first agent's
   * (each gets its own id `<agentId>-<n>` and free ports). Reach them through `agents`.
   */
  extraAgentEnvs?: Record<string, string>[];
  /** See `LocalPlatformOptions.agentSweepIntervalMs`. */
  agentSweepIntervalMs?: number;
}

export interface ApiResponse<T = Record<string, unknown>> {
  status: number;
  body: T;
}

export interface PlatformFixture {
  readonly platform: LocalPlatform;
  readonly backends: LocalBackends;
  readonly agent: EdgeAgent;
  readonly agentId: string;
  readonly apiUrl: string;
  readonly token: string;
  /** A request with the bearer token (or `token: null` for none), JSON in and out. */
  api<T = Record<string, unknown>>(
    method: string,
    path: string,
    body?: unknown,
    token?: string | null,
  ): Promise<ApiResponse<T>>;
  /** Every in-process agent: the first, then one per `extraAgentEnvs` entry. */
  readonly agents: readonly LocalAgent[];
  /** A simulator against the in-process agent (or `agent`), closed in afterAll. */
  simulator(
    options: Omit<SimulatorOptions, "agent"> & Partial<Pick<SimulatorOptions, "agent">>,
  ): Promise<Simulator>;
  /**
   * A cloud outage (issue 7): every call of the backends' SQS, S3 and/or DynamoDB clients (the agents, the
   * functions' pollers, the API) fails at once with a connection error until `restore()` (also
   * done in afterAll).
   */
  cloudOutage(services: readonly ("sqs" | "s3" | "dynamodb")[]): { restore(): void };
}

/** The part of an SDK v3 client's middleware stack an outage needs. */
interface MiddlewareHost {
  middlewareStack: {
    add(middleware: unknown, options: { step: string; name: string; priority: string }): void;
    remove(name: string): boolean;
  };
}

export function usePlatform(options: PlatformFixtureOptions = {}): () => PlatformFixture {
  let fixture: PlatformFixture | undefined;
  let platform: LocalPlatform | undefined;
  const outages: Array<{ restore(): void }> = [];
  const simulators: Simulator[] = [];

  beforeAll(async () => {
    const token = randomBytes(12).toString("hex");
    const agentId = uniquePrefix("agent");
    const level = process.env.EHOME_TEST_LOG === "debug" ? "debug" : "silent";
    const log = createLogger({ level, bindings: { test: "e2e" } });
    const configOf = (id: string, extra: Record<string, string> = {}) =>
      loadConfig(
        {
          EHOME_AGENT_ID: id,
          EHOME_HOST: "127.0.0.1",
          EHOME_SIGNAL_PORT: "0",
          EHOME_ALARM_PORT: "0",
          EHOME_HTTP_PORT: "0",
          EHOME_LOG_LEVEL: level,
          ...(options.agentEnv || {}),
          ...extra,
        },
        { hostname: "e2e", pid: process.pid },
      );
    const agentConfig = options.agentEnv === false ? false : configOf(agentId);
    const extraAgents = (options.extraAgentEnvs ?? []).map((env, i) =>
      configOf(`${agentId}-${i + 2}`, env),
    );
    const p = createLocalPlatform(
      {
        backends: {
          prefix: uniquePrefix("e2e"),
          ...options.backends,
          ...(options.dataDir === undefined ? {} : { dataDir: options.dataDir }),
        },
        api: { port: 0, host: "127.0.0.1", token, config: options.api },
        agent: agentConfig,
        ...(extraAgents.length > 0 ? { extraAgents } : {}),
        ...(options.agentSweepIntervalMs === undefined
          ? {}
          : { agentSweepIntervalMs: options.agentSweepIntervalMs }),
        // Short linger: events reach the registry in tens of ms (the default 100 ms also works).
        cloud: { events: { lingerMs: 20 }, ...options.cloud },
        ...(options.env ? { env: options.env } : {}),
        ...(options.alarmSweepIntervalMs === undefined
          ? {}
          : { alarmSweepIntervalMs: options.alarmSweepIntervalMs }),
        ...(options.upgradesTickMs === undefined ? {} : { upgradesTickMs: options.upgradesTickMs }),
      },
      { log },
    );
    platform = p;
    await p.start();
    const expectedMissing = options.agentEnv === false ? 0 : 1; // alarm forwarding, not built yet
    const expectedAgents = (agentConfig ? 1 : 0) + extraAgents.length;
    if (
      !p.backends ||
      !p.api ||
      (agentConfig && !p.agent) ||
      p.agents.length !== expectedAgents ||
      p.missing.length > expectedMissing * Math.max(1, expectedAgents)
    ) {
      throw new Error(`platform did not fully start: ${p.missing.join("; ")}`);
    }
    const apiUrl = p.api.url;
    fixture = {
      platform: p,
      backends: p.backends,
      get agent() {
        if (!p.agent) throw new Error("no agent in this process");
        return p.agent;
      },
      agentId,
      agents: p.agents,
      apiUrl,
      token,
      async api<T>(method: string, path: string, body?: unknown, bearer: string | null = token) {
        const headers: Record<string, string> = {};
        if (bearer !== null) headers.authorization = `Bearer ${bearer}`;
        if (body !== undefined) headers["content-type"] = "application/json";
        const res = await fetch(`${apiUrl}${path}`, {
          method,
          headers,
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        });
        const text = await res.text();
        return { status: res.status, body: (text ? JSON.parse(text) : {}) as T };
      },
      async simulator(simOptions) {
        const agent =
          simOptions.agent ??
          (() => {
            const address = fixture!.agent.signalAddress();
            return { host: address.host, port: address.port };
          })();
        const sim = await createSimulator({ registerSpreadMs: 50, ...simOptions, agent });
        simulators.push(sim);
        return sim;
      },
      cloudOutage(services) {
        const name = `e2e-cloud-outage-${outages.length + 1}`;
        const clients = services.map((k) => p.backends!.clients[k] as unknown as MiddlewareHost);
        const refuse = () => async () => {
          throw Object.assign(new Error("connect ECONNREFUSED (e2e cloud outage)"), {
            code: "ECONNREFUSED",
          });
        };
        for (const client of clients) {
          client.middlewareStack.add(refuse, { step: "initialize", name, priority: "high" });
        }
        let restored = false;
        const outage = {
          restore() {
            if (restored) return;
            restored = true;
            for (const client of clients) client.middlewareStack.remove(name);
          },
        };
        outages.push(outage);
        return outage;
      },
    };
  });

  afterAll(async () => {
    for (const o of outages.splice(0)) o.restore();
    await Promise.all(simulators.splice(0).map((s) => s.close()));
    await platform?.close("tests done");
    platform = undefined;
    fixture = undefined;
  });

  return () => {
    if (!fixture) throw new Error("the platform is not running (use inside a test)");
    return fixture;
  };
}

/** Polls `probe` until it returns a value other than undefined (like `eventually`, named for API reads). */
export { eventually } from "../../helpers/local-backends.ts";
