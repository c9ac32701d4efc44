import { afterEach } from "vitest";
import {
  createSimulator,
  type Simulator,
  type SimulatorDeps,
  type SimulatorOptions,
} from "../../../edge-agent/simulator/index.ts";
import { FakePlatform, type FakePlatformOptions } from "./fake-platform.ts";

/**
 * A fake platform plus a simulator pointed at it, both closed after each test. Defaults keep tests
 * fast: registration spread over 20 ms, fixed seed.
 */
export function useHarness() {
  const open: Array<{ close(): Promise<unknown> }> = [];
  afterEach(async () => {
    await Promise.all(open.splice(0).map((o) => o.close()));
  });
  return async function harness(
    options: Partial<SimulatorOptions> = {},
    platformOptions: FakePlatformOptions = {},
    deps: SimulatorDeps = {},
  ): Promise<{ platform: FakePlatform; sim: Simulator }> {
    const platform = await FakePlatform.start(platformOptions);
    open.push(platform);
    const sim = await createSimulator(
      {
        registerSpreadMs: 20,
        seed: 7,
        ...options,
        agent: platform.agent,
        devices: options.devices ?? 1,
      },
      deps,
    );
    open.push(sim);
    return { platform, sim };
  };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
