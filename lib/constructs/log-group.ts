import { RemovalPolicy, Validations } from "aws-cdk-lib";
import { LogGroup, RetentionDays } from "aws-cdk-lib/aws-logs";
import type { Construct } from "constructs";

export interface EhomeLogGroupProps {
  /** Default one year (CT.CLOUDWATCH.PR.2). Shorter only with a written reason. */
  readonly retention?: RetentionDays;
  /** Required when `retention` is under a year: why the shorter retention is acceptable. */
  readonly shortRetentionReason?: string;
}

/**
 * A log group with our defaults: one year of retention, retained when the stack is deleted, and
 * encrypted with the CloudWatch Logs service key (not a customer-managed key; see the
 * acknowledgement below).
 */
export function createLogGroup(
  scope: Construct,
  id: string,
  props: EhomeLogGroupProps = {},
): LogGroup {
  const retention = props.retention ?? RetentionDays.ONE_YEAR;
  const logGroup = new LogGroup(scope, id, { retention, removalPolicy: RemovalPolicy.RETAIN });
  Validations.of(logGroup).acknowledge({
    id: "cdk-validator-cfnguard::cloudwatch_log_group_encrypted_check",
    reason:
      "CloudWatch Logs encrypts every log group at rest with service-managed keys. A customer-managed key would add a key policy per log group for the logs service and a monthly key cost, while read access stays governed by IAM either way; these logs hold no device credentials.",
  });
  if (retention < RetentionDays.ONE_YEAR) {
    if (!props.shortRetentionReason) {
      throw new Error(`log group ${id}: retention under a year needs shortRetentionReason`);
    }
    Validations.of(logGroup).acknowledge({
      id: "cdk-validator-cfnguard::cloudwatch_log_group_retention_period_check",
      reason: props.shortRetentionReason,
    });
  }
  return logGroup;
}
