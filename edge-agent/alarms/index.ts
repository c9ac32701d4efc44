import type { S3Client } from "@aws-sdk/client-s3";
import type { AlarmQueueMessage } from "../../lib/contracts/alarms.ts";
import type { AgentConfig } from "../config.ts";
import type { DeviceHttpRoute } from "../http/device-http.ts";
import { createUploadRoutes, type UploadCounters } from "../http/uploads.ts";
import type { Logger } from "../log.ts";
import type { EventSink, ReportSink } from "../ports.ts";
import type { CatalogueView } from "../signalling/catalogue.ts";
import { type AlarmReporter, createAlarmReporter } from "./alarm-reporter.ts";

/**
 * The alarm side of the agent in one place (issue 5; ehome-2.0 §5, §8), for the composition roots
 * (edge-agent/main.ts, bin/local-platform.ts):
 *
 *   const alarms = createAlarmParts(config, { sink, reports, media, sessions: () => agent.sessions, log });
 *   createEdgeAgent(config, { ..., alarmTransport: createUdpTransport({ port: config.alarmPort }),
 *                              reports: alarms.reports });
 *   createDeviceHttpServer(..., { routes: alarms.routes, ... });
 *
 * Alarm reports become `AlarmEvent`s on `sink` (the alarm-events queue; JSON lines stand-alone);
 * other reports go to `reports`. With a media bucket, `POST /pictures` and `POST /videos` are
 * mounted and each stored upload becomes a `MediaUploadedEvent` on the same sink.
 */

/** The parts of the agent's sessions the alarm side reads. */
export interface SessionLookup {
  get(deviceId: string): { host: string; view: CatalogueView } | undefined;
}

export interface AlarmPartsDeps {
  sink: EventSink<AlarmQueueMessage>;
  /** Reports other than alarms (GPS, STATUS, …). */
  reports?: ReportSink;
  /** The media bucket; without it no upload routes are mounted. */
  media?: { bucket: string; s3: () => S3Client };
  /** Late-bound: the agent is built after the reporter it is given. */
  sessions: () => SessionLookup | undefined;
  log: Logger;
}

export interface AlarmParts {
  readonly reports: AlarmReporter;
  readonly routes: readonly DeviceHttpRoute[];
  counters(): Record<string, number>;
}

export function createAlarmParts(
  config: Pick<AgentConfig, "agentId" | "maxPictureBytes" | "maxVideoBytes"> &
    Partial<Pick<AgentConfig, "uploadRatePerAddress">>,
  deps: AlarmPartsDeps,
): AlarmParts {
  const reports = createAlarmReporter(
    { agentId: config.agentId },
    {
      sink: deps.sink,
      next: deps.reports,
      viewOf: (id) => deps.sessions()?.get(id)?.view,
      log: deps.log.child({ part: "alarms" }),
    },
  );
  const uploads = deps.media
    ? createUploadRoutes(
        {
          agentId: config.agentId,
          bucket: deps.media.bucket,
          maxPictureBytes: config.maxPictureBytes,
          maxVideoBytes: config.maxVideoBytes,
          ratePerAddress: config.uploadRatePerAddress ?? 0,
        },
        {
          s3: deps.media.s3,
          // ehome-2.0 §8: uploads only from the source address of the device's current session.
          isDeviceAddress: (deviceId, host) => deps.sessions()?.get(deviceId)?.host === host,
          events: deps.sink,
          log: deps.log.child({ part: "uploads" }),
        },
      )
    : undefined;
  return {
    reports,
    routes: uploads?.routes ?? [],
    counters() {
      const out: Record<string, number> = {};
      for (const [k, v] of Object.entries(reports.counters())) out[`alarms_${k}`] = v;
      const u: Partial<UploadCounters> = uploads?.counters() ?? {};
      for (const [k, v] of Object.entries(u)) out[`uploads_${k}`] = v;
      return out;
    },
  };
}
