/**
 * Security-relevant properties of the synthesized stacks. One synth of the whole app is shared by
 * the file (beforeAll), which is why the stacks are tested together rather than one file each.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Capture, Match } from "aws-cdk-lib/assertions";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ENV } from "../../lib/contracts/env.ts";
import { PORTS } from "../../lib/contracts/ports.ts";
import { QUEUE_KEYS, QUEUES } from "../../lib/contracts/queues.ts";
import { MEDIA_LIFECYCLE, MEDIA_PREFIXES } from "../../lib/contracts/storage.ts";
import { projectionOf, TABLE_KEYS, TABLES, type TableKey } from "../../lib/contracts/tables.ts";
import {
  acknowledgements,
  asArray,
  type CfnTemplate,
  describeValue,
  logicalId,
  roleStatements,
  STACK_KEYS,
  type SynthResult,
  synthEhomeApp,
} from "../helpers/cdk-synth.ts";

// A synth takes a few seconds of CPU; the margin is for a machine busy with other suites.
const SYNTH_TIMEOUT_MS = 180_000;

/**
 * Secret values planted in the environment of the synth: the app must never copy a key or token
 * from the machine that deploys into a template (on AWS they come from Secrets Manager).
 */
const PLANTED = {
  [ENV.FIRMWARE_TOKEN_KEY]: `planted-firmware-key-${Math.random().toString(36).slice(2)}`,
  EHOME_API_TOKEN: `planted-api-token-${Math.random().toString(36).slice(2)}`,
} as const;

let s: SynthResult;
beforeAll(() => {
  const saved = Object.fromEntries(Object.keys(PLANTED).map((k) => [k, process.env[k]]));
  Object.assign(process.env, PLANTED);
  try {
    s = synthEhomeApp();
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}, SYNTH_TIMEOUT_MS);
afterAll(() => s?.cleanup());

describe("secrets", () => {
  // A variable holding a secret, not one about it (e.g. a token TTL).
  const SECRET_NAME = /(_KEY|_TOKEN|SECRET|PASSWORD)$/;

  it("no template (nor any file of the cloud assembly) holds a key or token from the environment", () => {
    const files = readdirSync(s.outdir).filter((f) => f.endsWith(".json"));
    expect(files.length).toBeGreaterThan(STACK_KEYS.length);
    for (const file of files) {
      const text = readFileSync(join(s.outdir, file), "utf8");
      for (const value of Object.values(PLANTED)) expect(text, file).not.toContain(value);
    }
  });

  it("every function variable named like a secret is a Secrets Manager dynamic reference", () => {
    let secrets = 0;
    for (const key of STACK_KEYS) {
      for (const [id, fn] of resourcesOf(s.json[key], "AWS::Lambda::Function")) {
        const vars = (fn.Properties!.Environment as { Variables?: Record<string, unknown> })
          ?.Variables;
        for (const [name, value] of Object.entries(vars ?? {})) {
          if (!SECRET_NAME.test(name)) continue;
          secrets++;
          expect(JSON.stringify(value), `${id} ${name}`).toMatch(/\{\{resolve:secretsmanager:/);
        }
      }
    }
    expect(secrets).toBeGreaterThan(0);
  });

  it("the agent container gets its secrets from Secrets Manager, none as plain environment", () => {
    const { agent, env } = agentContainer(s.json.edge);
    for (const name of Object.keys(env)) expect(name).not.toMatch(SECRET_NAME);
    const secrets = agent.Secrets as { Name: string; ValueFrom: unknown }[];
    expect(secrets.map((x) => x.Name)).toContain(ENV.FIRMWARE_TOKEN_KEY);
    for (const secret of secrets) {
      // A reference to a secret resource of the data stack, never a literal.
      const ref = /^<(\w+)>$/.exec(describeValue(secret.ValueFrom, "ehome-edge", s.json))?.[1];
      expect(s.json.data.Resources[ref ?? ""]?.Type, secret.Name).toBe(
        "AWS::SecretsManager::Secret",
      );
    }
  });
});

const resourcesOf = (t: CfnTemplate, type: string) =>
  Object.entries(t.Resources).filter(([, r]) => r.Type === type);

type ContainerDefinition = Record<string, unknown> & {
  Environment: { Name: string; Value: unknown }[];
};
/** The agent container of the edge stack and its environment as a name → value record. */
const agentContainer = (edge: CfnTemplate) => {
  const [taskDefinition, ...more] = resourcesOf(edge, "AWS::ECS::TaskDefinition");
  expect(more).toEqual([]);
  const [agent] = taskDefinition![1].Properties!.ContainerDefinitions as ContainerDefinition[];
  const env = Object.fromEntries(agent!.Environment.map((e) => [e.Name, e.Value]));
  return { agent: agent!, env };
};

describe("data stack", () => {
  it("creates every table of tables.ts with its keys, indexes and TTL", () => {
    const data = s.templates.data;
    data.resourceCountIs("AWS::DynamoDB::Table", TABLE_KEYS.length);
    for (const key of TABLE_KEYS) {
      const def = TABLES[key];
      const id = logicalId(s.json.data, "AWS::DynamoDB::Table", def.logicalId);
      const props = s.json.data.Resources[id]!.Properties!;
      const sortKey = "sortKey" in def ? def.sortKey : undefined;
      expect(props.KeySchema).toEqual([
        { AttributeName: def.partitionKey.name, KeyType: "HASH" },
        ...(sortKey ? [{ AttributeName: sortKey.name, KeyType: "RANGE" }] : []),
      ]);
      const indexes = (props.GlobalSecondaryIndexes ?? []) as {
        IndexName: string;
        Projection: unknown;
      }[];
      expect(indexes.map((i) => i.IndexName)).toEqual(def.indexes.map((i) => i.indexName));
      expect(indexes.map((i) => i.Projection)).toEqual(def.indexes.map((i) => projectionOf(i)));
      const ttl = "ttlAttribute" in def ? def.ttlAttribute : undefined;
      expect(props.TimeToLiveSpecification).toEqual(
        ttl ? { AttributeName: ttl, Enabled: true } : undefined,
      );
    }
  });

  it("turns on PITR and KMS encryption, bills on demand, retains, and hard-codes no name", () => {
    for (const [id, table] of resourcesOf(s.json.data, "AWS::DynamoDB::Table")) {
      expect(table, id).toMatchObject({
        DeletionPolicy: "Retain",
        Properties: {
          PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
          // SSEEnabled with no key: the AWS managed KMS key (aws/dynamodb).
          SSESpecification: { SSEEnabled: true },
          BillingMode: "PAY_PER_REQUEST",
          DeletionProtectionEnabled: true,
        },
      });
      expect(table.Properties).not.toHaveProperty("TableName");
    }
  });

  it("keeps the media bucket private, KMS-encrypted, versioned and access-logged", () => {
    const logs = logicalId(s.json.data, "AWS::S3::Bucket", "AccessLogs");
    s.templates.data.hasResource("AWS::S3::Bucket", {
      DeletionPolicy: "Retain",
      Properties: Match.objectLike({
        BucketEncryption: {
          ServerSideEncryptionConfiguration: [
            {
              BucketKeyEnabled: true,
              ServerSideEncryptionByDefault: { SSEAlgorithm: "aws:kms" },
            },
          ],
        },
        VersioningConfiguration: { Status: "Enabled" },
        OwnershipControls: { Rules: [{ ObjectOwnership: "BucketOwnerEnforced" }] },
        LoggingConfiguration: { DestinationBucketName: { Ref: logs }, LogFilePrefix: "media/" },
      }),
    });
  });

  it("blocks all public access and denies non-TLS requests on every bucket", () => {
    const buckets = resourcesOf(s.json.data, "AWS::S3::Bucket");
    expect(buckets).toHaveLength(2);
    for (const [id, bucket] of buckets) {
      expect(bucket.Properties?.PublicAccessBlockConfiguration, id).toEqual({
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      });
      expect(bucket.Properties).not.toHaveProperty("BucketName");
      s.templates.data.hasResourceProperties("AWS::S3::BucketPolicy", {
        Bucket: { Ref: id },
        PolicyDocument: {
          Statement: Match.arrayWith([
            Match.objectLike({
              Effect: "Deny",
              Action: "s3:*",
              Principal: { AWS: "*" },
              Condition: { Bool: { "aws:SecureTransport": "false" } },
            }),
          ]),
        },
      });
    }
  });

  it("ages media by prefix, expires downloads and cleans up multipart uploads", () => {
    const rules = new Capture();
    s.templates.data.hasResourceProperties("AWS::S3::Bucket", {
      BucketEncryption: Match.anyValue(),
      LifecycleConfiguration: { Rules: rules },
      LoggingConfiguration: Match.anyValue(),
    });
    const byPrefix = (prefix: string) =>
      (rules.asArray() as { Prefix?: string }[]).find((r) => r.Prefix === prefix);
    expect(rules.asArray()).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          AbortIncompleteMultipartUpload: {
            DaysAfterInitiation: MEDIA_LIFECYCLE.abortIncompleteMultipartAfterDays,
          },
        }),
        expect.objectContaining({
          NoncurrentVersionExpiration: {
            NoncurrentDays: MEDIA_LIFECYCLE.noncurrentVersionsExpireAfterDays,
          },
        }),
      ]),
    );
    expect(byPrefix(MEDIA_PREFIXES.downloads)).toMatchObject({
      ExpirationInDays: MEDIA_LIFECYCLE.downloadsExpireAfterDays,
      Status: "Enabled",
    });
    for (const prefix of [MEDIA_PREFIXES.pictures, MEDIA_PREFIXES.videos]) {
      expect(byPrefix(prefix)).toMatchObject({
        ExpirationInDays: MEDIA_LIFECYCLE.mediaExpiresAfterDays,
        Transitions: [
          {
            StorageClass: "STANDARD_IA",
            TransitionInDays: MEDIA_LIFECYCLE.infrequentAccessAfterDays,
          },
        ],
      });
    }
    expect(byPrefix(MEDIA_PREFIXES.firmware)).toBeUndefined();
  });
});

