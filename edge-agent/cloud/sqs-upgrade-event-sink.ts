import type { DeviceEvent } from "../../lib/contracts/events.ts";
import type { UpgradeProgressEvent } from "../../lib/contracts/upgrades.ts";
import type { UpgradeEventSink } from "../upgrades/progress.ts";
import {
  createSqsEventSink,
  type SqsEventSinkConfig,
  type SqsEventSinkCounters,
  type SqsEventSinkDeps,
} from "./sqs-event-sink.ts";

/**
 * Upgrade progress events to the upgrade-events queue (`UPGRADE_EVENTS_QUEUE`, consumed by the
 * upgrades function). The batching, retry, per-device ordering and bounded holding of the device
 * event sink apply unchanged: it reads only `deviceId` and a label from an event and sends the
 * event's JSON as the message body.
 */

export interface SqsUpgradeEventSink extends UpgradeEventSink {
  counters(): SqsEventSinkCounters;
  droppedByKind(): Record<string, number>;
  close(): Promise<void>;
}

export function createSqsUpgradeEventSink(
  config: SqsEventSinkConfig,
  deps: SqsEventSinkDeps,
): SqsUpgradeEventSink {
  const inner = createSqsEventSink(config, deps);
  return {
    emit(event: UpgradeProgressEvent) {
      // The sink's drop logs label events by `type`; the body is the event as the contract has it.
      // (INTEGRATION POINT: a generic sink type in sqs-event-sink.ts would remove this cast.)
      inner.emit(event as unknown as DeviceEvent);
    },
    counters: () => inner.counters(),
    droppedByKind: () => inner.droppedByKind(),
    close: () => inner.close(),
  };
}
