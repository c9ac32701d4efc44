import { hostname } from "node:os";
import { PORTS } from "../lib/contracts/ports.ts";
import { LOG_LEVELS, type LogLevel } from "./log.ts";

/**
 * The agent's configuration: only `EHOME_*` environment variables, parsed and validated here
 * (issue 2 item 9). main.ts is the only caller that passes `process.env`; everything else receives
 * the typed result. docs/configuration.md lists every variable, and a test keeps the two in step.
 */

export const PUBLIC_HOST_DISCOVERY = ["off", "ecs"] as const;
export type PublicHostDiscovery = (typeof PUBLIC_HOST_DISCOVERY)[number];

export interface AgentConfig {
  agentId: string;
  /** Bind address of the agent's sockets. */
  host: string;
  /**
   * Address announced to devices (alarm and picture servers in the REGISTER reply, `SinkIP`,
   * firmware URLs) and viewers (the heartbeat's `publicHost`). With `publicHostDiscovery` `ecs`,
   * main.ts replaces it with the task's own public IPv4 (edge-agent/cloud/public-address.ts).
   */
  publicHost: string;
  /**
   * `off`: announce `EHOME_PUBLIC_HOST`. `ecs`: discover the ECS task's public IPv4 at start-up
   * (task metadata v4 + `ec2:DescribeNetworkInterfaces`), falling back to `EHOME_PUBLIC_HOST`.
   */
  publicHostDiscovery: PublicHostDiscovery;
  /** Time budget of that discovery, retries included. */
  publicHostDiscoverySeconds: number;
  signalPort: number;
  alarmPort: number;
  httpPort: number;
  mediaPorts: { min: number; max: number };
  /** Viewer HTTP server (`/streams/<id>.<ps|ts>?token=`). */
  viewerPort: number;
  /** A stream with no viewer this long stops (live and playback; counted from its start too). */
  streamIdleSeconds: number;
  /** How long a stream waits for the device's media connection after the port is leased. */
  streamAcceptSeconds: number;
  /** Viewers of one stream id. */
  streamMaxViewers: number;
  /** Viewers of all streams of this agent. */
  maxViewers: number;
  keepAliveSeconds: number;
  offlineAfterMissed: number;
  autoProvision: boolean;
  provisioningFile: string | undefined;
  traceFile: string | undefined;
  traceMaxBytes: number;
  dialectFile: string | undefined;
  maxDatagramBytes: number;
  /** SO_RCVBUF requested for the signalling socket (net.core.rmem_max caps it). */
  signalRecvBufferBytes: number;
  maxOutboundBytes: number;
  commandResendMs: number;
  commandMaxSends: number;
  commandTimeoutMs: number;
  lastSeenFlushSeconds: number;
  ntpHost: string;
  ntpPort: number;
  alarmServerType: number;
  pictureServerType: number;
  learnDevices: boolean;
  /**
   * The agent's own TLS listener on the device-facing routes (`EHOME_HTTPS_CERT_FILE`,
   * `EHOME_HTTPS_KEY_FILE`, `EHOME_HTTPS_PORT`); undefined without a certificate.
   */
  httpsListen: { port: number; certFile: string; keyFile: string } | undefined;
  /**
   * Where `https://` download URLs point (firmware `/fw/`): the agent's own listener, or a TLS
   * terminator in front of it (`EHOME_HTTPS_PUBLIC_PORT` alone). Undefined: downloads use http.
   */
  httpsUrl: { host: string; port: number } | undefined;
  /** Largest `POST /pictures` body (ehome-2.0 §8 upload row). */
  maxPictureBytes: number;
  /** Largest `POST /videos` body. */
  maxVideoBytes: number;
  /** Bytes of outgoing events each cloud sink holds in memory (issue 7). */
  eventBufferMaxBytes: number;
  /** Where sinks spill beyond `eventBufferMaxBytes` (a subdirectory per agent id). */
  spillDir: string;
  /** Size of each sink's spill file beyond which events are dropped (counted, logged). */
  spillMaxBytes: number;
  /** Signalling datagrams per second per source address (token bucket); 0: no limit. */
  signalRatePerAddress: number;
  /** Bucket size of that limit (the burst a NAT'd fleet's REGISTER storm needs). */
  signalBurstPerAddress: number;
  /** Uploads (`POST /pictures`, `/videos`) per second per source address; 0: no limit. */
  uploadRatePerAddress: number;
  /** Device sessions per source address; 0: no limit. */
  maxSessionsPerAddress: number;
  /**
   * `rebind`: a KEEPALIVE from a new address moves the session (NAT rebinding). `strict`: a
   * KEEPALIVE or ALARM from another address is refused; only a REGISTER moves a device.
   */
  addressBinding: "rebind" | "strict";
  /** A device with a stored password must send it in REGISTER (401 otherwise). */
  requirePassword: boolean;
  logLevel: LogLevel;
}

