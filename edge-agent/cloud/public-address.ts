import { isIPv4 } from "node:net";
import {
  DescribeNetworkInterfacesCommand,
  EC2Client,
  type NetworkInterface,
} from "@aws-sdk/client-ec2";
import type { AgentConfig, Env } from "../config.ts";
import { type Logger, silentLogger } from "../log.ts";
import { asGetter, backoffMs, type ClientSource, sleep } from "./aws.ts";

/**
 * The ECS task's own public IPv4 (issue 4 item 8, issue 7 item 2; docs/infrastructure.md "The
 * addresses devices use"). A Fargate task in a public subnet with `assignPublicIp` has a public
 * address on its network interface, but nothing inside the container tells it: the task metadata
 * endpoint v4 (`${ECS_CONTAINER_METADATA_URI_V4}/task`) gives the interface's private IPv4 and MAC
 * address, and `ec2:DescribeNetworkInterfaces` filtered by them gives its `Association.PublicIp`.
 *
 * With `EHOME_PUBLIC_HOST_DISCOVERY=ecs` main.ts announces that address instead of
 * `EHOME_PUBLIC_HOST` (the NLB): `AlarmServerIP` / `PictureServer` in the REGISTER reply
 * (ehome-2.0 §2.1), `SinkIP` of streams and talk, firmware URLs, and the heartbeat's `publicHost`
 * (the API's stream and talk URLs). Devices keep signalling to the NLB address they are configured
 * with; everything they open after REGISTER then reaches the task that holds their session.
 *
 * Failure policy: discovery retries with backoff within `EHOME_PUBLIC_HOST_DISCOVERY_SECONDS`
 * (default 30 s, inside the 60 s health-check grace of the ECS service), stopping early on errors
 * that retrying cannot fix (no metadata endpoint, refused permission, malformed answers). Then the
 * agent starts anyway, announcing `EHOME_PUBLIC_HOST`, with an error log and `publicHost.error` in
 * `/healthz`. Refusing to start would turn a transient EC2 API problem, or a missing permission,
 * into a restart loop of every task, and with it an outage of signalling for the whole fleet;
 * announcing the NLB is what the agent did before discovery existed (signalling, commands,
 * alarms and uploads work with one task; media and several tasks need the task's address), so the
 * fallback is never worse than that. The address is resolved once: fix the cause and replace the
 * task (`aws ecs update-service --force-new-deployment`).
 */

/** Standard variables (ECS and the AWS SDK), not ours: not in lib/contracts/env.ts. */
export const PUBLIC_ADDRESS_ENV = {
  /** Injected by ECS (Fargate platform 1.4.0+, EC2 agent 1.39.0+). */
  metadataUri: "ECS_CONTAINER_METADATA_URI_V4",
  region: "AWS_REGION",
  defaultRegion: "AWS_DEFAULT_REGION",
  endpoint: "AWS_ENDPOINT_URL",
  ec2Endpoint: "AWS_ENDPOINT_URL_EC2",
} as const;

export type PublicAddressErrorCode =
  /** `ECS_CONTAINER_METADATA_URI_V4` is not set: not running on ECS (or too old a platform). */
  | "METADATA_UNSET"
  /** The metadata endpoint did not answer (connection error, timeout, 5xx). */
  | "METADATA_UNREACHABLE"
  /** It answered something without a task network (no awsvpc network, no IPv4, 4xx, not JSON). */
  | "METADATA_INVALID"
  /** The EC2 API failed (connection error, timeout, throttling, 5xx, refused permission…). */
  | "EC2_ERROR"
  /** No network interface has the task's private address (yet). */
  | "ENI_NOT_FOUND"
  /** More than one does (the same private IP in several VPCs, and no MAC address to tell). */
  | "ENI_AMBIGUOUS"
  /** The interface has no public IPv4: the service runs without `assignPublicIp`. */
  | "NO_PUBLIC_IP";

