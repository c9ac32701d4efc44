import { dec, int, provenance, table } from "../lib/markdown.ts";
import type { BenchmarkResult } from "../lib/output.ts";
import type { FirstByteScenario } from "./first-byte.ts";
import type { LiveMaxScenario, LiveScenario } from "./live.ts";
import type { ThroughputScenario } from "./throughput.ts";

/** The generated section of docs/BENCHMARKS.md for bench/media/relay-index.ts (bench/run-all.ts). */

export const title = "Media: relay throughput, live streams, time to first byte";

type Scenario = ThroughputScenario | LiveScenario | LiveMaxScenario | FirstByteScenario;

const pcts = (list: Array<number | null> | undefined) =>
  list && list.length > 0 ? list.map((v) => dec(v, 1)).join(" + ") : "–";

const kib = (bytes: number) => `${int(bytes / 1024)} KiB`;
const mib = (bytes: number) => `${int(bytes / 1024 / 1024)} MiB`;
const mbit = (bps: number) => `${dec(bps / 1e6, 2)} Mbit/s`;

function throughput(x: ThroughputScenario): string {
  return [
    "### One stream, as fast as the device can push",
    "",
    "Device (bench process) → TCP pool port → de-framer → relay → one PS viewer over HTTP " +
      "(bench process); the agent in its own process. Baseline: a `socket.pipe(socket)` relay " +
      "in its own process moving the same wire bytes in the same run. MB/s = device bytes " +
      `(10^6) / (first write → viewer end); one warm-up, then ${x.repetitions} repetitions ` +
      `alternating which runs first, medians; ${int(x.writeBytes)}-byte device writes.`,
    "",
    table(
      [
        "Device bytes",
        "MB/s agent",
        "MB/s TCP pipe",
        "Ratio (target ≥ 0.5)",
        "Agent CPU ms / MB",
        "Runs in which the viewer got every byte",
      ],
      [
        [
          int(x.wireBytes),
          dec(x.agentMBps, 1),
          dec(x.pipeMBps, 1),
          dec(x.ratio),
          dec(x.agentCpuMsPerMB),
          `${x.agentCompleteRuns ?? (x.agentComplete ? x.repetitions : 0)} of ${x.repetitions}`,
        ],
      ],
    ),
    ...((x.agentCompleteRuns ?? 0) < x.repetitions
      ? [
          "",
          "In a run where the viewer did not get every byte, the HTTP viewer fell more than the " +
            "relay's per-viewer cap (256 KiB beyond the joining GOP) behind a device pushing flat " +
            "out, and the relay " +
            "skipped packs for it up to the next keyframe, by design (a viewer never slows the " +
            "device).",
        ]
      : []),
  ].join("\n");
}

