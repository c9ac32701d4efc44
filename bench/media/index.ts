/**
 * `npm run bench` entry of the media benchmark (add `{ name: "media" }` to BENCHMARKS in
 * bench/run-all.ts; it also runs alone):
 *
 *   npx tsx bench/media/index.ts [--quick] [--stream-mib 64] [--read-bytes 65536]
 *     [--repetitions 7] [--out results.json]
 *
 * Prints one JSON object (BenchmarkResult<DeframerScenario>) on stdout.
 */
import { parseArgs } from "node:util";
import { COMMON_OPTIONS, startResult, writeResult } from "../lib/output.ts";
import { runDeframerBench } from "./deframer.ts";

function int(name: string, v: string | undefined, fallback: number): number {
  if (v === undefined) return fallback;
  const n = Number(v.replace(/_/g, ""));
  if (!Number.isSafeInteger(n) || n < 1) {
    process.stderr.write(`bench/media: --${name} expects a positive integer, got ${v}\n`);
    process.exit(2);
  }
  return n;
}

const argv = process.argv.slice(2);
const { values } = parseArgs({
  args: argv,
  strict: true,
  options: {
    ...COMMON_OPTIONS,
    "stream-mib": { type: "string" },
    "read-bytes": { type: "string" },
    repetitions: { type: "string" },
  },
});
const quick = values.quick === true;
const settings = {
  streamMiB: int("stream-mib", values["stream-mib"], quick ? 4 : 64),
  readBytes: int("read-bytes", values["read-bytes"], 65_536),
  repetitions: int("repetitions", values.repetitions, quick ? 3 : 7),
};
const command = [
  "npx tsx bench/media/index.ts",
  ...argv.filter((a, i) => a !== "--out" && argv[i - 1] !== "--out"),
].join(" ");
const run = startResult("media", quick ? "quick" : "full", command, ["edge-agent/media"]);
const scenarios = runDeframerBench(settings);
writeResult(run.finish(settings, scenarios), values.out);