describe("messaging stack", () => {
  const queueIds = (key: (typeof QUEUE_KEYS)[number]) => ({
    queue: logicalId(s.json.messaging, "AWS::SQS::Queue", `${QUEUES[key].logicalId}Queue`),
    dlq: logicalId(s.json.messaging, "AWS::SQS::Queue", `${QUEUES[key].logicalId}DeadLetterQueue`),
  });

  it("gives every queue of queues.ts a DLQ with the contract's redrive and timeouts", () => {
    s.templates.messaging.resourceCountIs("AWS::SQS::Queue", 2 * QUEUE_KEYS.length);
    for (const key of QUEUE_KEYS) {
      const def = QUEUES[key];
      const { queue, dlq } = queueIds(key);
      expect(s.json.messaging.Resources[queue]!.Properties).toMatchObject({
        RedrivePolicy: {
          deadLetterTargetArn: { "Fn::GetAtt": [dlq, "Arn"] },
          maxReceiveCount: def.deadLetter.maxReceiveCount,
        },
        VisibilityTimeout: def.visibilityTimeoutSeconds,
        MessageRetentionPeriod: def.retentionSeconds,
      });
      expect(s.json.messaging.Resources[dlq]!.Properties).toMatchObject({
        MessageRetentionPeriod: def.deadLetter.retentionSeconds,
      });
    }
  });

  it("encrypts every queue, denies non-TLS access, retains, and hard-codes no name", () => {
    for (const [id, queue] of resourcesOf(s.json.messaging, "AWS::SQS::Queue")) {
      expect(queue, id).toMatchObject({
        DeletionPolicy: "Retain",
        Properties: { SqsManagedSseEnabled: true },
      });
      expect(queue.Properties).not.toHaveProperty("QueueName");
      s.templates.messaging.hasResourceProperties("AWS::SQS::QueuePolicy", {
        Queues: [{ Ref: id }],
        PolicyDocument: {
          Statement: Match.arrayWith([
            Match.objectLike({
              Effect: "Deny",
              Condition: { Bool: { "aws:SecureTransport": "false" } },
            }),
          ]),
        },
      });
    }
  });

  it("alarms on the first message in each DLQ, to the encrypted alarm topic", () => {
    const topic = logicalId(s.json.messaging, "AWS::SNS::Topic", "AlarmTopic");
    s.templates.messaging.hasResourceProperties("AWS::SNS::Topic", {
      KmsMasterKeyId: Match.anyValue(),
    });
    for (const key of QUEUE_KEYS) {
      s.templates.messaging.hasResourceProperties("AWS::CloudWatch::Alarm", {
        Namespace: "AWS/SQS",
        MetricName: "ApproximateNumberOfMessagesVisible",
        Dimensions: [
          { Name: "QueueName", Value: { "Fn::GetAtt": [queueIds(key).dlq, "QueueName"] } },
        ],
        ComparisonOperator: "GreaterThanOrEqualToThreshold",
        Threshold: 1,
        AlarmActions: [{ Ref: topic }],
      });
    }
  });
});

