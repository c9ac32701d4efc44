/**
 * De-framer throughput (issue 4 item 2): MB/s of device bytes turned into clean PS, next to a plain
 * Buffer copy of the same chunks measured in the same run (style rule 10), so the ratio survives a
 * noisy machine. Pure CPU: no sockets.
 */
import { createDeframer } from "../../edge-agent/media/deframer.ts";
import { createFramer, privateHeader } from "../../edge-agent/media/framer.ts";
import { seededRandom } from "../../edge-agent/simulator/random.ts";
import { syntheticPs } from "../../test/edge-agent/media/helpers/synthetic-ps.ts";
import { median, round } from "../lib/stats.ts";

export interface DeframerBenchOptions {
  /** Size of the synthetic PS, MiB. */
  streamMiB: number;
  /** Size of each push (a socket read); the $-RTP input also runs with 1460-byte reads (one MSS). */
  readBytes: number;
  repetitions: number;
}

export interface DeframerScenario {
  name: string;
  description: string;
  inputBytes: number;
  readBytes: number;
  repetitions: number;
  /** Median MB/s (10^6 bytes) of input through the de-framer. */
  deframerMBps: number;
  /** Median MB/s of the baseline: Buffer.from(chunk) for every chunk. */
  copyMBps: number;
  /** deframerMBps / copyMBps. */
  ratio: number;
  /** Output equals the PS that was framed (checked once per scenario). */
  outputIdentical: boolean;
  perRepetition: { deframerMBps: number; copyMBps: number }[];
}

function chunks(b: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < b.length; i += size) out.push(b.subarray(i, i + size));
  return out;
}

function timeMBps(bytes: number, fn: () => void): number {
  const t0 = process.hrtime.bigint();
  fn();
  const ns = Number(process.hrtime.bigint() - t0);
  return bytes / 1e6 / (ns / 1e9);
}

export function runDeframerBench(options: DeframerBenchOptions): DeframerScenario[] {
  const random = seededRandom(42);
  // ~25 fps, a 90 KB keyframe every 50 frames and 6 KB P-frames: a main stream of a few Mbit/s.
  const frames = Math.ceil((options.streamMiB * 1024 * 1024) / 4_500);
  const src = syntheticPs(random, { frames, keyEvery: 50, maxKeyframeBytes: 90_000 });
  const framer = createFramer({ ssrc: 679647373, maxPayloadBytes: 1400 });
  const hik = Buffer.concat([
    privateHeader(),
    ...src.units.flatMap((u, i) => framer.frame(u, { timestamp: i * 3600 })),
  ]);
  const rtpDescription =
    "256-byte header, $-RTP with 0x0d chunks and 0x1c fragments (1400-byte payloads)";
  const inputs = [
    { name: "rtp-hik", description: rtpDescription, wire: hik, readBytes: options.readBytes },
    { name: "rtp-hik-mss", description: rtpDescription, wire: hik, readBytes: 1460 },
    {
      name: "raw-ps",
      description: "raw MPEG-PS passthrough (playback, download)",
      wire: src.ps,
      readBytes: options.readBytes,
    },
  ];
  const scenarios: DeframerScenario[] = [];
  for (const input of inputs) {
    const reads = chunks(input.wire, input.readBytes);
    const check = createDeframer();
    const outParts: Buffer[] = [];
    for (const c of reads) outParts.push(...check.push(c));
    const outputIdentical = Buffer.concat(outParts).equals(src.ps);
    const per: { deframerMBps: number; copyMBps: number }[] = [];
    let sink = 0;
    for (let r = 0; r < options.repetitions; r++) {
      // Alternate which runs first so neither always gets the warmer cache.
      const runDeframer = () =>
        timeMBps(input.wire.length, () => {
          const d = createDeframer();
          for (const c of reads) for (const o of d.push(c)) sink += o.length;
          d.end();
        });
      const runCopy = () =>
        timeMBps(input.wire.length, () => {
          for (const c of reads) sink += Buffer.from(c).length;
        });
      if (r % 2 === 0) {
        const d = runDeframer();
        per.push({ deframerMBps: d, copyMBps: runCopy() });
      } else {
        const c = runCopy();
        per.push({ deframerMBps: runDeframer(), copyMBps: c });
      }
    }
    if (sink < 0) throw new Error("unreachable");
    const deframerMBps = median(per.map((p) => p.deframerMBps));
    const copyMBps = median(per.map((p) => p.copyMBps));
    scenarios.push({
      name: input.name,
      description: input.description,
      inputBytes: input.wire.length,
      readBytes: input.readBytes,
      repetitions: options.repetitions,
      deframerMBps: round(deframerMBps, 1),
      copyMBps: round(copyMBps, 1),
      ratio: round(deframerMBps / copyMBps, 2),
      outputIdentical,
      perRepetition: per.map((p) => ({
        deframerMBps: round(p.deframerMBps, 1),
        copyMBps: round(p.copyMBps, 1),
      })),
    });
  }
  return scenarios;
}
