import { ENV } from "../../lib/contracts/env.ts";
import { DeviceEvent } from "../../lib/contracts/events.ts";
import { awsClientConfigFromEnv, createDocumentClient, lazy } from "../shared/clients.ts";
import { systemClock } from "../shared/clock.ts";
import { ConfigError, type Env, optionalEnv, requireEnv } from "../shared/env.ts";
import { createLogger, type Logger, parseLogLevel } from "../shared/logger.ts";
import {
  deviceIdGroupKey,
  parseRecord,
  processPartialBatch,
  type SqsBatchResponse,
  type SqsEvent,
} from "../shared/sqs-batch.ts";
import {
  AGENT_LOST_AFTER_VARIABLE,
  type AgentSweepConfig,
  type AgentSweepResult,
  createAgentSweep,
  createAgentSweepRepository,
  DEFAULT_AGENT_SWEEP_CONFIG,
} from "./agent-sweep.ts";
import { createRegistryRepository } from "./repository.ts";
import { createRegistryService, DEFAULT_REGISTRY_CONFIG, type RegistryService } from "./service.ts";

/** SQS consumer of device events (queue `QUEUES.deviceEvents`), partial batch failures. */
export type RegistryHandler = (event: SqsEvent) => Promise<SqsBatchResponse>;

export function createRegistryHandler(deps: {
  service: RegistryService;
  logger: Logger;
}): RegistryHandler {
  const { service, logger } = deps;
  return async (event) => {
    const parsed = new Map<string, DeviceEvent>();
    for (const record of event.Records) {
      try {
        parsed.set(record.messageId, parseRecord(record, DeviceEvent));
      } catch {
        // Poison: reported by the record handler below.
      }
    }
    // The batch's history items first, in few calls; an event whose item did not make it writes
    // it itself in apply (same order: history before the device write).
    let durable = new Set<DeviceEvent>();
    if (parsed.size > 1) {
      try {
        durable = await service.writeHistory([...parsed.values()]);
      } catch (error) {
        logger.warn("history batch write failed; each event writes its own", { error });
      }
    }
    return processPartialBatch(
      event,
      async (record) => {
        const deviceEvent = parsed.get(record.messageId) ?? parseRecord(record, DeviceEvent);
        const result = await service.apply(deviceEvent, {
          historyWritten: durable.has(deviceEvent),
        });
        logger.debug("device event", {
          eventId: deviceEvent.eventId,
          deviceId: deviceEvent.deviceId,
          type: deviceEvent.type,
          outcome: result.outcome,
          aspects: result.aspects,
        });
      },
      { logger, groupKey: deviceIdGroupKey },
    );
  };
}

/** An SQS batch (the device-events queue), as opposed to the scheduled event of the sweep. */
function isSqsEvent(event: unknown): event is SqsEvent {
  return (
    typeof event === "object" &&
    event !== null &&
    Array.isArray((event as { Records?: unknown }).Records)
  );
}

export function agentSweepConfigFromEnv(env: Env): AgentSweepConfig {
  const raw = optionalEnv(env, AGENT_LOST_AFTER_VARIABLE);
  if (raw === undefined) return DEFAULT_AGENT_SWEEP_CONFIG;
  const seconds = Number(raw);
  if (!Number.isInteger(seconds) || seconds < 1 || seconds > 86_400) {
    throw new ConfigError(`${AGENT_LOST_AFTER_VARIABLE} must be 1-86400 seconds, got ${raw}`);
  }
  return { ...DEFAULT_AGENT_SWEEP_CONFIG, lostAfterSeconds: seconds };
}

/**
 * Composition root from the environment the stack (or the local runner) sets. `close()` releases
 * the client's sockets (the local runner and tests call it; Lambda never needs to).
 */
export function createRegistryHandlerFromEnv(env: Env): {
  /** Device events from the queue. */
  handler: RegistryHandler;
  /** The agent-lost sweep (scheduled). */
  sweep(): Promise<AgentSweepResult>;
  /** Lambda entry: an SQS batch, or anything else (the scheduled event) runs the sweep. */
  handle(event: unknown): Promise<SqsBatchResponse | AgentSweepResult>;
  close(): void;
} {
  const logger = createLogger({
    service: "registry",
    level: parseLogLevel(env.AWS_LAMBDA_LOG_LEVEL),
  });
  const tables = requireEnv(env, [ENV.DEVICES_TABLE, ENV.PRESENCE_TABLE, ENV.AGENTS_TABLE]);
  const sweepConfig = agentSweepConfigFromEnv(env);
  const documentClient = createDocumentClient(awsClientConfigFromEnv(env));
  const repository = createRegistryRepository(
    { devicesTable: tables.DEVICES_TABLE, presenceTable: tables.PRESENCE_TABLE },
    { documentClient },
  );
  const service = createRegistryService(DEFAULT_REGISTRY_CONFIG, {
    repository,
    clock: systemClock,
    logger,
  });
  const agentSweep = createAgentSweep(sweepConfig, {
    repository: createAgentSweepRepository(
      {
        devicesTable: tables.DEVICES_TABLE,
        presenceTable: tables.PRESENCE_TABLE,
        agentsTable: tables.AGENTS_TABLE,
      },
      { documentClient },
    ),
    clock: systemClock,
    logger,
  });
  const handler = createRegistryHandler({ service, logger });
  return {
    handler,
    sweep: () => agentSweep.sweep(),
    handle: (event) => (isSqsEvent(event) ? handler(event) : agentSweep.sweep()),
    close: () => documentClient.destroy(),
  };
}

const root = lazy(() => createRegistryHandlerFromEnv(process.env));

/** Lambda entry point: device-events batches, and the scheduled agent-lost sweep. */
export const handler = (event: unknown): Promise<SqsBatchResponse | AgentSweepResult> =>
  root().handle(event);
