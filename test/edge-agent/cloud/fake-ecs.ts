import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/**
 * Two loopback HTTP servers playing what a Fargate task sees: the task metadata endpoint v4
 * (`${ECS_CONTAINER_METADATA_URI_V4}/task`, JSON as in the ECS developer guide's Fargate example)
 * and the EC2 Query API's `DescribeNetworkInterfaces` (form-encoded POST, XML answer and XML
 * errors, as the real service; the SDK parses them). The EC2 server applies the
 * `addresses.private-ip-address` and `mac-address` filters to its interfaces, so a caller that
 * does not send them sees every interface.
 */

export interface FakeEni {
  id: string;
  privateIp: string;
  mac: string;
  /** Undefined: no public IPv4 associated. */
  publicIp?: string;
}

/** What one request gets: the normal answer, an error, or no answer at all (until close). */
export type Behaviour =
  | "ok"
  | "hang"
  | { status: number; body?: string }
  | { ec2Error: { status: number; code: string; message: string } };

export interface FakeEcs {
  /** Value of `ECS_CONTAINER_METADATA_URI_V4`. */
  readonly metadataUri: string;
  /** Value of `AWS_ENDPOINT_URL_EC2`. */
  readonly ec2Endpoint: string;
  /** The task's interface in `/task` (its private IP and MAC). */
  task: { privateIp: string; mac: string; taskArn: string };
  enis: FakeEni[];
  /** Behaviours of the next requests, consumed in order; afterwards `"ok"`. */
  readonly metadataPlan: Behaviour[];
  readonly ec2Plan: Behaviour[];
  /** Every EC2 request: its form parameters and headers. */
  readonly ec2Requests: { params: URLSearchParams; authorization: string }[];
  metadataRequests: number;
  close(): Promise<void>;
}

export const TASK_ARN =
  "arn:aws:ecs:eu-west-1:123456789012:task/ehome-edge-Cluster/bfa2636268144d039771334145e490c5";

function taskBody(task: FakeEcs["task"]): string {
  const network = {
    NetworkMode: "awsvpc",
    IPv4Addresses: [task.privateIp],
    AttachmentIndex: 0,
    MACAddress: task.mac,
    IPv4SubnetCIDRBlock: "10.0.0.0/24",
    DomainNameServers: ["10.0.0.2"],
    DomainNameSearchList: ["eu-west-1.compute.internal"],
    PrivateDNSName: `ip-${task.privateIp.replaceAll(".", "-")}.eu-west-1.compute.internal`,
    SubnetGatewayIpv4Address: "10.0.0.1/24",
  };
  return JSON.stringify({
    Cluster: "arn:aws:ecs:eu-west-1:123456789012:cluster/ehome-edge-Cluster",
    TaskARN: task.taskArn,
    Family: "ehomeedgeAgentTaskDefinition",
    Revision: "7",
    DesiredStatus: "RUNNING",
    KnownStatus: "RUNNING",
    Limits: { CPU: 1, Memory: 2048 },
    PullStartedAt: "2026-11-24T10:00:00.000Z",
    PullStoppedAt: "2026-11-24T10:00:05.000Z",
    AvailabilityZone: "eu-west-1a",
    Containers: [
      {
        DockerId: "bfa2636268144d039771334145e490c5-3681984407",
        Name: "agent",
        DockerName: "agent",
        Image: "123456789012.dkr.ecr.eu-west-1.amazonaws.com/cdk-hnb659fds-container-assets:abc",
        ImageID: "sha256:8059bdd0058510c03ae4c808de8c4fd2c1f3c1b6d9ea75487f1e5caa5ececa02",
        Labels: { "com.amazonaws.ecs.container-name": "agent" },
        DesiredStatus: "RUNNING",
        KnownStatus: "RUNNING",
        Limits: { CPU: 2 },
        CreatedAt: "2026-11-24T10:00:06.000Z",
        StartedAt: "2026-11-24T10:00:06.500Z",
        Type: "NORMAL",
        Networks: [network],
        ContainerARN: `${task.taskArn.replace(":task/", ":container/")}/da6cccf7-1178-400c-afdf-7536173ee209`,
        Snapshotter: "overlayfs",
      },
    ],
    LaunchType: "FARGATE",
    ClockDrift: {
      ClockErrorBound: 0.44,
      ReferenceTimestamp: "2026-11-24T10:00:00Z",
      ClockSynchronizationStatus: "SYNCHRONIZED",
    },
    EphemeralStorageMetrics: { Utilized: 261, Reserved: 20496 },
  });
}

function association(publicIp: string | undefined): string {
  return publicIp
    ? `<association><publicIp>${publicIp}</publicIp><publicDnsName>ec2-${publicIp.replaceAll(".", "-")}.eu-west-1.compute.amazonaws.com</publicDnsName><ipOwnerId>amazon</ipOwnerId></association>`
    : "";
}

