import type { SimulatorStats } from "./stats.ts";

/** One line for the CLI's periodic status (stderr). */
export function statusLine(s: SimulatorStats): string {
  const t = (s.elapsedMs / 1000).toFixed(0);
  const st = s.states;
  return [
    `[sim ${t}s] devices=${s.devices} online=${st.online} registering=${st.registering}`,
    `rebooting=${st.rebooting} stopped=${st.stopped}`,
    `| reg=${s.registrations}/${s.registerAttempts} ka=${s.keepalivesAnswered}/${s.keepalivesSent}`,
    `403=${s.keepalive403} gps=${s.gpsAnswered}/${s.gpsSent}`,
    `cmd=${s.commandsAnswered} dup=${s.commandDuplicates}`,
    `| rtt p50=${s.latency.p50Ms}ms p99=${s.latency.p99Ms}ms`,
    `| lost out/in=${s.droppedOutbound}/${s.droppedInbound} dupSent=${s.duplicatesSent}`,
    `bad=${s.malformedSent} decodeErr=${s.decodeErrors} sendErr=${s.sendErrors}`,
    ...(s.mediaStreams > 0
      ? [
          `| media=${s.mediaStreams} fail=${s.mediaFailures}`,
          `out=${(s.mediaBytesSent / 1e6).toFixed(1)}MB`,
        ]
      : []),
  ].join(" ");
}