export class PublicAddressError extends Error {
  readonly code: PublicAddressErrorCode;
  /** Worth another attempt (transient), as opposed to a configuration that retrying cannot fix. */
  readonly retryable: boolean;
  /** Attempts made when discovery gave up (set by `discoverEcsPublicAddress`). */
  attempts: number | undefined;
  constructor(code: PublicAddressErrorCode, message: string, retryable: boolean) {
    super(message);
    this.name = "PublicAddressError";
    this.code = code;
    this.retryable = retryable;
    this.attempts = undefined;
  }
}

export interface DiscoveredAddress {
  publicIp: string;
  privateIp: string;
  networkInterfaceId: string;
  /** Attempts it took (1 = first try). */
  attempts: number;
}

export interface EcsPublicAddressConfig {
  /** `ECS_CONTAINER_METADATA_URI_V4`; undefined fails with `METADATA_UNSET`. */
  metadataUri: string | undefined;
  /** Unset: the SDK's chain, then the region in the task ARN. */
  region?: string;
  /** `AWS_ENDPOINT_URL_EC2` (or `AWS_ENDPOINT_URL`): tests point it at a local server. */
  ec2Endpoint?: string;
  /** Static credentials (tests); on AWS the task role through the default chain. */
  credentials?: { accessKeyId: string; secretAccessKey: string };
  /** Budget of the whole discovery, retries and backoff included. */
  deadlineMs: number;
  /** Each HTTP call (metadata GET, DescribeNetworkInterfaces) is abandoned after this. Default 3 s. */
  attemptTimeoutMs?: number;
  /** Backoff between attempts (equal jitter, `backoffMs`). Default 250 ms doubling to 4 s. */
  retry?: { baseMs: number; maxMs: number };
}

/** The slice of the EC2 client used here. */
export type Ec2Sender = Pick<EC2Client, "send">;

export interface EcsPublicAddressDeps {
  /** A client (tests); by default one is built from the config and destroyed afterwards. */
  ec2?: ClientSource<Ec2Sender>;
  log?: Logger;
  random?: () => number;
  now?: () => number;
  /** Aborts the discovery (shutdown during start-up): rejects with the last error. */
  signal?: AbortSignal;
}

/** The part of the task metadata v4 `/task` answer read here. */
interface TaskMetadata {
  TaskARN?: unknown;
  Containers?: unknown;
}

interface TaskNetwork {
  privateIp: string;
  mac: string | undefined;
  region: string | undefined;
}

/**
 * The task's awsvpc network from `/task`: every container of an awsvpc task shares the task's
 * interface, so the first container network with an IPv4 address is it (`IPv4Addresses[0]`, the
 * interface's primary private address; `MACAddress` narrows the EC2 lookup to that interface).
 */
export function taskNetwork(body: unknown): TaskNetwork {
  const task = (typeof body === "object" && body !== null ? body : {}) as TaskMetadata;
  const containers = Array.isArray(task.Containers) ? task.Containers : [];
  for (const container of containers) {
    const networks = (container as { Networks?: unknown } | null)?.Networks;
    if (!Array.isArray(networks)) continue;
    for (const network of networks) {
      const n = (network ?? {}) as {
        NetworkMode?: unknown;
        IPv4Addresses?: unknown;
        MACAddress?: unknown;
      };
      const ip = Array.isArray(n.IPv4Addresses) ? n.IPv4Addresses[0] : undefined;
      if (typeof ip !== "string" || !isIPv4(ip)) continue;
      if (n.NetworkMode !== undefined && n.NetworkMode !== "awsvpc") continue;
      const mac = typeof n.MACAddress === "string" && n.MACAddress ? n.MACAddress : undefined;
      // arn:aws:ecs:<region>:<account>:task/<cluster>/<id>
      const arn = typeof task.TaskARN === "string" ? task.TaskARN.split(":") : [];
      const region = arn[0] === "arn" && arn[3] ? arn[3] : undefined;
      return { privateIp: ip, mac, region };
    }
  }
  throw new PublicAddressError(
    "METADATA_INVALID",
    "the task metadata names no awsvpc network with an IPv4 address (Containers[].Networks[].IPv4Addresses)",
    false,
  );
}