describe("functions", () => {
  const allFunctions = () =>
    STACK_KEYS.flatMap((k) => resourcesOf(s.json[k], "AWS::Lambda::Function"));

  it("run nodejs22.x on arm64, bundled as ESM, with their own log group", () => {
    // api, registry, command-results, alarms, upgrades, device-data, media
    expect(allFunctions()).toHaveLength(7);
    for (const [id, fn] of allFunctions()) {
      expect(fn.Properties, id).toMatchObject({
        Runtime: "nodejs22.x",
        Architectures: ["arm64"],
        Handler: "index.handler",
        LoggingConfig: { LogFormat: "JSON", LogGroup: { Ref: expect.any(String) } },
      });
    }
  });

  it("tick the upgrade engine every minute; its token key comes from Secrets Manager, never in clear", () => {
    const fnId = logicalId(s.json.functions, "AWS::Lambda::Function", "UpgradesFunction");
    // One rule per scheduled function (the alarms sweep has its own, tested below).
    const rules = resourcesOf(s.json.functions, "AWS::Events::Rule").filter(([, r]) =>
      JSON.stringify(r.Properties!.Targets).includes(fnId),
    );
    expect(rules).toHaveLength(1);
    const rule = rules[0]![1].Properties!;
    expect(rule.ScheduleExpression).toBe("rate(1 minute)");
    expect(JSON.stringify(rule.Targets)).toContain(fnId);
    const vars = (
      s.json.functions.Resources[fnId]!.Properties!.Environment as {
        Variables: Record<string, unknown>;
      }
    ).Variables;
    expect(JSON.stringify(vars[ENV.FIRMWARE_TOKEN_KEY])).toContain("resolve:secretsmanager");
    // The firmware and stream token keys.
    expect(resourcesOf(s.json.data, "AWS::SecretsManager::Secret")).toHaveLength(2);
  });

  it("give the api function the stream token key from Secrets Manager, never in clear", () => {
    const fnId = logicalId(s.json.api, "AWS::Lambda::Function", "ApiFunction");
    const vars = (
      s.json.api.Resources[fnId]!.Properties!.Environment as { Variables: Record<string, unknown> }
    ).Variables;
    const ref = JSON.stringify(vars[ENV.STREAM_TOKEN_KEY]);
    expect(ref).toContain("resolve:secretsmanager");
    expect(ref).toContain("StreamTokenKey");
    expect(vars).toHaveProperty(ENV.STREAMS_TABLE);
  });

  it("media applies stream events with write-only access to the streams table", () => {
    const fnId = logicalId(s.json.functions, "AWS::Lambda::Function", "MediaFunction");
    const vars = (
      s.json.functions.Resources[fnId]!.Properties!.Environment as {
        Variables: Record<string, unknown>;
      }
    ).Variables;
    expect(Object.keys(vars).sort()).toEqual([ENV.STREAMS_TABLE, "NODE_OPTIONS"].sort());
  });

  it("consume each queue with the contract's batch settings and partial batch failures", () => {
    for (const key of QUEUE_KEYS) {
      const def = QUEUES[key];
      const fnPrefix = {
        registry: "Registry",
        "command-results": "CommandResults",
        alarms: "Alarms",
        upgrades: "Upgrades",
        "device-data": "DeviceData",
        media: "Media",
      }[def.consumer.handler];
      const fnId = logicalId(s.json.functions, "AWS::Lambda::Function", `${fnPrefix}Function`);
      const mapping = resourcesOf(s.json.functions, "AWS::Lambda::EventSourceMapping").find(
        ([, m]) => (m.Properties!.FunctionName as { Ref: string }).Ref === fnId,
      );
      expect(mapping, key).toBeDefined();
      const props = mapping![1].Properties!;
      expect(describeValue(props.EventSourceArn, "ehome-functions", s.json)).toMatch(
        new RegExp(`^messaging/${def.logicalId}Queue[0-9A-F]{8}\\.Arn$`),
      );
      expect(props).toMatchObject({
        BatchSize: def.consumer.batchSize,
        FunctionResponseTypes: ["ReportBatchItemFailures"],
      });
      expect(props.MaximumBatchingWindowInSeconds ?? 0).toBe(def.consumer.maxBatchingWindowSeconds);
      const timeout = s.json.functions.Resources[fnId]!.Properties!.Timeout as number;
      expect(def.visibilityTimeoutSeconds).toBeGreaterThanOrEqual(6 * timeout);
    }
  });

  it("run the alarms deadline sweep every minute through an EventBridge rule", () => {
    const fnId = logicalId(s.json.functions, "AWS::Lambda::Function", "AlarmsFunction");
    s.templates.functions.hasResourceProperties("AWS::Events::Rule", {
      ScheduleExpression: "rate(1 minute)",
      State: "ENABLED",
      Targets: Match.arrayWith([Match.objectLike({ Arn: { "Fn::GetAtt": [fnId, "Arn"] } })]),
    });
    s.templates.functions.hasResourceProperties("AWS::Lambda::Permission", {
      Action: "lambda:InvokeFunction",
      Principal: "events.amazonaws.com",
      FunctionName: { "Fn::GetAtt": [fnId, "Arn"] },
    });
    const vars = s.json.functions.Resources[fnId]!.Properties!.Environment as {
      Variables: Record<string, unknown>;
    };
    expect(Object.keys(vars.Variables).sort()).toEqual(
      [ENV.ALARMS_TABLE, ENV.ALARM_MEDIA_TABLE, ENV.CAPTURES_TABLE, "NODE_OPTIONS"].sort(),
    );
  });

  it("receive table names through the env var names of env.ts, only those they use", () => {
    const registry = logicalId(s.json.functions, "AWS::Lambda::Function", "RegistryFunction");
    const vars = s.json.functions.Resources[registry]!.Properties!.Environment as {
      Variables: Record<string, unknown>;
    };
    // functions/registry: devices and presence, and the agents table for the agent-lost sweep.
    expect(Object.keys(vars.Variables).sort()).toEqual(
      [ENV.DEVICES_TABLE, ENV.PRESENCE_TABLE, ENV.AGENTS_TABLE, "NODE_OPTIONS"].sort(),
    );
  });

  it("run the registry's agent-lost sweep every minute through an EventBridge rule", () => {
    const fnId = logicalId(s.json.functions, "AWS::Lambda::Function", "RegistryFunction");
    const rules = resourcesOf(s.json.functions, "AWS::Events::Rule").filter(([, r]) =>
      JSON.stringify(r.Properties!.Targets).includes(fnId),
    );
    expect(rules).toHaveLength(1);
    expect(rules[0]![1].Properties).toMatchObject({
      ScheduleExpression: "rate(1 minute)",
      State: "ENABLED",
    });
    s.templates.functions.hasResourceProperties("AWS::Lambda::Permission", {
      Action: "lambda:InvokeFunction",
      Principal: "events.amazonaws.com",
      FunctionName: { "Fn::GetAtt": [fnId, "Arn"] },
    });
  });
});

