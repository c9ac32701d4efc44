import type { DeviceEventInput } from "../../../lib/contracts/events.ts";
import type { AgentConfig } from "../../config.ts";
import type { Logger, LogLevel } from "../../log.ts";
import type { AgentMetrics } from "../../metrics.ts";
import type { DeviceReport, ProvisioningSource } from "../../ports.ts";
import type { CatalogueView } from "../catalogue.ts";
import type { WireEncoding, XmlElement } from "../codec/index.ts";
import type { CommandSender } from "../command-sender.ts";
import type { Dialect } from "../dialect.ts";
import type { DeviceSession, SessionStore } from "../sessions.ts";

/** What every handler may use. Built once by the agent; handlers hold no state of their own. */
export interface HandlerContext {
  readonly config: Pick<
    AgentConfig,
    | "keepAliveSeconds"
    | "publicHost"
    | "alarmPort"
    | "httpPort"
    | "ntpHost"
    | "ntpPort"
    | "alarmServerType"
    | "pictureServerType"
    | "autoProvision"
    | "maxOutboundBytes"
  > &
    // Security modes (issue 7, docs/SECURITY.md); unset: `rebind`, password required when stored.
    Partial<Pick<AgentConfig, "addressBinding" | "requirePassword">>;
  readonly sessions: SessionStore;
  readonly sender: CommandSender;
  readonly metrics: AgentMetrics;
  readonly log: Logger;
  readonly dialect: Dialect;
  readonly provisioning: ProvisioningSource;
  /** Encodes a RESPONSE in `encoding` and writes it to host:port (the one write path). */
  respond(host: string, port: number, encoding: WireEncoding, response: ResponseFields): void;
  /** Stamps and emits a device event. */
  emit(event: DeviceEventInput): void;
  /** Hands a de-duplicated device report to the report sink. */
  report(report: DeviceReport): void;
  /** Starts learning a newly registered device (GetServerInfo, work status). */
  learn(session: DeviceSession): void;
  /** Logs at most once per key per interval. */
  logLimited(key: string, level: LogLevel, msg: string, fields?: Record<string, unknown>): void;
  /** REGISTERs whose asynchronous provisioning lookup is in flight, by `deviceId#sequence`. */
  readonly registering: Set<string>;
  random(): number;
}

export interface ResponseFields {
  sequence: number;
  method: string | null;
  whichCommand: string;
  status: number;
  description: string;
  params?: XmlElement;
}

export const OK = "OK";

/**
 * ehome-2.0 §2.2 (B, FE): a request from a device we hold no session for is answered with
 * `Status 403` and `Method REGISTER`, so the device registers again (e.g. after an agent restart).
 */
export function askToRegister(
  ctx: HandlerContext,
  view: CatalogueView,
  whichCommand: string,
  sequence: number,
  encoding: WireEncoding,
  host: string,
  port: number,
): void {
  ctx.respond(host, port, encoding, {
    sequence,
    method: view.commands.register.method,
    whichCommand,
    status: 403,
    description: "Not registered",
  });
}