function live(x: LiveScenario, fullSize: boolean, cores: number): string {
  const gopKiB = (x.bitrateBps / 8) * (x.gopFrames / 25);
  return [
    `### ${int(x.streams)} live streams at ${mbit(x.bitrateBps)}` +
      (fullSize ? "" : " (reduced size; the full run is pending)"),
    "",
    `Each stream: a PS and a TS viewer reading everything plus one stalled PS viewer (sends its ` +
      `GET, never reads). The agent in its own process; devices and viewers in ${x.loadProcesses ?? 1} ` +
      `process(es) each; ${x.gopFrames}-frame ` +
      `GOP at 25 fps (~${kib(gopKiB)} of PS per GOP). Delay = arrival − the send time stamped ` +
      `into each frame; measured over ${x.seconds} s after ${x.warmupSeconds} s of warm-up.`,
    "",
    table(
      ["Healthy viewers", "Value"],
      [
        ["Viewers (PS + TS)", int(x.viewers.healthy)],
        ["Pushed PS bitrate per stream (median)", mbit(x.pusher.psBitrateBpsMedian)],
        ["Device frames sent > 2 frame intervals late (pusher behind)", int(x.pusher.lateFrames)],
        [
          "Device frames skipped (over 1 s late or 1 MiB queued on the socket)",
          int(x.pusher.skippedFrames),
        ],
        [
          "PS viewer bitrate / pushed, median (min)",
          `${dec(x.healthy.psBitrateRatioMedian, 3)} (${dec(x.healthy.psBitrateRatioMin, 3)})`,
        ],
        ["TS viewer bitrate, median", mbit(x.healthy.tsBitrateBpsMedian)],
        [
          "Delay, ms: median of the viewers' medians / p95 of their p95s / max",
          `${dec(x.healthy.lagMedianMs, 1)} / ${dec(x.healthy.lagP95Ms, 1)} / ${dec(x.healthy.lagMaxMs, 1)}`,
        ],
        [
          "Median delay of PS viewers / of TS viewers, ms",
          `${dec(x.healthy.psLagMedianMs, 1)} / ${dec(x.healthy.tsLagMedianMs, 1)}`,
        ],
        ["Largest delay growth over the window, ms", dec(x.healthy.lagGrowthMaxMs, 1)],
        ["Viewers behind (PS < 90 %, delay +500 ms, or closed)", int(x.healthy.behind)],
      ],
    ),
    ...(x.healthy.behind > 0
      ? [
          "",
          `**${int(x.healthy.behind)} of ${int(x.viewers.healthy)} healthy viewers did not keep ` +
            `up.** The agent would read ${dec((x.streams * x.bitrateBps) / 8e6, 0)} MB/s from ` +
            "the devices and write about twice that to the viewers (PS + TS), while the device " +
            `and viewer processes share the same ${cores} cores (device frames sent late: ` +
            `${int(x.pusher.lateFrames)}); the delays then measure queueing in front of a ` +
            "saturated machine.",
        ]
      : []),
    "",
    table(
      ["Stalled viewers and the agent", "Value"],
      [
        [
          "Stalled viewers dropped by the agent",
          `${int(x.stalled.dropped)} of ${int(x.viewers.stalled)}`,
        ],
        ["All dropped after (s from the first push)", dec(x.stalled.allDroppedAfterSeconds, 1)],
        [
          "Agent RSS per stream at the end, after GC (target < 512 KiB)",
          kib(x.agent.rssPerStreamBytes),
        ],
        ["Agent heap + external per stream at the end, after GC", kib(x.agent.heapPerStreamBytes)],
        [
          "of which the relay's own buffers (last-GOP cache, PS only, + the pack being cut)",
          kib(x.agent.relayBufferedPerStreamBytes),
        ],
        [
          "of which viewers' undrained bytes in the agent (stalled viewers not yet dropped)",
          x.agent.viewerBacklogPerStreamBytes === undefined
            ? "–"
            : kib(x.agent.viewerBacklogPerStreamBytes),
        ],
        [
          "Agent peak RSS per stream (stalled viewers' buffers included)",
          kib(x.agent.rssPeakPerStreamBytes),
        ],
        ["Agent CPU over the window, % of one core", dec(x.agent.cpuPercent, 1)],
        [
          "Agent CPU per stream, % of one core / ms per pushed MB",
          `${dec(x.agent.cpuPercentPerStream, 3)} / ${dec(x.agent.cpuMsPerPushedMB, 2)}`,
        ],
        [
          "Device processes' / viewer processes' CPU, % of one core each",
          `${pcts(x.loadCpuPercent?.devices)} / ${pcts(x.loadCpuPercent?.viewers)}`,
        ],
        [
          "Kernel TCP memory, peak / pressure threshold (tcp_mem) / times TCP entered pressure",
          x.kernelTcp
            ? `${mib(x.kernelTcp.peakBytes)} / ${mib(x.kernelTcp.pressureBytes)} / ${int(x.kernelTcp.pressuresDuringRun)}`
            : "–",
        ],
        [
          `Streams one core would carry at ${mbit(x.bitrateBps)} (linear extrapolation from the ` +
            "agent's CPU per pushed bit)",
          x.agent.cpuPercent > 0 && x.pusher.psBitrateBpsMedian > 0
            ? int(
                ((100 * x.streams) / x.agent.cpuPercent) *
                  (x.pusher.psBitrateBpsMedian / x.bitrateBps),
              )
            : "–",
        ],
      ],
    ),
    ...(x.agent.heapPerStreamBytes > x.agent.targetPerStreamBytes
      ? [
          "",
          "Heap + external is over the 512 KiB per stream target when sampled. The relay keeps " +
            "the GOP since the last keyframe once, as PS (a late TS viewer gets it remuxed on " +
            `joining), growing from one keyframe to the next up to ~${kib(gopKiB)} here; it held ` +
            `${kib(x.agent.relayBufferedPerStreamBytes)} per stream. What stalled viewers not ` +
            "yet dropped hold (up to 256 KiB each beyond their joining GOP, until 10 s after " +
            "they fell behind) is counted above; RSS stays above the heap after such buffers " +
            "are freed: the allocator keeps the pages.",
        ]
      : []),
  ].join("\n");
}

