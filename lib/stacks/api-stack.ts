import { CfnOutput, Duration, Stack, type StackProps, Validations } from "aws-cdk-lib";
import { AccessLogFormat } from "aws-cdk-lib/aws-apigateway";
import {
  HttpApi,
  HttpMethod,
  HttpStage,
  type IHttpRouteAuthorizer,
  LogGroupLogDestination,
} from "aws-cdk-lib/aws-apigatewayv2";
import { HttpIamAuthorizer, HttpJwtAuthorizer } from "aws-cdk-lib/aws-apigatewayv2-authorizers";
import { HttpLambdaIntegration } from "aws-cdk-lib/aws-apigatewayv2-integrations";
import type { Construct } from "constructs";
import type { AuthorizerConfig } from "../config.ts";
import { EhomeFunction } from "../constructs/function-defaults.ts";
import {
  AGENT_QUEUE_SENDER_ACTIONS,
  grantAgentQueues,
  grantBucketObjects,
  grantTable,
} from "../constructs/grants.ts";
import { createLogGroup } from "../constructs/log-group.ts";
import { ENV } from "../contracts/env.ts";
import { TABLES } from "../contracts/tables.ts";
import type { DataStack } from "./data-stack.ts";

export interface ApiStackProps extends StackProps {
  readonly data: DataStack;
  /** Name prefix of the per-agent command queues the api function sends commands to. */
  readonly agentQueuePrefix: string;
  readonly authorizer: AuthorizerConfig;
  /** Stage-wide throttling (`-c apiRateLimit`, `-c apiBurstLimit`). Default 100 rps, burst 200. */
  readonly throttle?: { readonly rateLimit: number; readonly burstLimit: number };
}

/** Routes served by the api function. Every one carries the API's default authorizer. */
export const API_ROUTES = [
  { path: "/openapi.json", methods: [HttpMethod.GET] },
  { path: "/{proxy+}", methods: [HttpMethod.ANY] },
] as const;

/**
 * The HTTP API and the api function behind it. Authorization is on every route: IAM (SigV4) by
 * default, or a JWT authorizer with `-c authorizer=jwt -c jwtIssuer=… -c jwtAudience=…`.
 */
export class ApiStack extends Stack {
  public readonly api: HttpApi;
  public readonly stage: HttpStage;
  public readonly apiFunction: EhomeFunction;