/** The public IPv4 of the one interface carrying `privateIp` (primary or secondary). */
export function publicIpOf(
  interfaces: readonly NetworkInterface[],
  privateIp: string,
): { publicIp: string; networkInterfaceId: string } {
  const carrying = interfaces.filter(
    (eni) =>
      eni.PrivateIpAddress === privateIp ||
      (eni.PrivateIpAddresses ?? []).some((a) => a.PrivateIpAddress === privateIp),
  );
  if (carrying.length === 0) {
    throw new PublicAddressError(
      "ENI_NOT_FOUND",
      `no network interface has the private address ${privateIp}`,
      true,
    );
  }
  if (carrying.length > 1) {
    throw new PublicAddressError(
      "ENI_AMBIGUOUS",
      `${carrying.length} network interfaces have the private address ${privateIp} (${carrying.map((e) => e.NetworkInterfaceId).join(", ")})`,
      false,
    );
  }
  const eni = carrying[0]!;
  const id = eni.NetworkInterfaceId ?? "(unknown)";
  const own = (eni.PrivateIpAddresses ?? []).find((a) => a.PrivateIpAddress === privateIp);
  const publicIp =
    own?.Association?.PublicIp ??
    (eni.PrivateIpAddress === privateIp ? eni.Association?.PublicIp : undefined);
  if (!publicIp) {
    throw new PublicAddressError(
      "NO_PUBLIC_IP",
      `network interface ${id} (${privateIp}) has no public IPv4: run the service with assignPublicIp in a public subnet`,
      true,
    );
  }
  if (!isIPv4(publicIp)) {
    throw new PublicAddressError(
      "EC2_ERROR",
      `network interface ${id} answered a public address that is not IPv4: ${JSON.stringify(publicIp)}`,
      false,
    );
  }
  return { publicIp, networkInterfaceId: id };
}

/** SDK error names that retrying cures. Anything else from a 4xx is a refusal or a bad request. */
const EC2_RETRYABLE = new Set([
  "RequestLimitExceeded",
  "Throttling",
  "ThrottlingException",
  "ServiceUnavailable",
  "Unavailable",
  "InternalError",
  "InternalFailure",
  "RequestExpired",
  "TimeoutError",
  "AbortError",
  "RequestAbortedError",
]);

function ec2Error(err: unknown): PublicAddressError {
  const e = err as { name?: string; message?: string; $metadata?: { httpStatusCode?: number } };
  const status = e.$metadata?.httpStatusCode;
  const name = e.name ?? "Error";
  // No status: the request never got an answer (connection refused, reset, timeout).
  const retryable = status === undefined || status >= 500 || EC2_RETRYABLE.has(name);
  return new PublicAddressError(
    "EC2_ERROR",
    `ec2:DescribeNetworkInterfaces failed: ${name}${status ? ` (HTTP ${status})` : ""}: ${e.message ?? String(err)}`,
    retryable,
  );
}

async function readTaskMetadata(uri: string, timeoutMs: number, signal: AbortSignal) {
  const url = `${uri.replace(/\/+$/, "")}/task`;
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]) });
  } catch (err) {
    const timedOut = (err as Error).name === "TimeoutError";
    throw new PublicAddressError(
      "METADATA_UNREACHABLE",
      `GET ${url}: ${timedOut ? `no answer within ${timeoutMs} ms` : (err as Error).message}`,
      true,
    );
  }
  let text: string;
  try {
    text = await res.text();
  } catch (err) {
    throw new PublicAddressError(
      "METADATA_UNREACHABLE",
      `GET ${url}: reading the answer: ${(err as Error).message}`,
      true,
    );
  }
  if (!res.ok) {
    // The agent answers 5xx while it is not ready; a 4xx will not change.
    throw new PublicAddressError(
      res.status >= 500 ? "METADATA_UNREACHABLE" : "METADATA_INVALID",
      `GET ${url}: HTTP ${res.status}`,
      res.status >= 500,
    );
  }
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new PublicAddressError("METADATA_INVALID", `GET ${url}: the answer is not JSON`, false);
  }
}

