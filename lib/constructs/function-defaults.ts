import { join } from "node:path";
import { Duration, Validations } from "aws-cdk-lib";
import { PolicyStatement, Role, ServicePrincipal } from "aws-cdk-lib/aws-iam";
import { Architecture, LoggingFormat, Runtime } from "aws-cdk-lib/aws-lambda";
import { NodejsFunction, OutputFormat } from "aws-cdk-lib/aws-lambda-nodejs";
import type { LogGroup } from "aws-cdk-lib/aws-logs";
import { Construct } from "constructs";
import { createLogGroup } from "./log-group.ts";
import { REPO_ROOT } from "./paths.ts";

export interface EhomeFunctionProps {
  /** Feature directory under `functions/`; the entry is `functions/<feature>/handler.ts`. */
  readonly feature: string;
  readonly description: string;
  readonly timeout?: Duration;
  readonly memorySize?: number;
  readonly environment?: Record<string, string>;
}

/**
 * A Lambda function with our defaults: `nodejs22.x` on arm64, ESM bundled by the locally installed
 * esbuild (never Docker, so synth works offline and fast), its own log group with a retention,
 * and its own role that may write only to that log group. Data grants are added by the stacks
 * (see `grants.ts`), so each role lists exactly what its function touches.
 */
export class EhomeFunction extends Construct {
  public readonly function: NodejsFunction;
  public readonly role: Role;
  public readonly logGroup: LogGroup;

  constructor(scope: Construct, id: string, props: EhomeFunctionProps) {
    super(scope, id);

    this.logGroup = createLogGroup(this, "Logs");

    // Our own role instead of the default one: the default attaches the AWS managed
    // AWSLambdaBasicExecutionRole, which may write to every log group in the account.
    this.role = new Role(this, "Role", {
      assumedBy: new ServicePrincipal("lambda.amazonaws.com"),
      description: `Execution role of the ${props.feature} function`,
    });
    this.role.addToPrincipalPolicy(
      new PolicyStatement({
        actions: ["logs:CreateLogStream", "logs:PutLogEvents"],
        resources: [this.logGroup.logGroupArn],
      }),
    );

    this.function = new NodejsFunction(this, "Function", {
      description: props.description,
      entry: join(REPO_ROOT, "functions", props.feature, "handler.ts"),
      handler: "handler",
      projectRoot: REPO_ROOT,
      depsLockFilePath: join(REPO_ROOT, "package-lock.json"),
      runtime: Runtime.NODEJS_22_X,
      architecture: Architecture.ARM_64,
      memorySize: props.memorySize ?? 512,
      timeout: props.timeout ?? Duration.seconds(15),
      role: this.role,
      logGroup: this.logGroup,
      loggingFormat: LoggingFormat.JSON,
      environment: {
        NODE_OPTIONS: "--enable-source-maps",
        ...props.environment,
      },
      bundling: {
        forceDockerBundling: false,
        format: OutputFormat.ESM,
        target: "node22",
        minify: true,
        sourceMap: true,
        sourcesContent: false,
        // Pin the SDK we test with instead of whatever version the runtime ships.
        bundleAwsSDK: true,
        mainFields: ["module", "main"],
        // CommonJS dependencies inside an ESM bundle still call require().
        banner:
          "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);",
      },
    });

    Validations.of(this.function).acknowledge(
      {
        id: "AwsSolutions-L1",
        reason:
          "Pinned to nodejs22.x on purpose: the edge agent image runs node:22 and both sides share lib/contracts, so functions and agent move to a new Node major together.",
      },
      {
        id: "cdk-validator-cfnguard::lambda_inside_vpc_check",
        reason:
          "The functions have no inbound network path and call only AWS APIs (DynamoDB, SQS, S3) over TLS with IAM; a VPC would need NAT or interface endpoints and would not narrow what they can reach.",
      },
    );
  }
}
