import type { CatalogueView, CommandEntry } from "../signalling/catalogue.ts";
import type { ResponseMessage, XmlElement } from "../signalling/codec/index.ts";
import type { SimMediaEnv } from "./device-media.ts";
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
  /** Fixtures and record files every device pushes from (loaded on first use). */
  readonly media: SimMediaEnv;
  stateChanged(from: DeviceState, to: DeviceState): void;
  onError(err: unknown): void;
  /**
   * Sends an ALARM to the alarm server of the REGISTER reply (ehome-2.0 §2.1, §5.1) from the
   * simulator's alarm socket; its answer comes back to `onAnswer`. Absent: alarms go to the
   * signalling port.
   */
  sendAlarm?(
    bytes: Uint8Array,
    target: { host: string; port: number },
    sequence: number,
    deviceId: string,
    onAnswer: (m: ResponseMessage) => void,
  ): void;
}

/** What a device's parts (GPS reporter, command responder) use of the device itself. */
export interface DevicePort {
  count(name: CounterName, n?: number): void;
  nextSequence(): number;
  /** Encodes and sends a device REQUEST (REGISTER, KEEPALIVE, GPS …). */
  sendRequest(entry: CommandEntry, sequence: number, params: XmlElement): void;
}
