/**
 * `npm run fuzz`: the live-agent fuzz (1,000,000 hostile datagrams at a running agent while a
 * legitimate fleet keepalives; bench/fuzz/run.ts) and then the in-process codec fuzz, in one JSON
 * result written to bench/results/fuzz.json (`--out` elsewhere) and rendered into
 * docs/BENCHMARKS.md by `npm run bench -- --render`. Exits 1 when an invariant broke.
 *
 *   npm run fuzz                              1,000,000 datagrams (a few minutes to ~15 on 2 cores)
 *   npm run fuzz -- --count 100000 --seed 7   smaller, another seed
 *   npm run fuzz -- --quick --out /tmp/f.json a smoke run (20,000 datagrams)
 *
 * Every option: bench/fuzz/index.ts.
 */
import { fileURLToPath } from "node:url";
import { main } from "./fuzz/index.ts";

const out = fileURLToPath(new URL("./results/fuzz.json", import.meta.url));
await main(process.argv.slice(2), "npm run fuzz --", out);
