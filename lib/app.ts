import { CfnGuardValidator } from "@cdklabs/cdk-validator-cfnguard";
import { type App, Validations } from "aws-cdk-lib";
import { AwsSolutionsChecks } from "cdk-nag";
import { type AppConfig, authorizerConfig, readConfig } from "./config.ts";
import { agentCommandQueuePrefix } from "./contracts/queues.ts";
import { ApiStack } from "./stacks/api-stack.ts";
import { DashboardStack } from "./stacks/dashboard-stack.ts";
import { DataStack } from "./stacks/data-stack.ts";
import { EdgeStack } from "./stacks/edge-stack.ts";
import { FunctionsStack } from "./stacks/functions-stack.ts";
import { MessagingStack } from "./stacks/messaging-stack.ts";

export interface EhomeStacks {
  readonly config: AppConfig;
  readonly data: DataStack;
  readonly messaging: MessagingStack;
  readonly functions: FunctionsStack;
  readonly api: ApiStack;
  readonly edge: EdgeStack;
  readonly dashboard: DashboardStack;
}

/**
 * Adds every stack to `app`, configured from its context (see `config.ts`). The stacks are
 * environment-agnostic (no account/region, no lookups), so synth needs no AWS credentials and
 * no network; `cdk deploy` targets the account and region of the CLI's profile.
 */
export function addEhomeStacks(app: App): EhomeStacks {
  const config = readConfig(app.node);
  const name = (stack: string) => `${config.prefix}-${stack}`;
  const agentQueuePrefix = agentCommandQueuePrefix(config.prefix);

  const data = new DataStack(app, name("data"), {
    description: "EHOME platform: DynamoDB tables and the private media bucket",
  });
  const messaging = new MessagingStack(app, name("messaging"), {
    description: "EHOME platform: queues, dead-letter queues and the alarm topic",
    ...(config.alarmEmail ? { alarmEmail: config.alarmEmail } : {}),
  });
  const functions = new FunctionsStack(app, name("functions"), {
    description: "EHOME platform: queue-driven Lambda functions",
    data,
    messaging,
    agentQueuePrefix,
  });
  const api = new ApiStack(app, name("api"), {
    description: "EHOME platform: HTTP API and its function",
    data,
    agentQueuePrefix,
    authorizer: authorizerConfig(config),
    throttle: { rateLimit: config.apiRateLimit, burstLimit: config.apiBurstLimit },
  });
  const edge = new EdgeStack(app, name("edge"), {
    description: "EHOME platform: VPC, ECS edge agent and its Network Load Balancer",
    data,
    messaging,
    agentQueuePrefix,
    agentCount: config.agentCount,
    agentCpuArch: config.agentCpuArch,
    autoProvision: config.autoProvision,
    deviceCidr: config.deviceCidr,
    viewerCidr: config.viewerCidr,
  });
  const dashboard = new DashboardStack(app, name("dashboard"), {
    description: "EHOME platform: CloudWatch dashboard",
    queues: Object.values(messaging.queues),
    functions: {
      api: api.apiFunction.function,
      registry: functions.registry.function,
      "command-results": functions.commandResults.function,
      media: functions.media.function,
    },
    api: api.api,
    agent: edge.agent,
  });

  return { config, data, messaging, functions, api, edge, dashboard };
}

/**
 * cdk-nag (AwsSolutions) and cfn-guard (Control Tower proactive controls) run on every synth.
 * Any finding that is not acknowledged, with a reason, next to the resource fails the synth.
 */
export function addPolicyValidation(app: App): void {
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app), new CfnGuardValidator());
}
