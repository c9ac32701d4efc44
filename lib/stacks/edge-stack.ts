import { CfnOutput, Duration, Fn, Stack, type StackProps } from "aws-cdk-lib";
import { FlowLogDestination, FlowLogTrafficType, SubnetType, Vpc } from "aws-cdk-lib/aws-ec2";
import {
  Cluster,
  ContainerInsights,
  Protocol as EcsProtocol,
  Secret as EcsSecret,
} from "aws-cdk-lib/aws-ecs";
import { ListenerCertificate, Protocol, SslPolicy } from "aws-cdk-lib/aws-elasticloadbalancingv2";
import { RetentionDays } from "aws-cdk-lib/aws-logs";
import type { Construct } from "constructs";
import { type AgentCpuArch, EdgeAgentService } from "../constructs/edge-agent-service.ts";
import {
  AGENT_QUEUE_OWNER_ACTIONS,
  grantAgentQueues,
  grantBucketObjects,
  grantTable,
} from "../constructs/grants.ts";
import { createLogGroup } from "../constructs/log-group.ts";
import { ENV } from "../contracts/env.ts";
import { HEALTH_CHECK_PATH, PORTS } from "../contracts/ports.ts";
import { TABLES } from "../contracts/tables.ts";
import type { DataStack } from "./data-stack.ts";
import type { MessagingStack } from "./messaging-stack.ts";

export interface EdgeStackProps extends StackProps {
  readonly data: DataStack;
  readonly messaging: MessagingStack;
  readonly agentQueuePrefix: string;
  readonly agentCount: number;
  readonly agentCpuArch: AgentCpuArch;
  /** Whether devices missing from the devices table may register. */
  readonly autoProvision: boolean;
  readonly deviceCidr: string;
  readonly viewerCidr: string;
}

/** Seconds a stream lives with no viewer before the agent stops it (`EHOME_STREAM_IDLE_SECONDS`). */
export const STREAM_IDLE_SECONDS = 30;

/** CDK context key of the NTP server announced to devices (`-c ntpHost=<IPv4>`). */
export const NTP_HOST_CONTEXT = "ntpHost";

const IPV4 = /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

/**
 * `NTPServerIP` for the REGISTER reply (ehome-2.0 §2.1), from `-c ntpHost`. An IPv4 address, not a
 * name: the field is an IP. Unset, the agent falls back to its public host, the NLB, where no NTP
 * server answers; the deploy guide tells operators to pass one. (Read from the context here, not
 * yet in `lib/config.ts` with the other switches.)
 */
export function ntpHostFromContext(value: unknown): string | undefined {
  if (value === undefined || value === null || value === "") return undefined;
  const text = String(value).trim();
  if (!IPV4.test(text)) {
    throw new Error(
      `invalid CDK context: ${NTP_HOST_CONTEXT} must be an IPv4 address (devices take an IP, not a name), got ${JSON.stringify(value)}`,
    );
  }
  return text;
}

/** CDK context keys of the device HTTPS listener (`-c deviceHttpsCertificateArn=… -c deviceHttpsHost=…`). */
export const DEVICE_HTTPS_CERTIFICATE_CONTEXT = "deviceHttpsCertificateArn";
export const DEVICE_HTTPS_HOST_CONTEXT = "deviceHttpsHost";