function liveMax(x: LiveMaxScenario): string {
  return [
    `### The largest stream count at ${mbit(x.bitrateBps)} with no healthy viewer behind`,
    "",
    `The same live run (PS + TS + stalled viewer per stream; ${x.seconds} s after ` +
      `${x.warmupSeconds} s of warm-up) at increasing counts until a healthy viewer fell ` +
      "behind. Devices, viewers and agent share the machine, and the machine is shared with " +
      "other work (load average per run).",
    "",
    table(
      [
        "Streams",
        "Healthy viewers behind",
        "Pushed / stream",
        "Delay median ms",
        "Delay growth max ms",
        "Agent CPU %",
        "Agent CPU % per stream",
        "Devices + viewers CPU %",
        "Agent heap + external / stream",
        "Kernel TCP memory peak",
        "Load avg (1 min)",
      ],
      x.runs.map((r) => [
        int(r.streams),
        `${int(r.behind)} of ${int(r.healthy)}`,
        mbit(r.pushedBpsMedian),
        dec(r.lagMedianMs, 1),
        dec(r.lagGrowthMaxMs, 1),
        dec(r.agentCpuPercent, 1),
        dec(r.agentCpuPercentPerStream, 3),
        `${pcts(r.loadCpuPercent?.devices)} + ${pcts(r.loadCpuPercent?.viewers)}`,
        kib(r.heapPerStreamBytes),
        r.kernelTcp ? mib(r.kernelTcp.peakBytes) : "–",
        dec(r.loadAverage1m, 1),
      ]),
    ),
    "",
    x.largestNoneBehind === null
      ? "No count tried kept every healthy viewer up."
      : `Largest count with no healthy viewer behind: **${int(x.largestNoneBehind)}**.`,
  ].join("\n");
}

function firstByte(x: FirstByteScenario): string {
  return [
    "### Time from `POST /devices/{id}/streams` to the first viewer byte",
    "",
    "Through the `npm start` platform (bin/local-platform.ts: api, command queue, in-process agent " +
      `with its media module) and one simulator device pushing in real time; ${x.streamType} ` +
      `stream; the viewer GETs \`urls.ps\` when the POST answers; ${x.runs} runs, each a new device stream.`,
    "",
    table(
      ["", "Median ms", "p95 ms", "Max ms"],
      [
        ["POST → 201", dec(x.postMsMedian, 1), dec(x.postMsP95, 1), "–"],
        [
          "POST → first byte at the viewer",
          dec(x.firstByteMsMedian, 1),
          dec(x.firstByteMsP95, 1),
          dec(x.firstByteMsMax, 1),
        ],
      ],
    ),
  ].join("\n");
}

export function render(result: BenchmarkResult): string {
  const r = result as BenchmarkResult<Scenario>;
  const settings = r.settings as {
    fullSize?: boolean;
    quietWaits?: Array<{ part: string; waitedMs: number; busyPct: number | null }>;
    quietMaxWaitMs?: number;
  };
  const fullSize = settings.fullSize === true;
  const out: string[] = [provenance(r)];
  const waits = settings.quietWaits ?? [];
  if (waits.length > 0) {
    out.push(
      "- Waited for the machine to quieten (< 20 % busy, at most " +
        `${dec((settings.quietMaxWaitMs ?? 30_000) / 1000, 0)} s) before each part: ` +
        waits
          .map((w) => `${w.part} ${dec(w.waitedMs / 1000, 0)} s (then ${dec(w.busyPct, 0)} % busy)`)
          .join(", "),
    );
  }
  if (!fullSize) {
    out.push(
      "- **Reduced sizes**, not the issue's full run (500 streams, 40 s, 64 MiB, 20 runs): " +
        "the machine was shared when this ran. The full run is pending.",
    );
  }
  for (const s of r.scenarios) {
    out.push("");
    if (s.name === "one-stream-throughput") out.push(throughput(s));
    else if (s.name === "live-streams") out.push(live(s, fullSize, r.machine.cores));
    else if (s.name === "live-max") out.push(liveMax(s));
    else out.push(firstByte(s));
  }
  return out.join("\n");
}
