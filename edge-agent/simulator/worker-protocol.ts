import type { SimulatorOptions } from "./options.ts";
import type { StatsSnapshot } from "./stats.ts";

/** Parent → worker process. */
export type ParentMessage =
  | { type: "start"; options: SimulatorOptions }
  | { type: "snapshot"; id: number }
  | { type: "close" };

/** Worker process → parent. */
export type WorkerMessage =
  | { type: "ready"; devices: number }
  | { type: "snapshot"; id: number; snapshot: StatsSnapshot }
  | { type: "closed"; snapshot: StatsSnapshot }
  | { type: "error"; message: string };
