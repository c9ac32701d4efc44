import { Duration, Stack, type StackProps } from "aws-cdk-lib";
import { Rule, Schedule } from "aws-cdk-lib/aws-events";
import { LambdaFunction } from "aws-cdk-lib/aws-events-targets";
import { PolicyStatement } from "aws-cdk-lib/aws-iam";
import { SqsEventSource } from "aws-cdk-lib/aws-lambda-event-sources";
import type { Construct } from "constructs";
import { EhomeFunction } from "../constructs/function-defaults.ts";
import { AGENT_QUEUE_SENDER_ACTIONS, grantAgentQueues, grantTable } from "../constructs/grants.ts";
import type { QueueWithDlq } from "../constructs/queue-with-dlq.ts";
import { ENV } from "../contracts/env.ts";
import { QUEUES } from "../contracts/queues.ts";
import {
  ALARMS_OPEN_BY_DEADLINE_INDEX,
  DEVICES_BY_AGENT_INDEX,
  TABLES,
} from "../contracts/tables.ts";
import type { DataStack } from "./data-stack.ts";
import type { MessagingStack } from "./messaging-stack.ts";

export interface FunctionsStackProps extends StackProps {
  readonly data: DataStack;
  readonly messaging: MessagingStack;
  /** Name prefix of the per-agent command queues: the upgrades function sends commands there. */
  readonly agentQueuePrefix: string;
}

/**
 * The queue-driven functions: registry (device events, plus the agent-lost sweep every minute),
 * command-results, alarms (alarm and
 * media events, plus a deadline sweep every minute) and upgrades (upgrade events, plus the
 * engine's tick every minute), device-data (GPS positions, passthrough) and media (stream
 * events). The api function
 * lives in the api stack: API Gateway's invoke permission is created next to the function and
 * names the API, so splitting the two across stacks would make them reference each other.
 */
export class FunctionsStack extends Stack {
  public readonly registry: EhomeFunction;
  /** Runs the registry function's agent-lost sweep (functions/registry/agent-sweep.ts). */
  public readonly agentSweep: Rule;
  public readonly commandResults: EhomeFunction;
  public readonly alarms: EhomeFunction;
  /** Runs the alarms function's deadline sweep (`open` past deadline → `partial`). */
  public readonly alarmSweep: Rule;
  public readonly upgrades: EhomeFunction;
  public readonly deviceData: EhomeFunction;
  /** Applies the agents' stream events (media-events queue) to the streams table. */
  public readonly media: EhomeFunction;