/** A configuration value that stops start-up; the message names the variable. */
export class ConfigError extends Error {
  readonly code = "CONFIG_INVALID";
  readonly variable: string;
  constructor(variable: string, message: string) {
    super(`${variable}: ${message}`);
    this.name = "ConfigError";
    this.variable = variable;
  }
}

export type Env = Readonly<Record<string, string | undefined>>;

/** Every variable loadConfig reads, with its default as documented (kept in step by a test). */
export const CONFIG_VARIABLES = [
  "EHOME_AGENT_ID",
  "EHOME_HOST",
  "EHOME_PUBLIC_HOST",
  "EHOME_PUBLIC_HOST_DISCOVERY",
  "EHOME_PUBLIC_HOST_DISCOVERY_SECONDS",
  "EHOME_SIGNAL_PORT",
  "EHOME_ALARM_PORT",
  "EHOME_HTTP_PORT",
  "EHOME_HTTPS_PORT",
  "EHOME_HTTPS_CERT_FILE",
  "EHOME_HTTPS_KEY_FILE",
  "EHOME_HTTPS_PUBLIC_HOST",
  "EHOME_HTTPS_PUBLIC_PORT",
  "EHOME_MEDIA_PORTS",
  "EHOME_VIEWER_PORT",
  "EHOME_STREAM_IDLE_SECONDS",
  "EHOME_STREAM_ACCEPT_SECONDS",
  "EHOME_STREAM_MAX_VIEWERS",
  "EHOME_MAX_VIEWERS",
  "EHOME_KEEPALIVE_SECONDS",
  "EHOME_OFFLINE_AFTER_MISSED",
  "EHOME_AUTO_PROVISION",
  "EHOME_PROVISIONING_FILE",
  "EHOME_TRACE_FILE",
  "EHOME_TRACE_MAX_BYTES",
  "EHOME_DIALECT_FILE",
  "EHOME_MAX_DATAGRAM_BYTES",
  "EHOME_SIGNAL_RECV_BUFFER_BYTES",
  "EHOME_MAX_OUTBOUND_BYTES",
  "EHOME_COMMAND_RESEND_MS",
  "EHOME_COMMAND_MAX_SENDS",
  "EHOME_COMMAND_TIMEOUT_MS",
  "EHOME_LASTSEEN_FLUSH_SECONDS",
  "EHOME_NTP_HOST",
  "EHOME_NTP_PORT",
  "EHOME_ALARM_SERVER_TYPE",
  "EHOME_PICTURE_SERVER_TYPE",
  "EHOME_LEARN_DEVICES",
  "EHOME_MAX_PICTURE_BYTES",
  "EHOME_MAX_VIDEO_BYTES",
  "EHOME_EVENT_BUFFER_MAX",
  "EHOME_SPILL_DIR",
  "EHOME_SPILL_MAX_BYTES",
  "EHOME_SIGNAL_RATE_PER_ADDRESS",
  "EHOME_SIGNAL_BURST_PER_ADDRESS",
  "EHOME_UPLOAD_RATE_PER_ADDRESS",
  "EHOME_MAX_SESSIONS_PER_ADDRESS",
  "EHOME_ADDRESS_BINDING",
  "EHOME_REQUIRE_PASSWORD",
  "EHOME_LOG_LEVEL",
] as const;