describe("least privilege", () => {
  type Grant = { actions: string[]; resource: string };
  const grantsOf = (stack: "functions" | "api" | "edge", rolePrefix: string): Grant[] =>
    roleStatements(s.json[stack], rolePrefix).flatMap((st) =>
      asArray(st.Resource).map((r) => ({
        actions: asArray(st.Action),
        resource: describeValue(r, stack, s.json),
      })),
    );
  const tableRes = (key: TableKey) =>
    new RegExp(`^data/${TABLES[key].logicalId}[0-9A-F]{8}\\.Arn$`);
  const actionsOn = (grants: Grant[], resource: RegExp | string) =>
    new Set(
      grants
        .filter((g) =>
          typeof resource === "string" ? g.resource === resource : resource.test(g.resource),
        )
        .flatMap((g) => g.actions),
    );

  it("no identity policy allows a data action on resource *", () => {
    // Both are defined on no resource by AWS.
    const allowedOnStar = new Set(["ecr:GetAuthorizationToken", "ec2:DescribeNetworkInterfaces"]);
    for (const key of STACK_KEYS) {
      for (const [id, policy] of resourcesOf(s.json[key], "AWS::IAM::Policy")) {
        const doc = policy.Properties!.PolicyDocument as {
          Statement: { Action: unknown; Resource: unknown }[];
        };
        for (const st of doc.Statement) {
          const actions = asArray(st.Action) as string[];
          for (const action of actions) expect(action, `${id} ${action}`).not.toMatch(/\*$|:\*/);
          if (asArray(st.Resource).includes("*")) {
            for (const action of actions)
              expect(allowedOnStar, `${id}: ${action} on *`).toContain(action);
          }
        }
      }
    }
  });

  it("registry writes devices and presence; the sweep queries byAgent, scans and deletes agents", () => {
    const g = grantsOf("functions", "RegistryRole");
    expect(actionsOn(g, tableRes("devices"))).toContain("dynamodb:UpdateItem");
    expect(actionsOn(g, tableRes("devices"))).not.toContain("dynamodb:Scan");
    expect(actionsOn(g, tableRes("devices"))).not.toContain("dynamodb:Query");
    expect(actionsOn(g, tableRes("presence"))).toContain("dynamodb:PutItem");
    const indexes = g.filter((x) => x.resource.includes("/index/"));
    expect(indexes).toEqual([
      {
        actions: ["dynamodb:Query"],
        resource: expect.stringMatching(/^data\/Devices[0-9A-F]{8}\.Arn\/index\/byAgent$/),
      },
    ]);
    expect(actionsOn(g, tableRes("agents"))).toEqual(
      new Set(["dynamodb:Scan", "dynamodb:DeleteItem"]),
    );
    expect(g.some((x) => x.actions.some((a) => a.startsWith("s3:")))).toBe(false);
    expect(g.some((x) => x.actions.includes("sqs:SendMessage"))).toBe(false);
  });

  it("media writes only the streams table (no reads, no S3, no SQS send)", () => {
    const g = grantsOf("functions", "MediaRole");
    const dynamo = g.filter((x) => x.actions.some((a) => a.startsWith("dynamodb:")));
    expect(dynamo.map((x) => x.resource)).toEqual([expect.stringMatching(tableRes("streams"))]);
    expect(actionsOn(g, tableRes("streams"))).toContain("dynamodb:UpdateItem");
    expect(actionsOn(g, tableRes("streams"))).not.toContain("dynamodb:GetItem");
    expect(g.some((x) => x.actions.some((a) => a.startsWith("s3:")))).toBe(false);
    expect(g.some((x) => x.actions.includes("sqs:SendMessage"))).toBe(false);
  });

  it("command-results writes only the commands table", () => {
    const g = grantsOf("functions", "CommandResultsRole");
    const dynamo = g.filter((x) => x.actions.some((a) => a.startsWith("dynamodb:")));
    expect(dynamo.map((x) => x.resource)).toEqual([expect.stringMatching(tableRes("commands"))]);
  });

  it("alarms updates its three tables, queries only the open-by-deadline index, no S3 or SQS send", () => {
    const g = grantsOf("functions", "AlarmsRole");
    expect(actionsOn(g, tableRes("alarms"))).toEqual(
      expect.objectContaining({ size: expect.any(Number) }),
    );
    expect(actionsOn(g, tableRes("alarms"))).toContain("dynamodb:UpdateItem");
    expect(actionsOn(g, tableRes("alarmMedia"))).toContain("dynamodb:UpdateItem");
    expect(actionsOn(g, tableRes("captures"))).toContain("dynamodb:UpdateItem");
    expect(actionsOn(g, tableRes("captures"))).not.toContain("dynamodb:Query");
    const indexes = g.filter((x) => x.resource.includes("/index/")).map((x) => x.resource);
    expect(indexes).toEqual([
      expect.stringMatching(/^data\/Alarms[0-9A-F]{8}\.Arn\/index\/openByDeadline$/),
    ]);
    for (const key of ["devices", "commands", "agents", "presence"] as const) {
      expect(g.filter((x) => tableRes(key).test(x.resource))).toEqual([]);
    }
    expect(g.some((x) => x.actions.some((a) => a.startsWith("s3:")))).toBe(false);
    expect(g.some((x) => x.actions.includes("sqs:SendMessage"))).toBe(false);
  });

  it("the api function reads indexes by name and sends only to agent queues under the prefix", () => {
    const g = grantsOf("api", "ApiRole");
    const devicesIndex = /^data\/Devices[0-9A-F]{8}\.Arn\/index\/byStatus$/;
    const commandsIndex = /^data\/Commands[0-9A-F]{8}\.Arn\/index\/byDevice$/;
    expect(actionsOn(g, devicesIndex)).toContain("dynamodb:Query");
    expect(actionsOn(g, commandsIndex)).toContain("dynamodb:Query");
    expect(g.some((x) => x.resource.includes("/index/*"))).toBe(false);
    const prefixArn = "arn:<AWS::Partition>:sqs:<AWS::Region>:<AWS::AccountId>:ehome-agent-cmd-*";
    expect(actionsOn(g, prefixArn)).toEqual(new Set(["sqs:SendMessage", "sqs:GetQueueUrl"]));
    expect(actionsOn(g, tableRes("presence"))).not.toContain("dynamodb:PutItem");
    // Alarms are read-only here; captures are created here.
    expect(actionsOn(g, tableRes("alarms"))).toContain("dynamodb:BatchGetItem");
    expect(actionsOn(g, tableRes("alarms"))).not.toContain("dynamodb:UpdateItem");
    expect(actionsOn(g, /^data\/Alarms[0-9A-F]{8}\.Arn\/index\/byReceived$/)).toContain(
      "dynamodb:Query",
    );
    expect(actionsOn(g, tableRes("captures"))).toContain("dynamodb:PutItem");
    expect(g.filter((x) => tableRes("alarmMedia").test(x.resource))).toEqual([]);
    // Streams are created and stopped here.
    expect(actionsOn(g, tableRes("streams"))).toContain("dynamodb:PutItem");
    expect(actionsOn(g, tableRes("streams"))).toContain("dynamodb:GetItem");
  });

  it("the agent manages only queues under its prefix and sends to the static queues", () => {
    const g = grantsOf("edge", "AgentTaskRole");
    const prefixArn = "arn:<AWS::Partition>:sqs:<AWS::Region>:<AWS::AccountId>:ehome-agent-cmd-*";
    // What edge-agent/cloud/agent-queue.ts calls: SetQueueAttributes converges an existing queue;
    // the agent never deletes its queue nor extends a receive.
    expect(actionsOn(g, prefixArn)).toEqual(
      new Set([
        "sqs:CreateQueue",
        "sqs:GetQueueUrl",
        "sqs:SetQueueAttributes",
        "sqs:GetQueueAttributes",
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
      ]),
    );
    expect(actionsOn(g, prefixArn)).not.toContain("sqs:DeleteQueue");
    // EC2: only the public-IP lookup (edge-agent/cloud/public-address.ts).
    expect(g.filter((x) => x.actions.some((a) => a.startsWith("ec2:")))).toEqual([
      { actions: ["ec2:DescribeNetworkInterfaces"], resource: "*" },
    ]);
    const creates = g.filter((x) => x.actions.includes("sqs:CreateQueue")).map((x) => x.resource);
    expect(creates).toEqual([prefixArn]);
    for (const key of QUEUE_KEYS) {
      const queue = new RegExp(`^messaging/${QUEUES[key].logicalId}Queue[0-9A-F]{8}\\.Arn$`);
      expect(actionsOn(g, queue)).toContain("sqs:SendMessage");
      expect(actionsOn(g, queue)).not.toContain("sqs:ReceiveMessage");
    }
    expect(actionsOn(g, tableRes("devices"))).not.toContain("dynamodb:PutItem");
    expect(actionsOn(g, tableRes("agents"))).toContain("dynamodb:PutItem");
  });
});