  constructor(scope: Construct, id: string, props: ApiStackProps) {
    super(scope, id, props);
    const { tables, mediaBucket } = props.data;

    this.apiFunction = new EhomeFunction(this, "Api", {
      feature: "api",
      description: "HTTP API: devices, commands, captures, streams, OpenAPI document",
      // API Gateway gives up on an integration after 30 s.
      timeout: Duration.seconds(29),
      environment: {
        [ENV.DEVICES_TABLE]: tables.devices.tableName,
        [ENV.PRESENCE_TABLE]: tables.presence.tableName,
        [ENV.COMMANDS_TABLE]: tables.commands.tableName,
        [ENV.AGENTS_TABLE]: tables.agents.tableName,
        [ENV.ALARMS_TABLE]: tables.alarms.tableName,
        [ENV.CAPTURES_TABLE]: tables.captures.tableName,
        [ENV.AGENT_QUEUE_PREFIX]: props.agentQueuePrefix,
        [ENV.MEDIA_BUCKET]: mediaBucket.bucketName,
        [ENV.FIRMWARE_TABLE]: tables.firmware.tableName,
        [ENV.CAMPAIGNS_TABLE]: tables.campaigns.tableName,
        [ENV.EXECUTIONS_TABLE]: tables.executions.tableName,
        [ENV.POSITIONS_TABLE]: tables.positions.tableName,
        [ENV.PASSTHROUGH_TABLE]: tables.passthrough.tableName,
        [ENV.STREAMS_TABLE]: tables.streams.tableName,
        // A CloudFormation dynamic reference resolved at deploy time, like the firmware key in
        // the functions stack: the key is never in the template.
        [ENV.STREAM_TOKEN_KEY]: props.data.streamTokenKey.secretValue.unsafeUnwrap(),
      },
    });
    const fn = this.apiFunction.function;
    const role = this.apiFunction.role;
    grantTable(role, tables.devices, TABLES.devices, "readWrite");
    grantTable(role, tables.commands, TABLES.commands, "readWrite");
    grantTable(role, tables.presence, TABLES.presence, "read");
    grantTable(role, tables.agents, TABLES.agents, "read");
    // Alarm listings and details; captures are created here and closed by the alarms function.
    grantTable(role, tables.alarms, TABLES.alarms, "read");
    grantTable(role, tables.captures, TABLES.captures, "readWrite");
    grantTable(role, tables.firmware, TABLES.firmware, "readWrite");
    grantTable(role, tables.campaigns, TABLES.campaigns, "readWrite");
    grantTable(role, tables.executions, TABLES.executions, "readWrite");
    // GPS tracks and device-initiated passthrough messages (functions/device-data writes them).
    grantTable(role, tables.positions, TABLES.positions, "read");
    grantTable(role, tables.passthrough, TABLES.passthrough, "read");
    // Streams are created, stopped and failed here; the media function applies agent events.
    grantTable(role, tables.streams, TABLES.streams, "readWrite");
    grantAgentQueues(role, props.agentQueuePrefix, AGENT_QUEUE_SENDER_ACTIONS);
    grantBucketObjects(role, props.data.mediaObjects(this), "readWrite");

    this.api = new HttpApi(this, "HttpApi", {
      description: "EHOME device platform API",
      defaultAuthorizer: createAuthorizer(props.authorizer),
      createDefaultStage: false,
    });

    const accessLogs = createLogGroup(this, "AccessLogs");
    this.stage = new HttpStage(this, "DefaultStage", {
      httpApi: this.api,
      autoDeploy: true,
      accessLogSettings: {
        destination: new LogGroupLogDestination(accessLogs),
        format: AccessLogFormat.custom(
          JSON.stringify({
            requestId: "$context.requestId",
            ip: "$context.identity.sourceIp",
            caller: "$context.identity.caller",
            user: "$context.identity.user",
            jwtSubject: "$context.authorizer.claims.sub",
            requestTime: "$context.requestTime",
            method: "$context.httpMethod",
            path: "$context.path",
            routeKey: "$context.routeKey",
            status: "$context.status",
            responseLength: "$context.responseLength",
            integrationError: "$context.integrationErrorMessage",
            authorizerError: "$context.authorizer.error",
          }),
        ),
      },
      // Default route settings of the stage: every route, every caller together (docs/SECURITY.md).
      throttle: props.throttle ?? { rateLimit: 100, burstLimit: 200 },
    });

    const integration = new HttpLambdaIntegration("ApiIntegration", fn);
    for (const route of API_ROUTES) {
      this.api.addRoutes({ path: route.path, methods: [...route.methods], integration });
    }
    new CfnOutput(this, "ApiUrl", {
      description: "Base URL of the HTTP API",
      value: this.api.apiEndpoint,
    });
    Validations.of(this.api).acknowledge({
      id: "cdk-validator-cfnguard::lambda_function_public_access_prohibited_check",
      reason:
        "Each invoke permission is scoped by SourceArn to this API's own execute-api ARN; the rule only recognises literal strings, and an environment-agnostic stack can only build that ARN with Fn::Join.",
    });
  }
}

function createAuthorizer(config: AuthorizerConfig): IHttpRouteAuthorizer {
  if (config.kind === "jwt") {
    return new HttpJwtAuthorizer("JwtAuthorizer", config.issuer, {
      jwtAudience: [...config.audience],
    });
  }
  return new HttpIamAuthorizer();
}