function eniXml(eni: FakeEni): string {
  return `<item>
      <networkInterfaceId>${eni.id}</networkInterfaceId>
      <subnetId>subnet-0a1b2c3d</subnetId>
      <vpcId>vpc-0a1b2c3d</vpcId>
      <availabilityZone>eu-west-1a</availabilityZone>
      <description>arn:aws:ecs:eu-west-1:123456789012:attachment/0d3b5e7a-0000-4000-8000-000000000000</description>
      <ownerId>123456789012</ownerId>
      <requesterId>578734482556</requesterId>
      <requesterManaged>true</requesterManaged>
      <status>in-use</status>
      <macAddress>${eni.mac}</macAddress>
      <privateIpAddress>${eni.privateIp}</privateIpAddress>
      <sourceDestCheck>true</sourceDestCheck>
      <groupSet><item><groupId>sg-0a1b2c3d</groupId><groupName>ehome-edge-AgentSecurityGroup</groupName></item></groupSet>
      <attachment><attachmentId>ela-attach-0a1b2c3d</attachmentId><deviceIndex>1</deviceIndex><status>attached</status><attachTime>2026-11-24T10:00:00.000Z</attachTime><deleteOnTermination>false</deleteOnTermination></attachment>
      ${association(eni.publicIp)}
      <tagSet/>
      <privateIpAddressesSet><item><privateIpAddress>${eni.privateIp}</privateIpAddress><primary>true</primary>${association(eni.publicIp)}</item></privateIpAddressesSet>
      <ipv6AddressesSet/>
      <interfaceType>interface</interfaceType>
    </item>`;
}

/** `Filter.N.Name` / `Filter.N.Value.M` of an EC2 Query request, as name → values. */
export function filtersOf(params: URLSearchParams): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const [key, value] of params) {
    const m = /^Filter\.(\d+)\.Name$/.exec(key);
    if (!m) continue;
    const values: string[] = [];
    for (let i = 1; params.has(`Filter.${m[1]}.Value.${i}`); i++) {
      values.push(params.get(`Filter.${m[1]}.Value.${i}`)!);
    }
    out.set(value, values);
  }
  return out;
}

async function listen(server: Server): Promise<number> {
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  return (server.address() as AddressInfo).port;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (d: string) => (body += d));
    req.on("end", () => resolve(body));
    req.on("error", reject);
  });
}

function answer(res: ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { "content-type": type, "content-length": Buffer.byteLength(body) });
  res.end(body);
}

export async function startFakeEcs(
  init: { task?: Partial<FakeEcs["task"]>; enis?: FakeEni[] } = {},
): Promise<FakeEcs> {
  const metadataPlan: Behaviour[] = [];
  const ec2Plan: Behaviour[] = [];
  const ec2Requests: FakeEcs["ec2Requests"] = [];
  const hanging = new Set<ServerResponse>();

  const metadata = createServer((req, res) => {
    state.metadataRequests++;
    const b = metadataPlan.shift() ?? "ok";
    if (b === "hang") {
      hanging.add(res);
      return;
    }
    if (typeof b === "object" && "status" in b) {
      answer(res, b.status, "text/plain", b.body ?? "");
      return;
    }
    if (req.method !== "GET" || req.url !== "/v4/0d3b5e7a-task-metadata/task") {
      answer(res, 404, "text/plain", "404 page not found");
      return;
    }
    answer(res, 200, "application/json", taskBody(state.task));
  });

  const ec2 = createServer((req, res) => {
    void readBody(req).then((body) => {
      const params = new URLSearchParams(body);
      ec2Requests.push({ params, authorization: String(req.headers.authorization ?? "") });
      const b = ec2Plan.shift() ?? "ok";
      if (b === "hang") {
        hanging.add(res);
        return;
      }
      if (typeof b === "object" && "status" in b) {
        answer(res, b.status, "text/plain", b.body ?? "");
        return;
      }
      if (typeof b === "object" && "ec2Error" in b) {
        const { status, code, message } = b.ec2Error;
        answer(
          res,
          status,
          "text/xml;charset=UTF-8",
          `<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>${code}</Code><Message>${message}</Message></Error></Errors><RequestID>${randomUUID()}</RequestID></Response>`,
        );
        return;
      }
      if (params.get("Action") !== "DescribeNetworkInterfaces") {
        answer(
          res,
          400,
          "text/xml;charset=UTF-8",
          `<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>InvalidAction</Code><Message>The action ${params.get("Action")} is not valid for this web service.</Message></Error></Errors><RequestID>${randomUUID()}</RequestID></Response>`,
        );
        return;
      }
      const filters = filtersOf(params);
      const ips = filters.get("addresses.private-ip-address");
      const macs = filters.get("mac-address");
      const matching = state.enis.filter(
        (e) => (!ips || ips.includes(e.privateIp)) && (!macs || macs.includes(e.mac)),
      );
      answer(
        res,
        200,
        "text/xml;charset=UTF-8",
        `<?xml version="1.0" encoding="UTF-8"?>
<DescribeNetworkInterfacesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
  <requestId>${randomUUID()}</requestId>
  <networkInterfaceSet>
    ${matching.map(eniXml).join("\n    ")}
  </networkInterfaceSet>
</DescribeNetworkInterfacesResponse>`,
      );
    });
  });

  const metadataPort = await listen(metadata);
  const ec2Port = await listen(ec2);
  const task = {
    privateIp: "10.0.0.12",
    mac: "0e:98:9f:33:76:d3",
    taskArn: TASK_ARN,
    ...init.task,
  };
  const state: FakeEcs = {
    metadataUri: `http://127.0.0.1:${metadataPort}/v4/0d3b5e7a-task-metadata`,
    ec2Endpoint: `http://127.0.0.1:${ec2Port}`,
    task,
    enis: init.enis ?? [
      {
        id: "eni-0f7db0ba0bd7bd2ab",
        privateIp: task.privateIp,
        mac: task.mac,
        publicIp: "203.0.113.77",
      },
    ],
    metadataPlan,
    ec2Plan,
    ec2Requests,
    metadataRequests: 0,
    async close() {
      for (const res of hanging) res.destroy();
      hanging.clear();
      for (const server of [metadata, ec2]) {
        server.closeAllConnections();
        await new Promise<void>((r) => server.close(() => r()));
      }
    },
  };
  return state;
}