describe("api stack", () => {
  it("puts the IAM authorizer on every route, including /openapi.json", () => {
    const routes = resourcesOf(s.json.api, "AWS::ApiGatewayV2::Route");
    expect(routes.map(([, r]) => r.Properties!.RouteKey).sort()).toEqual([
      "ANY /{proxy+}",
      "GET /openapi.json",
    ]);
    for (const [id, route] of routes) {
      expect(route.Properties!.AuthorizationType, id).toBe("AWS_IAM");
    }
  });

  it("logs every request on the auto-deployed default stage and throttles it", () => {
    s.templates.api.hasResourceProperties("AWS::ApiGatewayV2::Stage", {
      StageName: "$default",
      AutoDeploy: true,
      AccessLogSettings: {
        DestinationArn: Match.anyValue(),
        Format: Match.stringLikeRegexp("\\$context.requestId"),
      },
      DefaultRouteSettings: { ThrottlingRateLimit: 100, ThrottlingBurstLimit: 200 },
    });
  });
});

// One synth for the non-default switches (each synth costs seconds).
describe("with -c authorizer=jwt -c ntpHost=<ip> -c apiRateLimit -c apiBurstLimit -c deviceCidr -c viewerCidr", () => {
  let jwt: SynthResult;
  beforeAll(() => {
    jwt = synthEhomeApp({
      context: {
        authorizer: "jwt",
        jwtIssuer: "https://issuer.example.com/",
        jwtAudience: "ehome-api, ehome-console",
        ntpHost: "192.0.2.123",
        apiRateLimit: "25",
        apiBurstLimit: "40",
        deviceCidr: "203.0.113.0/24",
        viewerCidr: "198.51.100.0/24",
      },
    });
  }, SYNTH_TIMEOUT_MS);

  it("throttles the API stage with the rate and burst from context", () => {
    jwt.templates.api.hasResourceProperties("AWS::ApiGatewayV2::Stage", {
      StageName: "$default",
      DefaultRouteSettings: { ThrottlingRateLimit: 25, ThrottlingBurstLimit: 40 },
    });
  });
  afterAll(() => jwt?.cleanup());

  it("puts the JWT authorizer on every route", () => {
    const authorizer = logicalId(
      jwt.json.api,
      "AWS::ApiGatewayV2::Authorizer",
      "HttpApiJwtAuthorizer",
    );
    jwt.templates.api.hasResourceProperties("AWS::ApiGatewayV2::Authorizer", {
      AuthorizerType: "JWT",
      JwtConfiguration: {
        Issuer: "https://issuer.example.com/",
        Audience: ["ehome-api", "ehome-console"],
      },
    });
    const routes = resourcesOf(jwt.json.api, "AWS::ApiGatewayV2::Route");
    expect(routes).toHaveLength(2);
    for (const [id, route] of routes) {
      expect(route.Properties, id).toMatchObject({
        AuthorizationType: "JWT",
        AuthorizerId: { Ref: authorizer },
      });
    }
  });

  it("refuses authorizer=jwt without an issuer and audience", () => {
    expect(() => synthEhomeApp({ context: { authorizer: "jwt" } })).toThrow(/jwtIssuer/);
  });

  it("announces the given NTP server to devices", () => {
    expect(agentContainer(jwt.json.edge).env[ENV.EHOME_NTP_HOST]).toBe("192.0.2.123");
  });

  it("admits devices (deviceCidr) and viewers (viewerCidr) directly on the task's announced address", () => {
    const ingress = new Capture();
    jwt.templates.edge.hasResourceProperties("AWS::EC2::SecurityGroup", {
      GroupDescription: Match.stringLikeRegexp("Edge agent"),
      SecurityGroupIngress: ingress,
    });
    const rules = (
      ingress.asArray() as {
        IpProtocol: string;
        FromPort: number;
        ToPort: number;
        CidrIp: string;
      }[]
    ).map((r) => `${r.IpProtocol} ${r.FromPort}-${r.ToPort} ${r.CidrIp}`);
    // The agent announces its task's public IP for alarms, uploads, firmware, SinkIP and stream
    // URLs (EHOME_PUBLIC_HOST_DISCOVERY=ecs): the task's security group, not the NLB, admits them.
    const device = "203.0.113.0/24";
    expect(rules).toEqual(
      expect.arrayContaining([
        `udp ${PORTS.signallingUdp}-${PORTS.signallingUdp} ${device}`,
        `udp ${PORTS.alarmUdp}-${PORTS.alarmUdp} ${device}`,
        `tcp ${PORTS.deviceHttpTcp}-${PORTS.deviceHttpTcp} ${device}`,
        `tcp ${PORTS.mediaPool.min}-${PORTS.mediaPool.max} ${device}`,
        `udp ${PORTS.mediaPool.min}-${PORTS.mediaPool.max} ${device}`,
        `tcp ${PORTS.viewerHttpTcp}-${PORTS.viewerHttpTcp} 198.51.100.0/24`,
      ]),
    );
    // Nothing else from outside the VPC (the health checks come from inside it).
    expect(rules.filter((r) => !r.endsWith(device) && !r.endsWith("198.51.100.0/24"))).toEqual([
      expect.stringMatching(new RegExp(`^tcp ${PORTS.deviceHttpTcp}-${PORTS.deviceHttpTcp} `)),
    ]);
  });

  it("refuses an ntpHost that is not an IPv4 address (NTPServerIP is an IP)", () => {
    for (const ntpHost of ["time.aws.com", "256.1.1.1", "192.0.2.1:123"]) {
      expect(() => synthEhomeApp({ context: { ntpHost } }), ntpHost).toThrow(/ntpHost/);
    }
  });
});

