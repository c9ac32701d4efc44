import { join } from "node:path";
import { Aws, Duration, RemovalPolicy, Validations } from "aws-cdk-lib";
import { CfnEIP, type IVpc, Peer, Port, SecurityGroup, SubnetType } from "aws-cdk-lib/aws-ec2";
import { Platform } from "aws-cdk-lib/aws-ecr-assets";
import {
  AwsLogDriver,
  type Cluster,
  ContainerDefinition,
  ContainerImage,
  CpuArchitecture,
  Protocol as EcsProtocol,
  type Secret as EcsSecret,
  FargateService,
  FargateTaskDefinition,
  LinuxParameters,
  OperatingSystemFamily,
} from "aws-cdk-lib/aws-ecs";
import {
  NetworkLoadBalancer,
  type NetworkTargetGroup,
  Protocol,
} from "aws-cdk-lib/aws-elasticloadbalancingv2";
import { Policy, PolicyStatement, Role, ServicePrincipal } from "aws-cdk-lib/aws-iam";
import { Construct } from "constructs";
import { ENV } from "../contracts/env.ts";
import { HEALTH_CHECK_PATH, PORTS } from "../contracts/ports.ts";
import { createLogGroup } from "./log-group.ts";
import { REPO_ROOT } from "./paths.ts";

export type AgentCpuArch = "x86_64" | "arm64";

export interface EdgeAgentServiceProps {
  readonly vpc: IVpc;
  readonly cluster: Cluster;
  /**
   * Environment of the agent container (resource names and ports from `ENV`). The construct adds
   * `EHOME_PUBLIC_HOST` (the load balancer's first Elastic IP, which only it knows) and
   * `EHOME_PUBLIC_HOST_DISCOVERY=ecs` (each task announces its own public IP instead).
   */
  readonly environment: Record<string, string>;
  /** Secrets injected as environment variables by ECS (never in the task definition in clear). */
  readonly secrets?: Record<string, EcsSecret>;
  readonly desiredCount: number;
  readonly cpuArch: AgentCpuArch;
  /** Source range allowed on the device ports (signalling, alarms, device HTTP, media). */
  readonly deviceCidr: string;
  /** Source range allowed on the viewer HTTP port. */
  readonly viewerCidr: string;
}

/** Files that never go into the agent image (also keeps asset hashing fast). */
export const AGENT_IMAGE_EXCLUDES = [
  ".git",
  "node_modules",
  "cdk.out",
  ".ehome",
  "coverage",
  "test",
  "bench",
  "docs",
  "scratch",
  "**/*.log",
  "**/*.jsonl",
];

const media = PORTS.mediaPool;

/**
 * The edge agent on Fargate (architecture §7): tasks in public subnets with a public IP, so the
 * media pool is reached directly on the task's own address (an NLB has at most 50 listeners and
 * cannot carry hundreds of media ports); an NLB carries UDP signalling and alarms (IP targets,
 * source-IP stickiness, client IP preserved) and the TCP device HTTP port. The NLB has one
 * Elastic IP per public subnet (AZ): EHOME fields carry IP addresses, not names, so devices are
 * configured with one of them and signal there. Everything a device opens after REGISTER (alarms,
 * uploads, firmware, media) and every viewer URL goes to the task's own public IP, which the agent
 * discovers at start-up (`EHOME_PUBLIC_HOST_DISCOVERY=ecs`, edge-agent/cloud/public-address.ts),
 * so it reaches the task that holds the device's session; the first EIP (`EHOME_PUBLIC_HOST`) is
 * the fallback when discovery fails.
 */
