/**
 * `npm run sim -- --devices 1000 --agent 127.0.0.1:7660 …`: plays N EHOME 2.0 devices until Ctrl-C
 * (or --duration-s), printing a status line every interval and a JSON summary at the end.
 */
import { CliUsageError, parseCliArgs, USAGE } from "./cli-args.ts";
import { createSimulator } from "./simulator.ts";
import type { SimulatorStats } from "./stats.ts";
import { statusLine } from "./status-line.ts";
import { runSimulatorWorkers } from "./workers.ts";

interface Runner {
  stats(): Promise<SimulatorStats>;
  close(): Promise<SimulatorStats>;
}

async function startRunner(config: NonNullable<ReturnType<typeof parseCliArgs>>): Promise<Runner> {
  if (config.workers > 1) {
    const w = await runSimulatorWorkers({ ...config.options, workers: config.workers });
    return { stats: () => w.stats(), close: () => w.close() };
  }
  const sim = await createSimulator(config.options);
  await sim.start();
  return {
    stats: async () => sim.stats(),
    close: async () => {
      await sim.close();
      return sim.stats();
    },
  };
}

async function main(): Promise<number> {
  let config: ReturnType<typeof parseCliArgs>;
  try {
    config = parseCliArgs(process.argv.slice(2));
  } catch (err) {
    if (err instanceof CliUsageError) {
      process.stderr.write(`${err.message}\n\n${USAGE}\n`);
      return 2;
    }
    throw err;
  }
  if (config === null) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const { options, workers } = config;
  process.stderr.write(
    `[sim] ${options.devices} devices → ${options.agent.host}:${options.agent.port}` +
      (workers > 1 ? ` in ${workers} worker processes` : "") +
      "\n",
  );
  const runner = await startRunner(config);

  let ticker: NodeJS.Timeout | null = null;
  if (config.statusIntervalMs > 0) {
    ticker = setInterval(() => {
      runner.stats().then(
        (s) => process.stderr.write(`${statusLine(s)}\n`),
        () => {},
      );
    }, config.statusIntervalMs);
  }

  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
    if (config.durationSeconds !== undefined) {
      setTimeout(stop, config.durationSeconds * 1000).unref();
    }
  });
  if (ticker) clearInterval(ticker);
  process.stderr.write("[sim] closing…\n");
  const final = await runner.close();
  process.stdout.write(`${JSON.stringify(final, null, 2)}\n`);
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`[sim] ${(err as Error).message ?? String(err)}\n`);
    process.exitCode = 1;
  },
);
