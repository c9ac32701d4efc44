import { Duration, Stack, type StackProps } from "aws-cdk-lib";
import { Rule, Schedule } from "aws-cdk-lib/aws-events";
import { LambdaFunction } from "aws-cdk-lib/aws-events-targets";
import { SqsEventSource } from "aws-cdk-lib/aws-lambda-event-sources";
import type { Construct } from "constructs";
import { EhomeFunction } from "../constructs/function-defaults.ts";
import { AGENT_QUEUE_SENDER_ACTIONS, grantAgentQueues, grantTable } from "../constructs/grants.ts";
import type { QueueWithDlq } from "../constructs/queue-with-dlq.ts";
import { ENV } from "../contracts/env.ts";
import { QUEUES } from "../contracts/queues.ts";
import { TABLES } from "../contracts/tables.ts";
import type { DataStack } from "./data-stack.ts";
import type { MessagingStack } from "./messaging-stack.ts";

export interface FunctionsStackProps extends StackProps {
  readonly data: DataStack;
  readonly messaging: MessagingStack;
  /** Name prefix of the per-agent command queues: the upgrades function sends commands there. */
  readonly agentQueuePrefix: string;
}

/**
 * The queue-driven functions: registry (device events) and command-results. The api function
 * lives in the api stack: API Gateway's invoke permission is created next to the function and
 * names the API, so splitting the two across stacks would make them reference each other.
 */
export class FunctionsStack extends Stack {
  public readonly registry: EhomeFunction;
  public readonly commandResults: EhomeFunction;
  public readonly upgrades: EhomeFunction;

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
      },
    });
    grantTable(this.registry.role, tables.devices, TABLES.devices, "write");
    grantTable(this.registry.role, tables.presence, TABLES.presence, "write");
    consume(this.registry, queues.deviceEvents);

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
