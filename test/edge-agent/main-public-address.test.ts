import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GetItemCommand } from "@aws-sdk/client-dynamodb";
import { unmarshall } from "@aws-sdk/util-dynamodb";
import { afterEach, describe, expect, it } from "vitest";
import { COMMANDS } from "../../edge-agent/signalling/catalogue.ts";
import { childText, type ResponseMessage } from "../../edge-agent/signalling/codec/index.ts";
import { agentKey } from "../../lib/contracts/tables.ts";
import { type AgentProcess, startAgentProcess } from "../e2e/helpers/agent-process.ts";
import { eventually, uniquePrefix, useLocalBackends } from "../helpers/local-backends.ts";
import { type FakeEcs, startFakeEcs } from "./cloud/fake-ecs.ts";
import { registerDatagram } from "./helpers/devices.ts";
import { createUdpDevice, type UdpDevice } from "./helpers/udp-device.ts";

/**
 * `npm run agent` with `EHOME_PUBLIC_HOST_DISCOVERY=ecs` (issue 4 item 8, issue 7 item 2): the
 * agent process finds its task's public IPv4 through the task metadata endpoint and the EC2 API
 * (loopback fakes, fake-ecs.ts) and announces it instead of `EHOME_PUBLIC_HOST` (the NLB): in the
 * REGISTER reply (ehome-2.0 §2.1) and in its heartbeat record, whose `publicHost` the API puts in
 * stream and talk URLs. When discovery fails it still starts, on `EHOME_PUBLIC_HOST`.
 */

const NLB = "198.51.100.1";
const TASK_PUBLIC_IP = "203.0.113.77";
const reply = COMMANDS.register.reply;

let ecs: FakeEcs | undefined;
let agent: AgentProcess | undefined;
let dev: UdpDevice | undefined;
let spill: string | undefined;
afterEach(async () => {
  await dev?.close();
  dev = undefined;
  await agent?.kill("SIGKILL");
  agent = undefined;
  await ecs?.close();
  ecs = undefined;
  if (spill) await rm(spill, { recursive: true, force: true });
  spill = undefined;
});

function agentEnv(fake: FakeEcs, extra: Record<string, string> = {}): Record<string, string> {
  return {
    PATH: process.env.PATH ?? "",
    EHOME_HOST: "127.0.0.1",
    EHOME_SIGNAL_PORT: "0",
    EHOME_ALARM_PORT: "0",
    EHOME_HTTP_PORT: "0",
    EHOME_VIEWER_PORT: "0",
    EHOME_LEARN_DEVICES: "false",
    EHOME_PUBLIC_HOST: NLB,
    EHOME_NTP_HOST: "192.0.2.123",
    EHOME_PUBLIC_HOST_DISCOVERY: "ecs",
    EHOME_PUBLIC_HOST_DISCOVERY_SECONDS: "5",
    ECS_CONTAINER_METADATA_URI_V4: fake.metadataUri,
    AWS_ENDPOINT_URL_EC2: fake.ec2Endpoint,
    AWS_REGION: "eu-west-1",
    AWS_ACCESS_KEY_ID: "AKIDEXAMPLE",
    AWS_SECRET_ACCESS_KEY: "secret",
    ...extra,
  };
}

function listening(a: AgentProcess): {
  http: string;
  publicHost: string;
  publicHostSource: string;
} {
  const line = a
    .stderr()
    .split("\n")
    .find((l) => l.includes('"edge agent listening"'))!;
  return JSON.parse(line) as { http: string; publicHost: string; publicHostSource: string };
}

/** Registers a device and returns the agent's REGISTER reply. */
async function register(a: AgentProcess, deviceId: string): Promise<ResponseMessage> {
  const [host, port] = a.signalling.split(":");
  dev = await createUdpDevice({ host: host!, port: Number(port) });
  dev.send(registerDatagram({ deviceId, sequence: 1 }));
  const m = await dev.next(5000);
  expect(m.kind).toBe("response");
  return m as ResponseMessage;
}

async function health(a: AgentProcess): Promise<Record<string, unknown>> {
  const res = await fetch(`http://${listening(a).http}/healthz`);
  expect(res.status).toBe(200);
  return (await res.json()) as Record<string, unknown>;
}

describe("npm run agent with EHOME_PUBLIC_HOST_DISCOVERY=ecs", () => {
  it("when discovery fails it starts anyway on EHOME_PUBLIC_HOST, with an error log and /healthz field", async () => {
    ecs = await startFakeEcs();
    ecs.ec2Plan.push({
      ec2Error: {
        status: 403,
        code: "UnauthorizedOperation",
        message: "You are not authorized to perform this operation.",
      },
    });
    agent = await startAgentProcess(agentEnv(ecs));
    expect(listening(agent)).toMatchObject({ publicHost: NLB, publicHostSource: "configured" });
    expect(agent.stderr()).toContain("PUBLIC ADDRESS DISCOVERY FAILED");

    const r = await register(agent, "cam-fallback");
    expect(childText(r.params, reply.alarmServerIp)).toBe(NLB);
    expect(childText(r.params, reply.pictureServer)).toBe(NLB);

    const h = await health(agent);
    expect(h).toMatchObject({
      ok: true,
      publicHost: {
        discovery: "ecs",
        host: NLB,
        source: "configured",
        error: { code: "EC2_ERROR" },
      },
    });
    expect(JSON.stringify(h)).toContain("UnauthorizedOperation");
  });
});

describe("npm run agent with EHOME_PUBLIC_HOST_DISCOVERY=ecs and the cloud", () => {
  const backends = useLocalBackends();

  it("announces the task's public IP in the REGISTER reply and in its heartbeat record (the host of stream and talk URLs)", async () => {
    ecs = await startFakeEcs();
    spill = await mkdtemp(join(tmpdir(), "ehome-addr-"));
    const agentId = uniquePrefix("addr");
    const b = backends();
    agent = await startAgentProcess(
      agentEnv(ecs, {
        ...b.env,
        // The fake EC2 endpoint, not the local engines' shared one.
        AWS_ENDPOINT_URL_EC2: ecs.ec2Endpoint,
        EHOME_AGENT_ID: agentId,
        EHOME_SPILL_DIR: spill,
      }),
    );
    expect(listening(agent)).toMatchObject({
      publicHost: TASK_PUBLIC_IP,
      publicHostSource: "discovered",
    });
    const record = await eventually(async () => {
      const out = await b.clients.dynamodb.send(
        new GetItemCommand({
          TableName: b.resources.tables.agents,
          Key: { agentId: { S: agentKey(agentId).agentId } },
          ConsistentRead: true,
        }),
      );
      return out.Item ? unmarshall(out.Item) : undefined;
    });
    expect(record).toMatchObject({ agentId, publicHost: TASK_PUBLIC_IP });

    const r = await register(agent, "cam-discovered");
    expect(r.status).toBe(200);
    expect(r.whichCommand).toBe(COMMANDS.register.command);
    expect(childText(r.params, reply.alarmServerIp)).toBe(TASK_PUBLIC_IP);
    expect(childText(r.params, reply.pictureServer)).toBe(TASK_PUBLIC_IP);
    expect(childText(r.params, reply.ntpServerIp)).toBe("192.0.2.123");

    expect(await health(agent)).toMatchObject({
      ok: true,
      publicHost: {
        discovery: "ecs",
        host: TASK_PUBLIC_IP,
        source: "discovered",
        configuredHost: NLB,
        networkInterfaceId: "eni-0f7db0ba0bd7bd2ab",
      },
    });
  });
});
