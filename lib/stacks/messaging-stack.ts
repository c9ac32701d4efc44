import { RemovalPolicy, Stack, type StackProps } from "aws-cdk-lib";
import { SnsAction } from "aws-cdk-lib/aws-cloudwatch-actions";
import { AnyPrincipal, Effect, PolicyStatement, ServicePrincipal } from "aws-cdk-lib/aws-iam";
import { Key } from "aws-cdk-lib/aws-kms";
import { Topic } from "aws-cdk-lib/aws-sns";
import { EmailSubscription } from "aws-cdk-lib/aws-sns-subscriptions";
import type { Construct } from "constructs";
import { QueueWithDlq } from "../constructs/queue-with-dlq.ts";
import { QUEUE_KEYS, QUEUES, type QueueKey } from "../contracts/queues.ts";

export interface MessagingStackProps extends StackProps {
  /** Optional e-mail address subscribed to the alarm topic. */
  readonly alarmEmail?: string;
}

/**
 * The static queues from `lib/contracts/queues.ts`, each with its DLQ and DLQ-depth alarm, and the
 * operators' alarm topic. Per-agent command queues are created by the agents at runtime.
 */
export class MessagingStack extends Stack {
  public readonly queues: Record<QueueKey, QueueWithDlq>;
  public readonly alarmTopic: Topic;
  public readonly alarmAction: SnsAction;

  constructor(scope: Construct, id: string, props: MessagingStackProps = {}) {
    super(scope, id, props);

    // A customer-managed key: CloudWatch alarms cannot publish to a topic encrypted with the
    // AWS-managed SNS key, because its key policy cannot be extended to cloudwatch.amazonaws.com.
    const topicKey = new Key(this, "AlarmTopicKey", {
      description: "Encrypts the alarm topic",
      enableKeyRotation: true,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    topicKey.addToResourcePolicy(
      new PolicyStatement({
        principals: [new ServicePrincipal("cloudwatch.amazonaws.com")],
        actions: ["kms:Decrypt", "kms:GenerateDataKey*"],
        resources: ["*"],
        conditions: { StringEquals: { "aws:SourceAccount": this.account } },
      }),
    );
    // Grants on this key only for AWS services acting on AWS resources (CT.KMS.PR.3).
    topicKey.addToResourcePolicy(
      new PolicyStatement({
        effect: Effect.DENY,
        principals: [new AnyPrincipal()],
        actions: ["kms:CreateGrant"],
        resources: ["*"],
        conditions: {
          BoolIfExists: {
            "kms:GrantIsForAWSResource": "false",
            "aws:PrincipalIsAWSService": "false",
          },
        },
      }),
    );
    this.alarmTopic = new Topic(this, "AlarmTopic", {
      displayName: "EHOME platform alarms",
      masterKey: topicKey,
      enforceSSL: true,
    });
    if (props.alarmEmail) {
      this.alarmTopic.addSubscription(new EmailSubscription(props.alarmEmail));
    }
    this.alarmAction = new SnsAction(this.alarmTopic);

    this.queues = Object.fromEntries(
      QUEUE_KEYS.map((key) => {
        const definition = QUEUES[key];
        const queue = new QueueWithDlq(this, definition.logicalId, {
          definition,
          alarmAction: this.alarmAction,
        });
        return [key, queue];
      }),
    ) as Record<QueueKey, QueueWithDlq>;
  }
}
