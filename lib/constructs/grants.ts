import { Arn, ArnFormat, Stack, Validations } from "aws-cdk-lib";
import type { ITable } from "aws-cdk-lib/aws-dynamodb";
import { type IRole, PolicyStatement } from "aws-cdk-lib/aws-iam";
import type { TableDefinition } from "../contracts/tables.ts";

/**
 * Grants with explicit actions and explicit resources. The L2 `grant*` helpers use action
 * wildcards (`s3:GetObject*`, `s3:List*`) and `table/index/*`; these list exactly the actions we
 * use and name each index from `tables.ts`, so the roles carry no wildcard except where AWS has
 * no narrower resource (objects in a bucket, queues under a name prefix), and each of those is
 * acknowledged right here, next to the grant that needs it.
 */

export type Access = "read" | "write" | "readWrite";

const TABLE_READ_ACTIONS = [
  "dynamodb:GetItem",
  "dynamodb:BatchGetItem",
  "dynamodb:Query",
  "dynamodb:Scan",
  "dynamodb:ConditionCheckItem",
  "dynamodb:DescribeTable",
];
const TABLE_WRITE_ACTIONS = [
  "dynamodb:PutItem",
  "dynamodb:UpdateItem",
  "dynamodb:DeleteItem",
  "dynamodb:BatchWriteItem",
  "dynamodb:ConditionCheckItem",
  "dynamodb:DescribeTable",
];

export function grantTable(
  role: IRole,
  table: ITable,
  definition: TableDefinition,
  access: Access,
): void {
  const actions = new Set<string>();
  if (access !== "write") for (const a of TABLE_READ_ACTIONS) actions.add(a);
  if (access !== "read") for (const a of TABLE_WRITE_ACTIONS) actions.add(a);
  // Writes address the table; only reads (Query/Scan) address an index.
  const indexArns =
    access === "write"
      ? []
      : definition.indexes.map((index) => `${table.tableArn}/index/${index.indexName}`);
  role.addToPrincipalPolicy(
    new PolicyStatement({ actions: [...actions], resources: [table.tableArn, ...indexArns] }),
  );
}

export interface ObjectsGrantTarget {
  /** ARN of the bucket (for ListBucket). */
  readonly bucketArn: string;
  /**
   * `<bucket ARN>/*`, built on an export with a fixed name so that the wildcard finding it causes
   * has a predictable id to acknowledge (see `DataStack.mediaObjects`).
   */
  readonly objectsArn: string;
  /** How cdk-nag prints `objectsArn` in its IAM5 finding id. */
  readonly objectsFindingResource: string;
}

export function grantBucketObjects(role: IRole, target: ObjectsGrantTarget, access: Access): void {
  const actions: string[] = [];
  if (access !== "write") actions.push("s3:GetObject");
  if (access !== "read") {
    actions.push(
      "s3:PutObject",
      "s3:DeleteObject",
      "s3:AbortMultipartUpload",
      "s3:ListMultipartUploadParts",
    );
  }
  role.addToPrincipalPolicy(new PolicyStatement({ actions, resources: [target.objectsArn] }));
  if (access !== "write") {
    // Without ListBucket a missing key reads as 403 instead of 404.
    role.addToPrincipalPolicy(
      new PolicyStatement({ actions: ["s3:ListBucket"], resources: [target.bucketArn] }),
    );
  }
  Validations.of(role).acknowledge({
    id: `AwsSolutions-IAM5[Resource::${target.objectsFindingResource}]`,
    reason:
      "Object-level S3 actions can only be scoped to key patterns; this is every object of the one media bucket, whose keys are device and capture ids not known at deploy time.",
  });
}

/** ARN pattern of every queue whose name starts with `prefix`, in the stack's account/region. */
export function queuePrefixArn(stack: Stack, prefix: string): string {
  return Arn.format(
    { service: "sqs", resource: `${prefix}*`, arnFormat: ArnFormat.NO_RESOURCE_NAME },
    stack,
  );
}

/**
 * What an agent does with its own command queue and its DLQ (edge-agent/cloud/agent-queue.ts):
 * create both at start, or, when they exist, look them up and set the contract's attributes on
 * them; read the DLQ's ARN for the redrive policy; receive and delete messages. No
 * `sqs:DeleteQueue` (an agent never deletes its queue: a restarted agent with the same id adopts
 * it) and no `sqs:ChangeMessageVisibility` (nothing extends a receive): grant them when code
 * calls them.
 */
export const AGENT_QUEUE_OWNER_ACTIONS = [
  "sqs:CreateQueue",
  "sqs:GetQueueUrl",
  "sqs:SetQueueAttributes",
  "sqs:GetQueueAttributes",
  "sqs:ReceiveMessage",
  "sqs:DeleteMessage",
];

/** What the api function does with agent command queues: send to the owning agent's queue. */
export const AGENT_QUEUE_SENDER_ACTIONS = ["sqs:SendMessage", "sqs:GetQueueUrl"];

export function grantAgentQueues(role: IRole, prefix: string, actions: readonly string[]): void {
  role.addToPrincipalPolicy(
    new PolicyStatement({
      actions: [...actions],
      resources: [queuePrefixArn(Stack.of(role), prefix)],
    }),
  );
  Validations.of(role).acknowledge({
    id: `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:sqs:<AWS::Region>:<AWS::AccountId>:${prefix}*]`,
    reason:
      "Each agent creates its own command queue at start, named after its runtime id; the name prefix is the narrowest resource that exists at deploy time.",
  });
}
