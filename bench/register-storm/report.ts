import { dec, int, provenance, table } from "../lib/markdown.ts";
import type { BenchmarkResult } from "../lib/output.ts";
import type { StormScenario } from "./run.ts";

/** The generated section of docs/BENCHMARKS.md for bench/register-storm. */

export const title = "Register storm: every device at once (agent), 50,000 within 30 s (platform)";

export function render(result: BenchmarkResult): string {
  const r = result as BenchmarkResult<StormScenario>;
  const s = r.settings as Record<string, unknown>;
  const out: string[] = [provenance(r)];
  out.push(
    `- Settings: every device sends its REGISTER at the same moment from its own loopback address ` +
      `(generators' window = their whole slice); a device resends after ${s.retryMs} ms without a ` +
      `reply, at most ${s.maxSends} times; ${s.repetitions} repetition(s), medians. Agent alone in ` +
      `its process (events counted, not sent: the cloud side is measured by cloud-writes). ` +
      `Baseline: a raw Node UDP echo answering the same storm from the same generators.`,
  );
  out.push("");
  out.push(
    table(
      [
        "Devices",
        "Generators",
        "All online at the agent (s)",
        "REGISTERs/s",
        "Retries",
        "Refused",
        "Failed",
        "Echo replies/s",
        "Ratio agent/echo",
        "Kernel rcvbuf drops (agent run)",
        "Agent heap per session (B)",
      ],
      r.scenarios.map((x) => {
        const first = x.runs[0]?.agent;
        return [
          int(x.devices),
          String(x.generators),
          x.allOnlineMs === null ? "not reached" : dec(x.allOnlineMs / 1000, 2),
          int(x.registersPerSecond),
          int(x.retries),
          int(x.refused),
          int(x.failed),
          int(x.echoRegistersPerSecond),
          dec(x.ratio, 3),
          int(first?.rcvbufDrops),
          int(first?.heapPerSessionBytes),
        ];
      }),
    ),
  );
  const withPlatform = r.scenarios.filter((x) => x.platform !== null);
  if (withPlatform.length > 0) {
    const spread = Number(s.spreadMs ?? withPlatform[0]!.platform!.spreadMs ?? 0);
    out.push("");
    out.push(
      `The storm through the whole platform as \`npm start\` composes it (in memory): agent and ` +
        "cloud adapters → device-events queue (fauxqs) → registry function behind the local " +
        `poller → DynamoDB Local → API. Here the devices send their first REGISTER spread evenly ` +
        `over ${dec(spread / 1000, 0)} s (issue 7: "register within 30 s"), with the same retry ` +
        "rule. Times count from the first REGISTER. The devices table is counted (Query of the " +
        "byStatus index) every few seconds and as soon as the device-events queue is empty; " +
        "`GET /devices?status=online` is then walked once, page by page. The local engines " +
        "stand in for SQS and DynamoDB: these times describe this machine.",
    );
    out.push("");
    out.push(
      table(
        [
          "Devices",
          "REGISTERs spread over (s)",
          "Last REGISTER answered (s)",
          "All online at the agent (s)",
          "All online in the devices table (s)",
          "All listed by GET /devices (s)",
          "Listed online by GET /devices",
          "Events sent",
          "Provisioning reads (BatchGetItem calls)",
          "Retries",
          "Refused",
          "Failed",
        ],
        withPlatform.map((x) => {
          const p = x.platform!;
          const notReached = (ms: number | null | undefined, digits: number) =>
            ms === null || ms === undefined ? "not reached" : dec(ms / 1000, digits);
          return [
            int(p.devices),
            dec((p.spreadMs ?? 0) / 1000, 0),
            p.lastReplyMs === undefined ? "–" : dec(p.lastReplyMs / 1000, 1),
            notReached(p.agentAllOnlineMs, 1),
            notReached(p.registryAllOnlineMs, 1),
            notReached(p.apiAllOnlineMs, 1),
            int(p.apiListedOnline),
            int(p.eventsSent),
            p.provisioning
              ? `${int(p.provisioning.reads)} (${int(p.provisioning.batchReads)})`
              : "–",
            int(p.retries),
            int(p.refused),
            int(p.failed),
          ];
        }),
      ),
    );
  }
  return out.join("\n");
}