export class EdgeAgentService extends Construct {
  public readonly service: FargateService;
  public readonly taskRole: Role;
  public readonly container: ContainerDefinition;
  public readonly securityGroup: SecurityGroup;
  public readonly loadBalancer: NetworkLoadBalancer;
  /** The NLB's Elastic IPs, one per public subnet, in subnet order; retained on deletion. */
  public readonly deviceAddresses: readonly CfnEIP[];
  public readonly targetGroups: {
    readonly signalling: NetworkTargetGroup;
    readonly alarm: NetworkTargetGroup;
    readonly deviceHttp: NetworkTargetGroup;
    /**
     * Viewer HTTP through the NLB: used only by an agent whose discovery failed (it then announces
     * the NLB as `publicHost`); otherwise stream URLs name the task's own address and this port.
     */
    readonly viewerHttp: NetworkTargetGroup;
  };

  constructor(scope: Construct, id: string, props: EdgeAgentServiceProps) {
    super(scope, id);
    const arm = props.cpuArch === "arm64";

    this.taskRole = new Role(this, "TaskRole", {
      assumedBy: new ServicePrincipal("ecs-tasks.amazonaws.com"),
      description: "Edge agent task role",
    });

    // One Elastic IP per public subnet (AZ) for the NLB, created before the container that
    // announces the first one.
    const nlbMappings = props.vpc
      .selectSubnets({ subnetType: SubnetType.PUBLIC })
      .subnets.map((subnet, i) => {
        const eip = new CfnEIP(this, `DeviceAddress${i + 1}`, {
          domain: "vpc",
          tags: [{ key: "Name", value: `EHOME device address ${i + 1} (NLB)` }],
        });
        // Devices are configured with these addresses: neither a stack deletion nor a replacement
        // may release one. A retained EIP stays allocated (and billed) until released by hand.
        eip.applyRemovalPolicy(RemovalPolicy.RETAIN);
        return { subnet, eip };
      });
    this.deviceAddresses = nlbMappings.map((m) => m.eip);
    const announced = this.deviceAddresses[0];
    if (!announced) throw new Error("the VPC has no public subnet for the load balancer");

    const taskDefinition = new FargateTaskDefinition(this, "TaskDefinition", {
      cpu: 1024,
      memoryLimitMiB: 2048,
      taskRole: this.taskRole,
      runtimePlatform: {
        cpuArchitecture: arm ? CpuArchitecture.ARM64 : CpuArchitecture.X86_64,
        operatingSystemFamily: OperatingSystemFamily.LINUX,
      },
    });

    const logGroup = createLogGroup(this, "Logs");
    // The root filesystem is read-only; tsx keeps its compile cache in /tmp.
    taskDefinition.addVolume({ name: "tmp" });

    this.container = taskDefinition.addContainer("agent", {
      image: ContainerImage.fromAsset(REPO_ROOT, {
        file: join("edge-agent", "Dockerfile"),
        platform: arm ? Platform.LINUX_ARM64 : Platform.LINUX_AMD64,
        exclude: AGENT_IMAGE_EXCLUDES,
      }),
      essential: true,
      // The image's non-root user (node:22-slim), also set by USER in the Dockerfile.
      user: "node",
      readonlyRootFilesystem: true,
      memoryLimitMiB: 2048,
      environment: {
        ...props.environment,
        // AlarmServerIP and PictureServer in the REGISTER reply (ehome-2.0 §2.1), SinkIP, firmware
        // and viewer URLs: the task's own public IP, looked up at start-up (task metadata v4 +
        // ec2:DescribeNetworkInterfaces, granted below), so alarms, uploads, media and viewers
        // reach the task that holds the device's session, whatever the number of tasks.
        [ENV.EHOME_PUBLIC_HOST_DISCOVERY]: "ecs",
        // The fallback if that lookup fails: the NLB's first address (cross-zone load balancing
        // lets any of its addresses reach every task; the agent cannot tell which one a device
        // used, the target sees its own address as destination).
        [ENV.EHOME_PUBLIC_HOST]: announced.attrPublicIp,
      },
      ...(props.secrets ? { secrets: props.secrets } : {}),
      logging: new AwsLogDriver({ streamPrefix: "agent", logGroup }),
      // tini as PID 1: signals reach Node, zombies are reaped.
      linuxParameters: new LinuxParameters(this, "LinuxParameters", { initProcessEnabled: true }),
      // The agent sends `offline (agent-shutdown)` for its sessions on SIGTERM.
      stopTimeout: Duration.seconds(30),
      healthCheck: {
        // node:22-slim has no curl; Node's fetch does the probe.
        command: [
          "CMD",
          "node",
          "-e",
          `fetch('http://127.0.0.1:${PORTS.deviceHttpTcp}${HEALTH_CHECK_PATH}').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))`,
        ],
        interval: Duration.seconds(15),
        timeout: Duration.seconds(5),
        retries: 3,
        startPeriod: Duration.seconds(20),
      },
      portMappings: [
        { containerPort: PORTS.signallingUdp, protocol: EcsProtocol.UDP },
        { containerPort: PORTS.alarmUdp, protocol: EcsProtocol.UDP },
        { containerPort: PORTS.deviceHttpTcp, protocol: EcsProtocol.TCP },
        { containerPort: PORTS.viewerHttpTcp, protocol: EcsProtocol.TCP },
        ...[EcsProtocol.TCP, EcsProtocol.UDP].map((protocol) => ({
          containerPort: ContainerDefinition.CONTAINER_PORT_USE_RANGE,
          containerPortRange: `${media.min}-${media.max}`,
          protocol,
        })),
      ],
    });
    this.container.addMountPoints({ containerPath: "/tmp", sourceVolume: "tmp", readOnly: false });
    Validations.of(taskDefinition.obtainExecutionRole()).acknowledge({
      id: "AwsSolutions-IAM5[Resource::*]",
      reason:
        "The execution role's only wildcard is ecr:GetAuthorizationToken, which AWS defines on no resource; image pulls themselves are scoped to the asset repository.",
    });
    Validations.of(taskDefinition).acknowledge({
      id: "AwsSolutions-ECS2",
      reason:
        "The environment holds only resource names, queue URLs and port numbers from lib/contracts/env.ts; the secrets (the firmware and stream token keys) are injected from Secrets Manager through `secrets`.",
    });

    this.securityGroup = new SecurityGroup(this, "SecurityGroup", {
      vpc: props.vpc,
      description: "Edge agent: device and viewer ports",
      allowAllOutbound: true,
    });
    const devices = Peer.ipv4(props.deviceCidr);
    const sg = this.securityGroup;
    // Devices reach the task two ways, both from their own addresses: through the NLB, which
    // preserves client IPs (signalling; alarms and uploads when discovery failed), and directly on
    // the task's public IP that the agent announces (alarms, uploads, firmware, the media pool).
    sg.addIngressRule(devices, Port.udp(PORTS.signallingUdp), "EHOME signalling");
    sg.addIngressRule(devices, Port.udp(PORTS.alarmUdp), "EHOME alarms");
    sg.addIngressRule(devices, Port.tcp(PORTS.deviceHttpTcp), "Device HTTP (uploads, firmware)");
    sg.addIngressRule(devices, Port.tcpRange(media.min, media.max), "Media pool (TCP)");
    sg.addIngressRule(devices, Port.udpRange(media.min, media.max), "Media pool (UDP)");
    sg.addIngressRule(
      Peer.ipv4(props.viewerCidr),
      Port.tcp(PORTS.viewerHttpTcp),
      "Viewer HTTP (signed stream URLs)",
    );
    // NLB health checks come from the load balancer's private addresses.
    sg.addIngressRule(
      Peer.ipv4(props.vpc.vpcCidrBlock),
      Port.tcp(PORTS.deviceHttpTcp),
      "NLB health checks",
    );
    const openToInternet =
      "Devices (often 4G units behind carrier NAT) and viewers connect from arbitrary internet addresses; narrow with -c deviceCidr / -c viewerCidr. The agent refuses devices that are not provisioned, and every viewer URL carries a signed, expiring token.";
    Validations.of(sg).acknowledge(
      { id: "AwsSolutions-EC23", reason: openToInternet },
      {
        id: "cdk-validator-cfnguard::vpc_sg_open_only_to_authorized_ports_check",
        reason: openToInternet,
      },
    );

    this.service = new FargateService(this, "Service", {
      cluster: props.cluster,
      taskDefinition,
      desiredCount: props.desiredCount,
      assignPublicIp: true,
      vpcSubnets: { subnetType: SubnetType.PUBLIC },
      securityGroups: [sg],
      minHealthyPercent: 100,
      maxHealthyPercent: 200,
      circuitBreaker: { rollback: true },
      healthCheckGracePeriod: Duration.seconds(60),
    });
    // The task's own public IP (EHOME_PUBLIC_HOST_DISCOVERY=ecs): one read-only call, in a policy
    // of its own so that the acknowledgement below covers this statement and nothing else. The
    // service waits for it: a task started without it would fall back to the NLB address.
    const discovery = new Policy(this, "PublicAddressDiscovery", {
      statements: [
        new PolicyStatement({
          actions: ["ec2:DescribeNetworkInterfaces"],
          resources: ["*"],
          conditions: { StringEquals: { "aws:RequestedRegion": Aws.REGION } },
        }),
      ],
    });
    this.taskRole.attachInlinePolicy(discovery);
    this.service.node.addDependency(discovery);
    Validations.of(discovery).acknowledge({
      id: "AwsSolutions-IAM5[Resource::*]",
      reason:
        "ec2:DescribeNetworkInterfaces supports no resource-level permissions (AWS defines it on resource *); it is read-only, limited to the stack's region by aws:RequestedRegion, and is how each agent task learns its own public IP to announce to devices.",
    });
    Validations.of(this.service).acknowledge({
      id: "cdk-validator-cfnguard::ecs_service_assign_public_ip_disabled_check",
      reason:
        "Devices reach the media port pool directly on the task's public address (SinkIP); an NLB cannot carry the pool (at most 50 listeners), architecture §7. The security group admits only the agent's ports.",
    });

    this.loadBalancer = new NetworkLoadBalancer(this, "LoadBalancer", {
      vpc: props.vpc,
      internetFacing: true,
      subnetMappings: nlbMappings.map(({ subnet, eip }) => ({
        subnet,
        allocationId: eip.attrAllocationId,
      })),
      crossZoneEnabled: true,
      // Devices are configured with its addresses; deleting it would take them out of service.
      deletionProtection: true,
    });
    const noTlsListener =
      "NLB access logs record only TLS listeners; this NLB has UDP and plain TCP listeners, so the log would stay empty. VPC flow logs cover the traffic.";
    Validations.of(this.loadBalancer).acknowledge(
      { id: "AwsSolutions-ELB2", reason: noTlsListener },
      { id: "cdk-validator-cfnguard::elbv2_logging_enabled_check", reason: noTlsListener },
    );

    this.targetGroups = {
      signalling: this.listen("Signalling", PORTS.signallingUdp, Protocol.UDP),
      alarm: this.listen("Alarm", PORTS.alarmUdp, Protocol.UDP),
      deviceHttp: this.listen("DeviceHttp", PORTS.deviceHttpTcp, Protocol.TCP),
      viewerHttp: this.listen("ViewerHttp", PORTS.viewerHttpTcp, Protocol.TCP),
    };
  }

  private listen(id: string, port: number, protocol: Protocol.UDP | Protocol.TCP) {
    const listener = this.loadBalancer.addListener(id, { port, protocol });
    const group = listener.addTargets(id, {
      port,
      protocol,
      targets: [
        this.service.loadBalancerTarget({
          containerName: this.container.containerName,
          containerPort: port,
          protocol: protocol === Protocol.UDP ? EcsProtocol.UDP : EcsProtocol.TCP,
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
    if (protocol === Protocol.UDP) {
      // One device's flows must stay on one agent: that agent holds the session and answers from
      // the same flow (architecture §7).
      group.setAttribute("stickiness.enabled", "true");
      group.setAttribute("stickiness.type", "source_ip");
    }
    return group;
  }
}