function raw(env: Env, name: string): string | undefined {
  const v = env[name];
  if (v === undefined) return undefined;
  const t = v.trim();
  return t === "" ? undefined : t;
}

function int(env: Env, name: string, dflt: number, min: number, max: number): number {
  const v = raw(env, name);
  if (v === undefined) return dflt;
  if (!/^\d+$/.test(v))
    throw new ConfigError(name, `expected an integer, got ${JSON.stringify(v)}`);
  const n = Number(v);
  if (n < min || n > max)
    throw new ConfigError(name, `must be between ${min} and ${max}, got ${n}`);
  return n;
}

function port(env: Env, name: string, dflt: number): number {
  return int(env, name, dflt, 0, 65535);
}

function bool(env: Env, name: string, dflt: boolean): boolean {
  const v = raw(env, name);
  if (v === undefined) return dflt;
  switch (v.toLowerCase()) {
    case "true":
    case "1":
    case "yes":
      return true;
    case "false":
    case "0":
    case "no":
      return false;
    default:
      throw new ConfigError(name, `expected true or false, got ${JSON.stringify(v)}`);
  }
}

// Hostnames or IPv4/IPv6 literals; no scheme, path or port.
const HOST =
  /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9-]{1,63})*|[0-9A-Fa-f:.]+)$/;

function host(env: Env, name: string, dflt: string): string {
  const v = raw(env, name) ?? dflt;
  if (v.length > 255 || !HOST.test(v)) {
    throw new ConfigError(name, `expected a host name or IP address, got ${JSON.stringify(v)}`);
  }
  return v;
}

function addressBinding(env: Env): "rebind" | "strict" {
  const v = (raw(env, "EHOME_ADDRESS_BINDING") ?? "rebind").toLowerCase();
  if (v !== "rebind" && v !== "strict") {
    throw new ConfigError(
      "EHOME_ADDRESS_BINDING",
      `expected rebind or strict, got ${JSON.stringify(v)}`,
    );
  }
  return v;
}

function path(env: Env, name: string): string | undefined {
  return raw(env, name);
}

function range(env: Env, name: string, dflt: { min: number; max: number }) {
  const v = raw(env, name);
  if (v === undefined) return { ...dflt };
  const m = /^(\d{1,5})\s*-\s*(\d{1,5})$/.exec(v);
  if (!m) throw new ConfigError(name, `expected a port range such as 31000-31999, got ${v}`);
  const min = Number(m[1]);
  const max = Number(m[2]);
  if (min < 1 || max > 65535 || min > max) {
    throw new ConfigError(name, `expected 1 <= first <= last <= 65535, got ${v}`);
  }
  return { min, max };
}

/**
 * TLS on the device-facing routes (issue 8 item 7): the agent serves it itself with a certificate
 * and key (both or neither), or a load balancer in front terminates it (`EHOME_HTTPS_PUBLIC_PORT`
 * alone). Either way download URLs become `https://<EHOME_HTTPS_PUBLIC_HOST>:<port>/…`; the host
 * must be a name (or address) the certificate covers, so it can differ from `EHOME_PUBLIC_HOST`.
 */