describe("edge stack", () => {
  it("lets the agent look up its task's public IP: one statement, region-scoped, acknowledged only there", () => {
    const withEc2 = resourcesOf(s.json.edge, "AWS::IAM::Policy").filter(([, p]) =>
      JSON.stringify(p.Properties!.PolicyDocument).includes("ec2:"),
    );
    expect(withEc2).toHaveLength(1);
    const [policyId, policy] = withEc2[0]!;
    const props = policy.Properties as {
      PolicyDocument: { Statement: unknown[] };
      Roles: { Ref: string }[];
    };
    expect(props.PolicyDocument.Statement).toEqual([
      {
        Effect: "Allow",
        Action: "ec2:DescribeNetworkInterfaces",
        Resource: "*",
        Condition: { StringEquals: { "aws:RequestedRegion": { Ref: "AWS::Region" } } },
      },
    ]);
    expect(props.Roles).toEqual([
      { Ref: logicalId(s.json.edge, "AWS::IAM::Role", "AgentTaskRole") },
    ]);
    // Tasks start only once the task role may make the call (else they fall back to the NLB).
    const services = resourcesOf(s.json.edge, "AWS::ECS::Service");
    expect(services).toHaveLength(1);
    const service = services[0]![1] as { DependsOn?: string[] };
    expect(service.DependsOn).toContain(policyId);
    // The wildcard acknowledgement sits on that policy (and the execution role's ECR token), not
    // on the task role, whose other statements stay checked.
    const paths = (acknowledgements(s.app).get("AwsSolutions-IAM5[Resource::*]") ?? []).map(
      (a) => a.path,
    );
    expect(paths).toHaveLength(2);
    expect(paths).toContain("ehome-edge/Agent/PublicAddressDiscovery");
    expect(paths).toContainEqual(expect.stringMatching(/^ehome-edge\/Agent\/.*ExecutionRole$/));
  });

  it("has NLB listeners for UDP signalling, UDP alarms, TCP device HTTP and TCP viewer HTTP only", () => {
    const listeners = resourcesOf(s.json.edge, "AWS::ElasticLoadBalancingV2::Listener").map(
      ([, l]) => `${l.Properties!.Protocol} ${l.Properties!.Port}`,
    );
    expect(listeners.sort()).toEqual(
      [
        `TCP ${PORTS.deviceHttpTcp}`,
        `TCP ${PORTS.viewerHttpTcp}`,
        `UDP ${PORTS.alarmUdp}`,
        `UDP ${PORTS.signallingUdp}`,
      ].sort(),
    );
    // Stream URLs name the agent's announced address (its task's IP, else the NLB) and
    // EHOME_VIEWER_PORT.
    const { env } = agentContainer(s.json.edge);
    expect(env[ENV.EHOME_VIEWER_PORT]).toBe(String(PORTS.viewerHttpTcp));
    expect(Number(env[ENV.EHOME_STREAM_IDLE_SECONDS])).toBeGreaterThan(0);
  });

  it("injects both token keys into the agent from Secrets Manager, never in clear", () => {
    const { agent, env } = agentContainer(s.json.edge);
    const secrets = agent.Secrets as { Name: string; ValueFrom: unknown }[];
    expect(secrets.map((x) => x.Name).sort()).toEqual(
      [ENV.FIRMWARE_TOKEN_KEY, ENV.STREAM_TOKEN_KEY].sort(),
    );
    expect(env).not.toHaveProperty(ENV.STREAM_TOKEN_KEY);
    const streamSecret = secrets.find((x) => x.Name === ENV.STREAM_TOKEN_KEY)!;
    expect(describeValue(streamSecret.ValueFrom, "edge", s.json)).toContain("StreamTokenKey");
  });

  it("gives the internet-facing NLB one retained Elastic IP per public subnet", () => {
    const eips = resourcesOf(s.json.edge, "AWS::EC2::EIP");
    const subnets = resourcesOf(s.json.edge, "AWS::EC2::Subnet");
    expect(subnets).toHaveLength(2);
    expect(eips).toHaveLength(subnets.length);
    for (const [id, eip] of eips) {
      // Devices are configured with these: neither stack deletion nor replacement releases them.
      expect(eip, id).toMatchObject({
        DeletionPolicy: "Retain",
        UpdateReplacePolicy: "Retain",
        Properties: { Domain: "vpc" },
      });
    }
    const [lb, ...more] = resourcesOf(s.json.edge, "AWS::ElasticLoadBalancingV2::LoadBalancer");
    expect(more).toEqual([]);
    const props = lb![1].Properties!;
    expect(props).toMatchObject({ Type: "network", Scheme: "internet-facing" });
    expect(props).not.toHaveProperty("Subnets");
    const mappings = props.SubnetMappings as { SubnetId: unknown; AllocationId: unknown }[];
    const byId = (a: unknown, b: unknown) => JSON.stringify(a).localeCompare(JSON.stringify(b));
    expect(mappings.map((m) => m.SubnetId).sort(byId)).toEqual(
      subnets.map(([id]) => ({ Ref: id })).sort(byId),
    );
    expect(mappings.map((m) => m.AllocationId).sort(byId)).toEqual(
      eips.map(([id]) => ({ "Fn::GetAtt": [id, "AllocationId"] })).sort(byId),
    );
  });

  it("announces an NLB address to devices and outputs every address", () => {
    const eipIds = resourcesOf(s.json.edge, "AWS::EC2::EIP").map(([id]) => id);
    const publicIp = (id: string) => ({ "Fn::GetAtt": [id, "PublicIp"] });
    const { env } = agentContainer(s.json.edge);
    // AlarmServerIP / PictureServer in the REGISTER reply (ehome-2.0 §2.1), not 127.0.0.1.
    expect(eipIds.map(publicIp)).toContainEqual(env[ENV.EHOME_PUBLIC_HOST]);
    // …as the fallback: each task announces its own public IP (issue 4 item 8, issue 7 item 2).
    expect(env[ENV.EHOME_PUBLIC_HOST_DISCOVERY]).toBe("ecs");
    const outputs = s.json.edge.Outputs ?? {};
    const key = Object.keys(outputs).find((k) => k.startsWith("DeviceAddresses"));
    expect(key).toBeDefined();
    expect(outputs[key!]!.Value).toEqual({ "Fn::Join": [",", eipIds.map(publicIp)] });
  });

  it("routes UDP to IP targets with source-IP stickiness, client IPs preserved, /healthz checks", () => {
    const groups = resourcesOf(s.json.edge, "AWS::ElasticLoadBalancingV2::TargetGroup");
    expect(groups).toHaveLength(4);
    for (const [id, group] of groups) {
      const p = group.Properties!;
      const attrs = Object.fromEntries(
        (p.TargetGroupAttributes as { Key: string; Value: string }[]).map((a) => [a.Key, a.Value]),
      );
      expect(p, id).toMatchObject({
        TargetType: "ip",
        HealthCheckProtocol: "HTTP",
        HealthCheckPath: "/healthz",
        HealthCheckPort: String(PORTS.deviceHttpTcp),
      });
      expect(attrs["preserve_client_ip.enabled"], id).toBe("true");
      if (p.Protocol === "UDP") {
        expect(attrs["stickiness.enabled"], id).toBe("true");
        expect(attrs["stickiness.type"], id).toBe("source_ip");
      }
    }
  });

  it("opens the media pool (TCP and UDP) on the task security group, not on the NLB", () => {
    const ingress = new Capture();
    s.templates.edge.hasResourceProperties("AWS::EC2::SecurityGroup", {
      GroupDescription: Match.stringLikeRegexp("Edge agent"),
      SecurityGroupIngress: ingress,
    });
    const rules = ingress.asArray() as {
      IpProtocol: string;
      FromPort: number;
      ToPort: number;
      CidrIp: string;
    }[];
    for (const proto of ["tcp", "udp"]) {
      expect(rules).toContainEqual(
        expect.objectContaining({
          IpProtocol: proto,
          FromPort: PORTS.mediaPool.min,
          ToPort: PORTS.mediaPool.max,
          CidrIp: "0.0.0.0/0",
        }),
      );
    }
    for (const [proto, port] of [
      ["udp", PORTS.signallingUdp],
      ["udp", PORTS.alarmUdp],
      ["tcp", PORTS.deviceHttpTcp],
      ["tcp", PORTS.viewerHttpTcp],
    ] as const) {
      expect(rules).toContainEqual(
        expect.objectContaining({ IpProtocol: proto, FromPort: port, ToPort: port }),
      );
    }
  });

  it("runs tasks with public IPs in public subnets, with no NAT gateway", () => {
    s.templates.edge.resourceCountIs("AWS::EC2::NatGateway", 0);
    s.templates.edge.hasResourceProperties("AWS::ECS::Service", {
      LaunchType: "FARGATE",
      NetworkConfiguration: {
        AwsvpcConfiguration: Match.objectLike({ AssignPublicIp: "ENABLED" }),
      },
      DeploymentConfiguration: Match.objectLike({
        DeploymentCircuitBreaker: { Enable: true, Rollback: true },
      }),
    });
    s.templates.edge.hasResourceProperties("AWS::EC2::FlowLog", { TrafficType: "ALL" });
  });

  it("runs the agent image from edge-agent/Dockerfile, non-root, read-only, with contract env", () => {
    const { agent, env } = agentContainer(s.json.edge);
    expect(agent).toMatchObject({
      User: "node",
      ReadonlyRootFilesystem: true,
      MountPoints: [{ ContainerPath: "/tmp", SourceVolume: "tmp", ReadOnly: false }],
      HealthCheck: { Command: expect.arrayContaining([expect.stringContaining("/healthz")]) },
      PortMappings: expect.arrayContaining([
        expect.objectContaining({
          ContainerPortRange: `${PORTS.mediaPool.min}-${PORTS.mediaPool.max}`,
          Protocol: "udp",
        }),
        expect.objectContaining({
          ContainerPortRange: `${PORTS.mediaPool.min}-${PORTS.mediaPool.max}`,
          Protocol: "tcp",
        }),
      ]),
    });
    // Exactly these: every name from env.ts, nothing the agent does not read. No
    // EHOME_NTP_HOST without -c ntpHost (see the jwt/ntpHost synth below).
    expect(Object.keys(env).sort()).toEqual(
      [
        ENV.DEVICES_TABLE,
        ENV.AGENTS_TABLE,
        ENV.DEVICE_EVENTS_QUEUE_URL,
        ENV.COMMAND_RESULTS_QUEUE_URL,
        ENV.ALARM_EVENTS_QUEUE_URL,
        ENV.UPGRADE_EVENTS_QUEUE_URL,
        ENV.DEVICE_DATA_QUEUE_URL,
        ENV.MEDIA_EVENTS_QUEUE_URL,
        ENV.AGENT_QUEUE_PREFIX,
        ENV.MEDIA_BUCKET,
        ENV.EHOME_SIGNAL_PORT,
        ENV.EHOME_ALARM_PORT,
        ENV.EHOME_HTTP_PORT,
        ENV.EHOME_MEDIA_PORTS,
        ENV.EHOME_VIEWER_PORT,
        ENV.EHOME_STREAM_IDLE_SECONDS,
        ENV.EHOME_AUTO_PROVISION,
        ENV.EHOME_PUBLIC_HOST,
        ENV.EHOME_PUBLIC_HOST_DISCOVERY,
      ].sort(),
    );
    expect(env[ENV.AGENT_QUEUE_PREFIX]).toBe("ehome-agent-cmd-");
    expect(env[ENV.EHOME_MEDIA_PORTS]).toBe(`${PORTS.mediaPool.min}-${PORTS.mediaPool.max}`);
    // The device ports face the internet: unprovisioned devices are refused unless asked for.
    expect(env[ENV.EHOME_AUTO_PROVISION]).toBe("false");

    // The image is only staged at synth (built by `cdk deploy`): the repository minus what the
    // agent does not need.
    const manifest = JSON.parse(
      readFileSync(join(s.outdir, `${s.stacks.edge.artifactId}.assets.json`), "utf8"),
    ) as { dockerImages: Record<string, { source: { directory: string; dockerFile: string } }> };
    const images = Object.values(manifest.dockerImages);
    expect(images).toHaveLength(1);
    expect(images[0]!.source.dockerFile).toBe("edge-agent/Dockerfile");
    const staged = join(s.outdir, images[0]!.source.directory);
    expect(existsSync(join(staged, "edge-agent", "Dockerfile"))).toBe(true);
    expect(existsSync(join(staged, "package-lock.json"))).toBe(true);
    expect(existsSync(join(staged, "node_modules"))).toBe(false);
    expect(existsSync(join(staged, ".git"))).toBe(false);
  });
});

describe("dashboard stack", () => {
  it("charts DLQ depth, function errors and API 5xx", () => {
    const body = JSON.stringify(
      resourcesOf(s.json.dashboard, "AWS::CloudWatch::Dashboard")[0]![1].Properties!.DashboardBody,
    );
    expect(body).toContain("ApproximateNumberOfMessagesVisible");
    expect(body).toContain('\\"Errors\\"');
    expect(body).toContain('\\"5xx\\"');
  });
});