const ACM_ARN = /^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate\/[A-Za-z0-9-]+$/;
const DNS_NAME =
  /^(?=.{1,253}$)(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$/;

/**
 * HTTPS for device downloads (issue 8 item 7): an ACM certificate ARN and the DNS name it covers,
 * which the operator points at the NLB's Elastic IPs (devices verify the name, and ACM issues no
 * certificate for an IP address). Both or neither.
 */
export function deviceHttpsFromContext(
  certificateArn: unknown,
  host: unknown,
): { certificateArn: string; host: string } | undefined {
  const arn = certificateArn === undefined || certificateArn === "" ? undefined : certificateArn;
  const name = host === undefined || host === "" ? undefined : host;
  if (arn === undefined && name === undefined) return undefined;
  if (typeof arn !== "string" || !ACM_ARN.test(arn)) {
    throw new Error(
      `invalid CDK context: ${DEVICE_HTTPS_CERTIFICATE_CONTEXT} must be an ACM certificate ARN (with ${DEVICE_HTTPS_HOST_CONTEXT}), got ${JSON.stringify(certificateArn)}`,
    );
  }
  if (typeof name !== "string" || !DNS_NAME.test(name)) {
    throw new Error(
      `invalid CDK context: ${DEVICE_HTTPS_HOST_CONTEXT} must be the DNS name the certificate covers, pointed at the NLB's addresses, got ${JSON.stringify(host)}`,
    );
  }
  return { certificateArn: arn, host: name };
}

/**
 * Where devices connect: a VPC with public subnets only (no NAT: tasks have public IPs and reach
 * AWS APIs directly), the ECS cluster, and the edge agent service behind its NLB.
 */
export class EdgeStack extends Stack {
  public readonly vpc: Vpc;
  public readonly cluster: Cluster;
  public readonly agent: EdgeAgentService;

  constructor(scope: Construct, id: string, props: EdgeStackProps) {
    super(scope, id, props);
    const { tables, mediaBucket } = props.data;
    const { queues } = props.messaging;
    const ntpHost = ntpHostFromContext(this.node.tryGetContext(NTP_HOST_CONTEXT));
    const deviceHttps = deviceHttpsFromContext(
      this.node.tryGetContext(DEVICE_HTTPS_CERTIFICATE_CONTEXT),
      this.node.tryGetContext(DEVICE_HTTPS_HOST_CONTEXT),
    );

    this.vpc = new Vpc(this, "Vpc", {
      maxAzs: 2,
      natGateways: 0,
      // Tasks get their public IP from the service (assignPublicIp), not from the subnet.
      subnetConfiguration: [
        { name: "public", subnetType: SubnetType.PUBLIC, cidrMask: 24, mapPublicIpOnLaunch: false },
      ],
      // Restricting the default SG needs a custom-resource Lambda; nothing here uses that SG.
      restrictDefaultSecurityGroup: false,
    });
    const flowLogs = createLogGroup(this, "FlowLogs", {
      retention: RetentionDays.THREE_MONTHS,
      shortRetentionReason:
        "Flow logs of every device keepalive grow with the fleet; three months covers incident investigation, and the API and function logs are kept a year.",
    });
    this.vpc.addFlowLog("FlowLog", {
      destination: FlowLogDestination.toCloudWatchLogs(flowLogs),
      trafficType: FlowLogTrafficType.ALL,
    });

    this.cluster = new Cluster(this, "Cluster", {
      vpc: this.vpc,
      containerInsightsV2: ContainerInsights.ENABLED,
    });

    this.agent = new EdgeAgentService(this, "Agent", {
      vpc: this.vpc,
      cluster: this.cluster,
      desiredCount: props.agentCount,
      cpuArch: props.agentCpuArch,
      deviceCidr: props.deviceCidr,
      viewerCidr: props.viewerCidr,
      secrets: {
        [ENV.FIRMWARE_TOKEN_KEY]: EcsSecret.fromSecretsManager(props.data.firmwareTokenKey),
        [ENV.STREAM_TOKEN_KEY]: EcsSecret.fromSecretsManager(props.data.streamTokenKey),
      },
      environment: {
        [ENV.DEVICES_TABLE]: tables.devices.tableName,
        [ENV.AGENTS_TABLE]: tables.agents.tableName,
        [ENV.DEVICE_EVENTS_QUEUE_URL]: queues.deviceEvents.queue.queueUrl,
        [ENV.COMMAND_RESULTS_QUEUE_URL]: queues.commandResults.queue.queueUrl,
        [ENV.ALARM_EVENTS_QUEUE_URL]: queues.alarmEvents.queue.queueUrl,
        [ENV.UPGRADE_EVENTS_QUEUE_URL]: queues.upgradeEvents.queue.queueUrl,
        [ENV.DEVICE_DATA_QUEUE_URL]: queues.deviceData.queue.queueUrl,
        [ENV.MEDIA_EVENTS_QUEUE_URL]: queues.mediaEvents.queue.queueUrl,
        [ENV.AGENT_QUEUE_PREFIX]: props.agentQueuePrefix,
        [ENV.MEDIA_BUCKET]: mediaBucket.bucketName,
        [ENV.EHOME_SIGNAL_PORT]: String(PORTS.signallingUdp),
        [ENV.EHOME_ALARM_PORT]: String(PORTS.alarmUdp),
        [ENV.EHOME_HTTP_PORT]: String(PORTS.deviceHttpTcp),
        [ENV.EHOME_MEDIA_PORTS]: `${PORTS.mediaPool.min}-${PORTS.mediaPool.max}`,
        [ENV.EHOME_VIEWER_PORT]: String(PORTS.viewerHttpTcp),
        [ENV.EHOME_STREAM_IDLE_SECONDS]: String(STREAM_IDLE_SECONDS),
        [ENV.EHOME_AUTO_PROVISION]: String(props.autoProvision),
        ...(ntpHost ? { [ENV.EHOME_NTP_HOST]: ntpHost } : {}),
        // TLS ends at the NLB: the agent only builds https:// download URLs (no listener).
        ...(deviceHttps
          ? {
              [ENV.EHOME_HTTPS_PUBLIC_HOST]: deviceHttps.host,
              [ENV.EHOME_HTTPS_PUBLIC_PORT]: String(PORTS.deviceHttpsTcp),
            }
          : {}),
      },
    });
    if (deviceHttps) this.addDeviceHttps(deviceHttps);

    new CfnOutput(this, "DeviceAddresses", {
      description: `The NLB's Elastic IPs, one per AZ: configure devices with one of them as EHOME server (UDP ${PORTS.signallingUdp}); alarms (UDP ${PORTS.alarmUdp}), uploads (TCP ${PORTS.deviceHttpTcp}) and media go to each agent task's own public IP (the first EIP if a task cannot discover it)`,
      value: Fn.join(
        ",",
        this.agent.deviceAddresses.map((eip) => eip.attrPublicIp),
      ),
    });

    const role = this.agent.taskRole;
    // Provisioning lookups at REGISTER (provisioned flag, password hash).
    grantTable(role, tables.devices, TABLES.devices, "read");
    // The agent's own heartbeat record.
    grantTable(role, tables.agents, TABLES.agents, "write");
    queues.deviceEvents.queue.grantSendMessages(role);
    queues.commandResults.queue.grantSendMessages(role);
    queues.alarmEvents.queue.grantSendMessages(role);
    queues.upgradeEvents.queue.grantSendMessages(role);
    queues.deviceData.queue.grantSendMessages(role);
    queues.mediaEvents.queue.grantSendMessages(role);
    grantAgentQueues(role, props.agentQueuePrefix, AGENT_QUEUE_OWNER_ACTIONS);
    // Uploads and recordings in, firmware out.
    grantBucketObjects(role, props.data.mediaObjects(this), "readWrite");
  }

  /**
   * A TLS listener on the NLB for the device routes (issue 8 item 7): devices fetch
   * `https://<deviceHttpsHost>:8443/fw/…`; the NLB terminates TLS with the ACM certificate and
   * forwards plain TCP to the agent's device HTTP port, client IP preserved (the firmware route
   * serves only the device's own address).
   */
  private addDeviceHttps(https: { certificateArn: string; host: string }): void {
    const { agent } = this;
    const listener = agent.loadBalancer.addListener("DeviceHttps", {
      port: PORTS.deviceHttpsTcp,
      protocol: Protocol.TLS,
      certificates: [ListenerCertificate.fromArn(https.certificateArn)],
      sslPolicy: SslPolicy.RECOMMENDED_TLS,
    });
    listener.addTargets("DeviceHttps", {
      port: PORTS.deviceHttpTcp,
      protocol: Protocol.TCP,
      targets: [
        agent.service.loadBalancerTarget({
          containerName: agent.container.containerName,
          containerPort: PORTS.deviceHttpTcp,
          protocol: EcsProtocol.TCP,
        }),
      ],
      preserveClientIp: true,
      deregistrationDelay: Duration.seconds(30),
      healthCheck: {
        protocol: Protocol.HTTP,
        port: String(PORTS.deviceHttpTcp),
        path: HEALTH_CHECK_PATH,
        interval: Duration.seconds(10),
        healthyThresholdCount: 2,
        unhealthyThresholdCount: 2,
      },
    });
    new CfnOutput(this, "DeviceHttpsUrl", {
      description: `Devices download over https from this name and port: point the DNS name at the NLB's Elastic IPs (DeviceAddresses)`,
      value: `https://${https.host}:${PORTS.deviceHttpsTcp}`,
    });
  }
}
