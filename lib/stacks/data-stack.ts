import {
  CfnOutput,
  Duration,
  Fn,
  RemovalPolicy,
  Stack,
  type StackProps,
  Validations,
} from "aws-cdk-lib";
import {
  AttributeType,
  BillingMode,
  ProjectionType,
  Table,
  TableEncryption,
} from "aws-cdk-lib/aws-dynamodb";
import {
  BlockPublicAccess,
  Bucket,
  BucketEncryption,
  ObjectOwnership,
  StorageClass,
} from "aws-cdk-lib/aws-s3";
import { Secret } from "aws-cdk-lib/aws-secretsmanager";
import type { Construct } from "constructs";
import type { ObjectsGrantTarget } from "../constructs/grants.ts";
import { MEDIA_LIFECYCLE, MEDIA_PREFIXES } from "../contracts/storage.ts";
import {
  type KeyAttribute,
  TABLE_KEYS,
  TABLES,
  type TableDefinition,
  type TableKey,
} from "../contracts/tables.ts";

const ATTRIBUTE_TYPES = {
  S: AttributeType.STRING,
  N: AttributeType.NUMBER,
  B: AttributeType.BINARY,
} as const;

function attribute(key: KeyAttribute) {
  return { name: key.name, type: ATTRIBUTE_TYPES[key.type] };
}

/**
 * Stateful storage: every DynamoDB table from `lib/contracts/tables.ts`, and the private media
 * bucket (pictures, videos, downloads, firmware) with its access-log bucket. Everything here is
 * retained when the stack is deleted.
 */
export class DataStack extends Stack {
  public readonly tables: Record<TableKey, Table>;
  public readonly mediaBucket: Bucket;
  /**
   * Key of the firmware download tokens (`ENV.FIRMWARE_TOKEN_KEY`, lib/contracts/upgrades.ts):
   * the upgrades function mints with it, the agents verify with it.
   */
  public readonly firmwareTokenKey: Secret;
  /**
   * Key of the viewer tokens (`ENV.STREAM_TOKEN_KEY`, lib/contracts/media.ts): the api function
   * mints stream URLs with it, the agents verify them on the viewer port.
   */
  public readonly streamTokenKey: Secret;
  public readonly accessLogsBucket: Bucket;
  /** Fixed-name export of the media bucket ARN (see `mediaObjects`). */
  public readonly mediaBucketArnExportName: string;

  constructor(scope: Construct, id: string, props?: StackProps) {
    super(scope, id, props);

    this.tables = Object.fromEntries(
      TABLE_KEYS.map((key) => [key, this.createTable(TABLES[key])]),
    ) as Record<TableKey, Table>;

    this.accessLogsBucket = new Bucket(this, "AccessLogs", {
      // Server access log delivery writes only to SSE-S3 buckets.
      encryption: BucketEncryption.S3_MANAGED,
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      objectOwnership: ObjectOwnership.BUCKET_OWNER_ENFORCED,
      enforceSSL: true,
      versioned: true,
      lifecycleRules: [
        { id: "expire-logs", expiration: Duration.days(90) },
        { id: "expire-noncurrent", noncurrentVersionExpiration: Duration.days(7) },
      ],
      removalPolicy: RemovalPolicy.RETAIN,
    });
    acknowledgeLogBucket(this.accessLogsBucket);

    this.mediaBucket = new Bucket(this, "Media", {
      encryption: BucketEncryption.KMS_MANAGED,
      bucketKeyEnabled: true,
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      objectOwnership: ObjectOwnership.BUCKET_OWNER_ENFORCED,
      enforceSSL: true,
      versioned: true,
      serverAccessLogsBucket: this.accessLogsBucket,
      serverAccessLogsPrefix: "media/",
      lifecycleRules: [
        {
          id: "abort-incomplete-multipart",
          abortIncompleteMultipartUploadAfter: Duration.days(
            MEDIA_LIFECYCLE.abortIncompleteMultipartAfterDays,
          ),
        },
        {
          id: "expire-noncurrent-versions",
          noncurrentVersionExpiration: Duration.days(
            MEDIA_LIFECYCLE.noncurrentVersionsExpireAfterDays,
          ),
        },
        ...[MEDIA_PREFIXES.pictures, MEDIA_PREFIXES.videos].map((prefix) => ({
          id: `age-${prefix.replace(/\/$/, "")}`,
          prefix,
          transitions: [
            {
              storageClass: StorageClass.INFREQUENT_ACCESS,
              transitionAfter: Duration.days(MEDIA_LIFECYCLE.infrequentAccessAfterDays),
            },
          ],
          expiration: Duration.days(MEDIA_LIFECYCLE.mediaExpiresAfterDays),
        })),
        {
          id: "expire-downloads",
          prefix: MEDIA_PREFIXES.downloads,
          expiration: Duration.days(MEDIA_LIFECYCLE.downloadsExpireAfterDays),
        },
      ],
      removalPolicy: RemovalPolicy.RETAIN,
    });
    Validations.of(this.mediaBucket).acknowledge(
      {
        id: "cdk-validator-cfnguard::s3_event_notifications_enabled_check",
        reason:
          "No consumer of S3 event notifications exists yet; the edge agent reports each upload itself (media-uploaded event) when it has streamed the object.",
      },
      {
        id: "cdk-validator-cfnguard::s3_bucket_object_lock_enabled_check",
        reason:
          "Object Lock would make pictures, downloads and firmware undeletable for the retention period; lifecycle expiry and user deletes must work. Versioning protects against accidental overwrite.",
      },
    );

    // 64 random alphanumerics: parsed as base64 (48 bytes), above the 32-byte minimum.
    this.firmwareTokenKey = new Secret(this, "FirmwareTokenKey", {
      description: "Signs firmware download tokens (upgrade engine mints, edge agents verify)",
      generateSecretString: { passwordLength: 64, excludePunctuation: true, includeSpace: false },
      removalPolicy: RemovalPolicy.RETAIN,
    });
    Validations.of(this.firmwareTokenKey).acknowledge({
      id: "AwsSolutions-SMG4",
      reason:
        "Rotation is not built: the agents and the upgrades function read the key at start, so a rotated key would refuse outstanding download tokens (they live at most one per-device timeout) until every reader restarts.",
    });

    // Same format and handling as the firmware key.
    this.streamTokenKey = new Secret(this, "StreamTokenKey", {
      description: "Signs viewer stream tokens (the api function mints, edge agents verify)",
      generateSecretString: { passwordLength: 64, excludePunctuation: true, includeSpace: false },
      removalPolicy: RemovalPolicy.RETAIN,
    });
    Validations.of(this.streamTokenKey).acknowledge({
      id: "AwsSolutions-SMG4",
      reason:
        "Rotation is not built: the agents and the api function read the key at start, so a rotated key would refuse outstanding viewer URLs (they live at most an hour) until every reader restarts.",
    });

    this.mediaBucketArnExportName = `${this.stackName}-MediaBucketArn`;
    new CfnOutput(this, "MediaBucketArn", {
      value: this.mediaBucket.bucketArn,
      exportName: this.mediaBucketArnExportName,
    });
  }