/**
 * Discovers the task's public IPv4 (module comment). Resolves with it, or rejects with the last
 * `PublicAddressError` once an error is not retryable or the next attempt, timing out, would end
 * after `deadlineMs`.
 */
export async function discoverEcsPublicAddress(
  config: EcsPublicAddressConfig,
  deps: EcsPublicAddressDeps = {},
): Promise<DiscoveredAddress> {
  const log = deps.log ?? silentLogger;
  const now = deps.now ?? Date.now;
  const random = deps.random ?? Math.random;
  // Every attempt gets the full timeout (a budget shorter than it gets one attempt that long).
  const attemptTimeoutMs = Math.min(config.attemptTimeoutMs ?? 3000, config.deadlineMs);
  const retry = config.retry ?? { baseMs: 250, maxMs: 4000 };
  const deadline = now() + config.deadlineMs;
  const signal = deps.signal ?? new AbortController().signal;
  const metadataUri = config.metadataUri;
  if (!metadataUri) {
    throw new PublicAddressError(
      "METADATA_UNSET",
      `${PUBLIC_ADDRESS_ENV.metadataUri} is not set: public address discovery needs ECS (Fargate platform 1.4.0 or later)`,
      false,
    );
  }
  const injected = deps.ec2 ? asGetter(deps.ec2) : undefined;
  let built: EC2Client | undefined;
  const clientFor = (taskRegion: string | undefined): Ec2Sender => {
    if (injected) return injected();
    const region = config.region ?? taskRegion;
    if (!region) {
      throw new PublicAddressError(
        "EC2_ERROR",
        `no AWS region: set ${PUBLIC_ADDRESS_ENV.region} (ECS sets it; the task ARN had none either)`,
        false,
      );
    }
    built ??= new EC2Client({
      region,
      ...(config.ec2Endpoint ? { endpoint: config.ec2Endpoint } : {}),
      ...(config.credentials ? { credentials: config.credentials } : {}),
      // Retries are ours (bounded by the deadline), not the SDK's.
      maxAttempts: 1,
    });
    return built;
  };

  const attemptOnce = async (timeoutMs: number): Promise<Omit<DiscoveredAddress, "attempts">> => {
    const network = taskNetwork(await readTaskMetadata(metadataUri, timeoutMs, signal));
    const filters = [
      { Name: "addresses.private-ip-address", Values: [network.privateIp] },
      ...(network.mac ? [{ Name: "mac-address", Values: [network.mac] }] : []),
    ];
    const client = clientFor(network.region);
    let interfaces: NetworkInterface[];
    try {
      const out = await client.send(new DescribeNetworkInterfacesCommand({ Filters: filters }), {
        abortSignal: AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]),
      });
      interfaces = out.NetworkInterfaces ?? [];
    } catch (err) {
      throw ec2Error(err);
    }
    return { privateIp: network.privateIp, ...publicIpOf(interfaces, network.privateIp) };
  };

  try {
    for (let attempt = 1; ; attempt++) {
      try {
        const found = await attemptOnce(attemptTimeoutMs);
        return { ...found, attempts: attempt };
      } catch (err) {
        const e =
          err instanceof PublicAddressError
            ? err
            : new PublicAddressError("EC2_ERROR", (err as Error).message, false);
        const delayMs = backoffMs(attempt, retry, random);
        // No attempt starts that could not finish (time out) within the budget.
        if (!e.retryable || signal.aborted || now() + delayMs + attemptTimeoutMs > deadline) {
          e.attempts = attempt;
          throw e;
        }
        log.warn("public address discovery failed; retrying", {
          code: e.code,
          err: e,
          attempt,
          retryInMs: delayMs,
        });
        await sleep(delayMs, signal);
      }
    }
  } finally {
    built?.destroy();
  }
}