function https(env: Env, publicHost: string): Pick<AgentConfig, "httpsListen" | "httpsUrl"> {
  const certFile = path(env, "EHOME_HTTPS_CERT_FILE");
  const keyFile = path(env, "EHOME_HTTPS_KEY_FILE");
  if ((certFile === undefined) !== (keyFile === undefined)) {
    const missing = certFile === undefined ? "EHOME_HTTPS_CERT_FILE" : "EHOME_HTTPS_KEY_FILE";
    throw new ConfigError(missing, "EHOME_HTTPS_CERT_FILE and EHOME_HTTPS_KEY_FILE go together");
  }
  const listenPort = port(env, "EHOME_HTTPS_PORT", PORTS.deviceHttpsTcp);
  const httpsListen = certFile && keyFile ? { port: listenPort, certFile, keyFile } : undefined;
  const publicPort = raw(env, "EHOME_HTTPS_PUBLIC_PORT");
  const urlPort =
    publicPort === undefined ? httpsListen?.port : int(env, "EHOME_HTTPS_PUBLIC_PORT", 0, 1, 65535);
  if (urlPort === 0) {
    throw new ConfigError(
      "EHOME_HTTPS_PUBLIC_PORT",
      "required when EHOME_HTTPS_PORT is 0 (download URLs need the port devices reach)",
    );
  }
  const httpsUrl =
    urlPort === undefined
      ? undefined
      : { host: host(env, "EHOME_HTTPS_PUBLIC_HOST", publicHost), port: urlPort };
  return { httpsListen, httpsUrl };
}

export interface RuntimeFacts {
  hostname: string;
  pid: number;
}