  /**
   * The media bucket as another stack's grant target. Object ARNs go through an export with a
   * fixed name: an automatic cross-stack export has a hashed name, which would leak into the id
   * of the IAM5 acknowledgement the object wildcard needs.
   */
  public mediaObjects(consumer: Stack): ObjectsGrantTarget {
    consumer.addStackDependency(this, "imports the media bucket ARN");
    return {
      bucketArn: this.mediaBucket.bucketArn,
      objectsArn: `${Fn.importValue(this.mediaBucketArnExportName)}/*`,
      objectsFindingResource: `${this.mediaBucketArnExportName}/*`,
    };
  }

  private createTable(def: TableDefinition): Table {
    const table = new Table(this, def.logicalId, {
      partitionKey: attribute(def.partitionKey),
      ...(def.sortKey ? { sortKey: attribute(def.sortKey) } : {}),
      billingMode: BillingMode.PAY_PER_REQUEST,
      encryption: TableEncryption.AWS_MANAGED,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      ...(def.ttlAttribute ? { timeToLiveAttribute: def.ttlAttribute } : {}),
      deletionProtection: true,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    for (const index of def.indexes) {
      table.addGlobalSecondaryIndex({
        indexName: index.indexName,
        partitionKey: attribute(index.partitionKey),
        ...(index.sortKey ? { sortKey: attribute(index.sortKey) } : {}),
        ...(index.projection === "ALL"
          ? { projectionType: ProjectionType.ALL }
          : index.projection === "KEYS_ONLY"
            ? { projectionType: ProjectionType.KEYS_ONLY }
            : {
                projectionType: ProjectionType.INCLUDE,
                nonKeyAttributes: [...index.projection.include],
              }),
      });
    }
    return table;
  }
}

function acknowledgeLogBucket(bucket: Bucket): void {
  Validations.of(bucket).acknowledge(
    {
      id: "AwsSolutions-S1",
      reason: "This is the server access log bucket; logging its own accesses would loop.",
    },
    {
      id: "cdk-validator-cfnguard::s3_bucket_logging_enabled_check",
      reason: "This is the server access log bucket; logging its own accesses would loop.",
    },
    {
      id: "cdk-validator-cfnguard::s3_event_notifications_enabled_check",
      reason: "Access logs are read on demand by operators; nothing reacts to new log objects.",
    },
    {
      id: "cdk-validator-cfnguard::s3_bucket_object_lock_enabled_check",
      reason: "Object Lock would defeat the 90-day log expiry lifecycle rule.",
    },
    {
      id: "cdk-validator-cfnguard::s3_bucket_default_encryption_kms_check",
      reason:
        "S3 server access log delivery supports only SSE-S3 on the target bucket, not SSE-KMS.",
    },
  );
}
