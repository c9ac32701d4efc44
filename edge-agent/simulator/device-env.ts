import type { CatalogueView, CommandEntry } from "../signalling/catalogue.ts";
import type { XmlElement } from "../signalling/codec/index.ts";
import type { SafeEmitter } from "./emitter.ts";
import type { HistogramData } from "./histogram.ts";
import type { ResolvedOptions } from "./options.ts";
import type { Random } from "./random.ts";
import type { Scheduler } from "./scheduler.ts";
import type { CounterName, Counters, DeviceState } from "./stats.ts";
import type { SimulatorEvents } from "./types.ts";

/** What every device shares with the simulator that owns it. */
export interface DeviceEnv {
  readonly options: ResolvedOptions;
  readonly view: CatalogueView;
  readonly scheduler: Scheduler;
  readonly random: Random;
  readonly wallClock: () => number;
  readonly totals: Counters;
  readonly latency: HistogramData;
  readonly events: SafeEmitter<SimulatorEvents>;
  stateChanged(from: DeviceState, to: DeviceState): void;
  onError(err: unknown): void;
}

/** What a device's parts (GPS reporter, command responder) use of the device itself. */
export interface DevicePort {
  count(name: CounterName, n?: number): void;
  nextSequence(): number;
  /** Encodes and sends a device REQUEST (REGISTER, KEEPALIVE, GPS …). */
  sendRequest(entry: CommandEntry, sequence: number, params: XmlElement): void;
}