/** Parses and validates the agent's configuration. Throws ConfigError naming the variable. */
export function loadConfig(
  env: Env,
  runtime: RuntimeFacts = { hostname: hostname(), pid: process.pid },
): AgentConfig {
  const publicHost = host(env, "EHOME_PUBLIC_HOST", "127.0.0.1");
  const agentId = raw(env, "EHOME_AGENT_ID") ?? `${runtime.hostname}-${runtime.pid}`;
  if (!/^[A-Za-z0-9._:-]{1,128}$/.test(agentId)) {
    throw new ConfigError(
      "EHOME_AGENT_ID",
      `expected 1-128 characters of letters, digits and ._:-, got ${JSON.stringify(agentId)}`,
    );
  }
  const discovery = (raw(env, "EHOME_PUBLIC_HOST_DISCOVERY") ?? "off").toLowerCase();
  if (!(PUBLIC_HOST_DISCOVERY as readonly string[]).includes(discovery)) {
    throw new ConfigError(
      "EHOME_PUBLIC_HOST_DISCOVERY",
      `expected one of ${PUBLIC_HOST_DISCOVERY.join(", ")}, got ${JSON.stringify(discovery)}`,
    );
  }
  const logLevel = (raw(env, "EHOME_LOG_LEVEL") ?? "info").toLowerCase();
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) {
    throw new ConfigError("EHOME_LOG_LEVEL", `expected one of ${LOG_LEVELS.join(", ")}`);
  }
  const config: AgentConfig = {
    agentId,
    host: host(env, "EHOME_HOST", "0.0.0.0"),
    publicHost,
    publicHostDiscovery: discovery as PublicHostDiscovery,
    publicHostDiscoverySeconds: int(env, "EHOME_PUBLIC_HOST_DISCOVERY_SECONDS", 30, 1, 600),
    signalPort: port(env, "EHOME_SIGNAL_PORT", PORTS.signallingUdp),
    alarmPort: port(env, "EHOME_ALARM_PORT", PORTS.alarmUdp),
    httpPort: port(env, "EHOME_HTTP_PORT", PORTS.deviceHttpTcp),
    mediaPorts: range(env, "EHOME_MEDIA_PORTS", PORTS.mediaPool),
    viewerPort: port(env, "EHOME_VIEWER_PORT", PORTS.viewerHttpTcp),
    streamIdleSeconds: int(env, "EHOME_STREAM_IDLE_SECONDS", 30, 1, 86_400),
    streamAcceptSeconds: int(env, "EHOME_STREAM_ACCEPT_SECONDS", 10, 1, 300),
    streamMaxViewers: int(env, "EHOME_STREAM_MAX_VIEWERS", 16, 1, 10_000),
    maxViewers: int(env, "EHOME_MAX_VIEWERS", 1000, 1, 1_000_000),
    keepAliveSeconds: int(env, "EHOME_KEEPALIVE_SECONDS", 15, 1, 3600),
    offlineAfterMissed: int(env, "EHOME_OFFLINE_AFTER_MISSED", 6, 1, 100),
    autoProvision: bool(env, "EHOME_AUTO_PROVISION", true),
    provisioningFile: path(env, "EHOME_PROVISIONING_FILE"),
    traceFile: path(env, "EHOME_TRACE_FILE"),
    traceMaxBytes: int(env, "EHOME_TRACE_MAX_BYTES", 10 * 1024 * 1024, 4096, 2 ** 40),
    dialectFile: path(env, "EHOME_DIALECT_FILE"),
    // A UDP payload cannot exceed 65507 bytes; below 512 even a REGISTER would not fit.
    maxDatagramBytes: int(env, "EHOME_MAX_DATAGRAM_BYTES", 8192, 512, 65507),
    // A REGISTER storm (issue 7): the kernel queue must hold the datagrams of a burst.
    signalRecvBufferBytes: int(
      env,
      "EHOME_SIGNAL_RECV_BUFFER_BYTES",
      4 * 1024 * 1024,
      65536,
      2 ** 30,
    ),
    // The REGISTER reply alone is about 700 bytes.
    maxOutboundBytes: int(env, "EHOME_MAX_OUTBOUND_BYTES", 1500, 1024, 65507),
    commandResendMs: int(env, "EHOME_COMMAND_RESEND_MS", 1500, 1, 600_000),
    commandMaxSends: int(env, "EHOME_COMMAND_MAX_SENDS", 3, 1, 10),
    commandTimeoutMs: int(env, "EHOME_COMMAND_TIMEOUT_MS", 5000, 1, 600_000),
    lastSeenFlushSeconds: int(env, "EHOME_LASTSEEN_FLUSH_SECONDS", 600, 1, 86_400),
    ntpHost: host(env, "EHOME_NTP_HOST", publicHost),
    ntpPort: port(env, "EHOME_NTP_PORT", 123),
    alarmServerType: int(env, "EHOME_ALARM_SERVER_TYPE", 0, 0, 9),
    pictureServerType: int(env, "EHOME_PICTURE_SERVER_TYPE", 0, 0, 9),
    learnDevices: bool(env, "EHOME_LEARN_DEVICES", true),
    ...https(env, publicHost),
    maxPictureBytes: int(env, "EHOME_MAX_PICTURE_BYTES", 10 * 1024 * 1024, 1024, 2 ** 31),
    maxVideoBytes: int(env, "EHOME_MAX_VIDEO_BYTES", 512 * 1024 * 1024, 1024, 5 * 2 ** 40),
    eventBufferMaxBytes: int(env, "EHOME_EVENT_BUFFER_MAX", 16 * 1024 * 1024, 64 * 1024, 2 ** 34),
    spillDir: path(env, "EHOME_SPILL_DIR") ?? "./.ehome/spill",
    spillMaxBytes: int(env, "EHOME_SPILL_MAX_BYTES", 1024 * 1024 * 1024, 0, 2 ** 44),
    signalRatePerAddress: int(env, "EHOME_SIGNAL_RATE_PER_ADDRESS", 500, 0, 10_000_000),
    signalBurstPerAddress: int(env, "EHOME_SIGNAL_BURST_PER_ADDRESS", 5000, 1, 10_000_000),
    uploadRatePerAddress: int(env, "EHOME_UPLOAD_RATE_PER_ADDRESS", 20, 0, 1_000_000),
    maxSessionsPerAddress: int(env, "EHOME_MAX_SESSIONS_PER_ADDRESS", 1000, 0, 10_000_000),
    addressBinding: addressBinding(env),
    requirePassword: bool(env, "EHOME_REQUIRE_PASSWORD", true),
    logLevel: logLevel as LogLevel,
  };
  if (config.commandTimeoutMs < config.commandResendMs) {
    throw new ConfigError(
      "EHOME_COMMAND_TIMEOUT_MS",
      `must be at least EHOME_COMMAND_RESEND_MS (${config.commandResendMs})`,
    );
  }
  return config;
}