  constructor(scope: Construct, id: string, props: FunctionsStackProps) {
    super(scope, id, props);
    const { tables } = props.data;
    const { queues } = props.messaging;

    this.registry = new EhomeFunction(this, "Registry", {
      feature: QUEUES.deviceEvents.consumer.handler,
      description: "Applies device events to the devices and presence tables",
      timeout: Duration.seconds(QUEUES.deviceEvents.consumer.timeoutSeconds),
      environment: {
        [ENV.DEVICES_TABLE]: tables.devices.tableName,
        [ENV.PRESENCE_TABLE]: tables.presence.tableName,
        [ENV.AGENTS_TABLE]: tables.agents.tableName,
      },
    });
    grantTable(this.registry.role, tables.devices, TABLES.devices, "write");
    grantTable(this.registry.role, tables.presence, TABLES.presence, "write");
    // The agent-lost sweep: a Query on the byAgent index (never the table), a Scan of the agents
    // table and the deletion of a lost agent's record once its devices are offline.
    this.registry.role.addToPrincipalPolicy(
      new PolicyStatement({
        actions: ["dynamodb:Query"],
        resources: [`${tables.devices.tableArn}/index/${DEVICES_BY_AGENT_INDEX}`],
      }),
    );
    this.registry.role.addToPrincipalPolicy(
      new PolicyStatement({
        actions: ["dynamodb:Scan", "dynamodb:DeleteItem"],
        resources: [tables.agents.tableArn],
      }),
    );
    consume(this.registry, queues.deviceEvents);
    this.agentSweep = new Rule(this, "AgentSweep", {
      description: "Marks the devices of agents whose heartbeat stopped offline (agent-lost)",
      schedule: Schedule.rate(Duration.minutes(1)),
      targets: [new LambdaFunction(this.registry.function, { retryAttempts: 0 })],
    });

    this.commandResults = new EhomeFunction(this, "CommandResults", {
      feature: QUEUES.commandResults.consumer.handler,
      description: "Records the final state of each command",
      timeout: Duration.seconds(QUEUES.commandResults.consumer.timeoutSeconds),
      environment: {
        [ENV.COMMANDS_TABLE]: tables.commands.tableName,
      },
    });
    grantTable(this.commandResults.role, tables.commands, TABLES.commands, "write");
    consume(this.commandResults, queues.commandResults);

    this.alarms = new EhomeFunction(this, "Alarms", {
      feature: QUEUES.alarmEvents.consumer.handler,
      description: "Correlates alarms with their pictures and videos; closes captures",
      timeout: Duration.seconds(QUEUES.alarmEvents.consumer.timeoutSeconds),
      environment: {
        [ENV.ALARMS_TABLE]: tables.alarms.tableName,
        [ENV.ALARM_MEDIA_TABLE]: tables.alarmMedia.tableName,
        [ENV.CAPTURES_TABLE]: tables.captures.tableName,
      },
    });
    // Reads: the sweep's Query on the sparse open-by-deadline index only (not the list indexes).
    grantTable(
      this.alarms.role,
      tables.alarms,
      {
        ...TABLES.alarms,
        indexes: TABLES.alarms.indexes.filter((i) => i.indexName === ALARMS_OPEN_BY_DEADLINE_INDEX),
      },
      "readWrite",
    );
    // Updates with ReturnValues need no read permission.
    grantTable(this.alarms.role, tables.alarmMedia, TABLES.alarmMedia, "write");
    grantTable(this.alarms.role, tables.captures, TABLES.captures, "write");
    consume(this.alarms, queues.alarmEvents);
    this.alarmSweep = new Rule(this, "AlarmSweep", {
      description: "Moves alarms still open past their media deadline to partial",
      schedule: Schedule.rate(Duration.minutes(1)),
      targets: [new LambdaFunction(this.alarms.function, { retryAttempts: 0 })],
    });

    // Upgrade engine (issue 6): progress events from the queue, and a tick every minute.
    this.upgrades = new EhomeFunction(this, "Upgrades", {
      feature: QUEUES.upgradeEvents.consumer.handler,
      description: "Upgrade campaigns: dispatch, progress, outcomes (schedule + upgrade-events)",
      timeout: Duration.seconds(QUEUES.upgradeEvents.consumer.timeoutSeconds),
      environment: {
        [ENV.DEVICES_TABLE]: tables.devices.tableName,
        [ENV.PRESENCE_TABLE]: tables.presence.tableName,
        [ENV.COMMANDS_TABLE]: tables.commands.tableName,
        [ENV.AGENTS_TABLE]: tables.agents.tableName,
        [ENV.FIRMWARE_TABLE]: tables.firmware.tableName,
        [ENV.CAMPAIGNS_TABLE]: tables.campaigns.tableName,
        [ENV.EXECUTIONS_TABLE]: tables.executions.tableName,
        [ENV.AGENT_QUEUE_PREFIX]: props.agentQueuePrefix,
        // A CloudFormation dynamic reference, resolved at deploy time: the key is never in the
        // template (it is in the function's configuration, readable with
        // lambda:GetFunctionConfiguration; no Secrets Manager client is bundled yet).
        [ENV.FIRMWARE_TOKEN_KEY]: props.data.firmwareTokenKey.secretValue.unsafeUnwrap(),
      },
    });
    const upgradesRole = this.upgrades.role;
    grantTable(upgradesRole, tables.devices, TABLES.devices, "read");
    grantTable(upgradesRole, tables.agents, TABLES.agents, "read");
    grantTable(upgradesRole, tables.commands, TABLES.commands, "readWrite");
    grantTable(upgradesRole, tables.firmware, TABLES.firmware, "read");
    grantTable(upgradesRole, tables.campaigns, TABLES.campaigns, "readWrite");
    grantTable(upgradesRole, tables.executions, TABLES.executions, "readWrite");
    grantAgentQueues(upgradesRole, props.agentQueuePrefix, AGENT_QUEUE_SENDER_ACTIONS);
    consume(this.upgrades, queues.upgradeEvents);
    new Rule(this, "UpgradesTick", {
      description: "Runs the upgrade engine's tick",
      schedule: Schedule.rate(Duration.minutes(1)),
      targets: [new LambdaFunction(this.upgrades.function, { retryAttempts: 0 })],
    });

    // GPS positions and device-initiated passthrough messages (issue 8).
    this.deviceData = new EhomeFunction(this, "DeviceData", {
      feature: QUEUES.deviceData.consumer.handler,
      description: "Stores GPS positions (latest on the device record) and passthrough messages",
      timeout: Duration.seconds(QUEUES.deviceData.consumer.timeoutSeconds),
      environment: {
        [ENV.DEVICES_TABLE]: tables.devices.tableName,
        [ENV.POSITIONS_TABLE]: tables.positions.tableName,
        [ENV.PASSTHROUGH_TABLE]: tables.passthrough.tableName,
      },
    });
    grantTable(this.deviceData.role, tables.devices, TABLES.devices, "write");
    grantTable(this.deviceData.role, tables.positions, TABLES.positions, "write");
    grantTable(this.deviceData.role, tables.passthrough, TABLES.passthrough, "write");
    consume(this.deviceData, queues.deviceData);
    // Media (issue 4): stream state and counters from the agents.
    this.media = new EhomeFunction(this, "Media", {
      feature: QUEUES.mediaEvents.consumer.handler,
      description: "Applies stream events (state, counters, download objects) to the streams table",
      timeout: Duration.seconds(QUEUES.mediaEvents.consumer.timeoutSeconds),
      environment: {
        [ENV.STREAMS_TABLE]: tables.streams.tableName,
      },
    });
    // Conditional updates; ReturnValuesOnConditionCheckFailure needs no read permission.
    grantTable(this.media.role, tables.streams, TABLES.streams, "write");
    consume(this.media, queues.mediaEvents);
  }
}

/** Wires the queue to the function with the event-source settings from the contract. */
function consume(fn: EhomeFunction, queue: QueueWithDlq): void {
  const consumer = queue.definition.consumer;
  fn.function.addEventSource(
    new SqsEventSource(queue.queue, {
      batchSize: consumer.batchSize,
      maxBatchingWindow: Duration.seconds(consumer.maxBatchingWindowSeconds),
      reportBatchItemFailures: consumer.reportBatchItemFailures,
    }),
  );
}