/** The discovery's configuration from the environment ECS gives the container. */
export function ecsPublicAddressConfigFromEnv(
  env: Env,
  agent: Pick<AgentConfig, "publicHostDiscoverySeconds">,
): EcsPublicAddressConfig {
  const get = (name: string) => {
    const v = env[name]?.trim();
    return v ? v : undefined;
  };
  const region = get(PUBLIC_ADDRESS_ENV.region) ?? get(PUBLIC_ADDRESS_ENV.defaultRegion);
  const ec2Endpoint = get(PUBLIC_ADDRESS_ENV.ec2Endpoint) ?? get(PUBLIC_ADDRESS_ENV.endpoint);
  return {
    metadataUri: get(PUBLIC_ADDRESS_ENV.metadataUri),
    ...(region ? { region } : {}),
    ...(ec2Endpoint ? { ec2Endpoint } : {}),
    deadlineMs: agent.publicHostDiscoverySeconds * 1000,
  };
}

/** What the agent announces and why; `/healthz` shows it as `publicHost`. */
export interface PublicHostStatus {
  discovery: AgentConfig["publicHostDiscovery"];
  /** The address announced to devices and viewers. */
  host: string;
  source: "configured" | "discovered";
  /** `EHOME_PUBLIC_HOST`: the fallback (and, with discovery off, the announced address). */
  configuredHost: string;
  privateIp?: string;
  networkInterfaceId?: string;
  attempts?: number;
  /** Why discovery failed: the agent announces `configuredHost` instead. */
  error?: { code: PublicAddressErrorCode; message: string };
}

/**
 * The configuration with the announced address resolved: unchanged with discovery `off`; with
 * `ecs`, `publicHost` replaced by the task's public IPv4, or kept (error logged, `status.error`)
 * when discovery fails (failure policy in the module comment). `ntpHost` and the `https://` URL
 * host keep their configured values (an NTP server is not the agent; a certificate names a host).
 */
export async function resolvePublicHost(
  config: AgentConfig,
  env: Env,
  deps: Omit<EcsPublicAddressDeps, "log"> & {
    log: Logger;
    /** Overrides what is read from `env` (tests: credentials, short timings). */
    discovery?: Partial<EcsPublicAddressConfig>;
  },
): Promise<{ config: AgentConfig; status: PublicHostStatus }> {
  const configured: PublicHostStatus = {
    discovery: config.publicHostDiscovery,
    host: config.publicHost,
    source: "configured",
    configuredHost: config.publicHost,
  };
  if (config.publicHostDiscovery === "off") return { config, status: configured };
  const started = (deps.now ?? Date.now)();
  try {
    const found = await discoverEcsPublicAddress(
      { ...ecsPublicAddressConfigFromEnv(env, config), ...deps.discovery },
      deps,
    );
    deps.log.info("public address discovered: announcing the task's own address", {
      publicHost: found.publicIp,
      privateIp: found.privateIp,
      networkInterfaceId: found.networkInterfaceId,
      attempts: found.attempts,
      ms: (deps.now ?? Date.now)() - started,
      configuredHost: config.publicHost,
    });
    return {
      config: { ...config, publicHost: found.publicIp },
      status: {
        ...configured,
        host: found.publicIp,
        source: "discovered",
        privateIp: found.privateIp,
        networkInterfaceId: found.networkInterfaceId,
        attempts: found.attempts,
      },
    };
  } catch (err) {
    const e =
      err instanceof PublicAddressError
        ? err
        : new PublicAddressError("EC2_ERROR", (err as Error).message, false);
    const attempts = e.attempts;
    deps.log.error(
      "PUBLIC ADDRESS DISCOVERY FAILED: announcing EHOME_PUBLIC_HOST instead of the task's own address; media (SinkIP, stream and talk URLs) will not reach this task, and with more than one task alarms and uploads may reach the wrong one. Fix the cause and replace the task.",
      {
        code: e.code,
        err: e,
        attempts,
        ms: (deps.now ?? Date.now)() - started,
        variable: "EHOME_PUBLIC_HOST_DISCOVERY",
        publicHost: config.publicHost,
      },
    );
    return {
      config,
      status: {
        ...configured,
        ...(attempts !== undefined ? { attempts } : {}),
        error: { code: e.code, message: e.message },
      },
    };
  }
}
