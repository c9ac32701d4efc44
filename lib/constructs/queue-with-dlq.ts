import { Duration, RemovalPolicy } from "aws-cdk-lib";
import {
  Alarm,
  ComparisonOperator,
  type IAlarmAction,
  TreatMissingData,
} from "aws-cdk-lib/aws-cloudwatch";
import { Queue, QueueEncryption, RedrivePermission } from "aws-cdk-lib/aws-sqs";
import { Construct } from "constructs";
import type { QueueDefinition } from "../contracts/queues.ts";

export interface QueueWithDlqProps {
  readonly definition: QueueDefinition;
  /** Where the DLQ-depth alarm goes (e.g. the operators' SNS topic). */
  readonly alarmAction?: IAlarmAction;
}

/**
 * A work queue, its dead-letter queue, and an alarm that fires as soon as one message lands in
 * the DLQ (a poison message means a bug or an outage; it should never sit there unnoticed). Both
 * queues are encrypted at rest and refuse requests that are not over TLS.
 */
export class QueueWithDlq extends Construct {
  public readonly queue: Queue;
  public readonly deadLetterQueue: Queue;
  public readonly dlqDepthAlarm: Alarm;
  public readonly definition: QueueDefinition;

  constructor(scope: Construct, id: string, props: QueueWithDlqProps) {
    super(scope, id);
    const def = props.definition;
    this.definition = def;

    this.deadLetterQueue = new Queue(this, "DeadLetterQueue", {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.seconds(def.deadLetter.retentionSeconds),
      // Marks it as a DLQ (CT.SQS.PR.1). `allowAll` is SQS's default anyway; `byQueue` would have
      // to name the work queue, which already names this one: a circular reference.
      redriveAllowPolicy: { redrivePermission: RedrivePermission.ALLOW_ALL },
      removalPolicy: RemovalPolicy.RETAIN,
    });

    this.queue = new Queue(this, "Queue", {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      visibilityTimeout: Duration.seconds(def.visibilityTimeoutSeconds),
      retentionPeriod: Duration.seconds(def.retentionSeconds),
      deadLetterQueue: {
        queue: this.deadLetterQueue,
        maxReceiveCount: def.deadLetter.maxReceiveCount,
      },
      removalPolicy: RemovalPolicy.RETAIN,
    });

    this.dlqDepthAlarm = new Alarm(this, "DlqDepthAlarm", {
      alarmDescription: `Messages in the ${def.localName} dead-letter queue: a consumer failed them ${def.deadLetter.maxReceiveCount} times.`,
      metric: this.deadLetterQueue.metricApproximateNumberOfMessagesVisible({
        period: Duration.minutes(1),
        statistic: "Maximum",
      }),
      threshold: 1,
      comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: TreatMissingData.NOT_BREACHING,
    });
    if (props.alarmAction) {
      this.dlqDepthAlarm.addAlarmAction(props.alarmAction);
      this.dlqDepthAlarm.addOkAction(props.alarmAction);
    }
  }
}
