import { CreateQueueCommand, SQSClient } from "@aws-sdk/client-sqs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { agentRecord, createAgentHeartbeat } from "../../../edge-agent/cloud/agent-heartbeat.ts";
import type { DynamoSender } from "../../../edge-agent/cloud/aws.ts";
import { cloudConfigFromEnv, createCloudAdapters } from "../../../edge-agent/cloud/index.ts";
import { AgentRecord } from "../../../lib/contracts/agent-messages.ts";
import { ENV } from "../../../lib/contracts/env.ts";
import { StreamEvent } from "../../../lib/contracts/media.ts";
import { LOCAL_CREDENTIALS, LOCAL_REGION } from "../../../lib/local/clients.ts";
import { type LocalFauxqs, startFauxqs } from "../../../lib/local/fauxqs.ts";
import { uniquePrefix } from "../../helpers/local-backends.ts";
import { queueReader } from "./queue-reader.ts";

// Media (issue 4): StreamEvents to the media-events queue; the heartbeat tells the API the viewer
// port stream URLs point at.

let fauxqs: LocalFauxqs;
let sqs: SQSClient;

beforeAll(async () => {
  fauxqs = await startFauxqs();
  sqs = new SQSClient({
    region: LOCAL_REGION,
    credentials: LOCAL_CREDENTIALS,
    endpoint: fauxqs.endpoint,
  });
});

afterAll(async () => {
  sqs?.destroy();
  await fauxqs?.close();
});

const BASE_ENV = {
  [ENV.DEVICE_EVENTS_QUEUE_URL]: "http://q/device-events",
  [ENV.COMMAND_RESULTS_QUEUE_URL]: "http://q/command-results",
  [ENV.AGENT_QUEUE_PREFIX]: "ehome-agent-",
  [ENV.DEVICES_TABLE]: "devices",
  [ENV.AGENTS_TABLE]: "agents",
};

function event(streamId: string, seq: number, state: StreamEvent["state"]): StreamEvent {
  return {
    type: "stream-state",
    streamId,
    deviceId: "cam-1",
    agentId: "agent-m",
    seq,
    state,
    counters: { viewers: 1, bytesIn: 100 * seq, bytesOut: 0, bitrateBps: 0, viewersDropped: 0 },
    at: new Date(1_700_000_000_000 + seq).toISOString(),
  };
}

describe("media events and the viewer port", () => {
  it("MEDIA_EVENTS_QUEUE_URL is optional and read with the cloud variables", () => {
    const agent = { agentId: "agent-m", publicHost: "203.0.113.7" };
    expect(cloudConfigFromEnv(BASE_ENV, agent)?.mediaEventsQueueUrl).toBeUndefined();
    expect(
      cloudConfigFromEnv({ ...BASE_ENV, [ENV.MEDIA_EVENTS_QUEUE_URL]: " http://q/media " }, agent)
        ?.mediaEventsQueueUrl,
    ).toBe("http://q/media");
  });

  it("stream events reach the media-events queue in order, as the contract has them", async () => {
    const out = await sqs.send(new CreateQueueCommand({ QueueName: uniquePrefix("media-events") }));
    const queueUrl = out.QueueUrl!;
    const cloud = createCloudAdapters(
      {
        ...cloudConfigFromEnv(
          { ...BASE_ENV, [ENV.MEDIA_EVENTS_QUEUE_URL]: queueUrl },
          { agentId: "agent-m", publicHost: "127.0.0.1" },
        )!,
        events: { lingerMs: 10 },
      },
      { sqs, dynamodb: {} as DynamoSender },
    );
    expect(cloud.mediaEvents).toBeDefined();
    const sent = [
      event("s-1", 0, "starting"),
      event("s-1", 1, "active"),
      event("s-1", 2, "stopped"),
    ];
    for (const e of sent) cloud.mediaEvents!.emit(e);
    const reader = queueReader(sqs, queueUrl);
    const got = await reader.until((m) => (m.length >= 3 ? m : undefined));
    expect(got.map((m) => StreamEvent.parse(m))).toEqual(sent);
    expect(cloud.metrics().media_events_sent).toBe(3);
    await cloud.close();
  });

  it("the heartbeat record carries viewerPort when the agent serves viewers", async () => {
    const record = agentRecord(
      {
        agentId: "agent-m",
        commandQueueUrl: "https://sqs.eu-west-1.amazonaws.com/1/ehome-agent-agent-m",
        publicHost: "203.0.113.7",
        viewerPort: 8661,
        startedAt: 1_700_000_000_000,
      },
      1_700_000_010_000,
      30,
    );
    expect(AgentRecord.parse(record).viewerPort).toBe(8661);

    const puts: Array<Record<string, { N?: string; S?: string }>> = [];
    const dynamodb = {
      async send(command: { input: { Item?: Record<string, { N?: string; S?: string }> } }) {
        if (command.input.Item) puts.push(command.input.Item);
        return {};
      },
    } as unknown as DynamoSender;
    const hb = createAgentHeartbeat(
      { agentsTable: "agents", agentId: "agent-m", publicHost: "127.0.0.1", viewerPort: 18661 },
      { dynamodb: () => dynamodb },
    );
    await hb.start("https://sqs.eu-west-1.amazonaws.com/1/ehome-agent-agent-m");
    expect(puts[0]!.viewerPort).toEqual({ N: "18661" });
    // A port bound as 0 is known later: written at once, not an interval later.
    hb.setViewerPort(18662);
    await new Promise((r) => setTimeout(r, 20));
    expect(puts).toHaveLength(2);
    expect(puts[1]!.viewerPort).toEqual({ N: "18662" });
    hb.setViewerPort(18662); // unchanged: nothing written
    await new Promise((r) => setTimeout(r, 20));
    expect(puts).toHaveLength(2);
    await hb.close();
    const without = agentRecord(
      {
        agentId: "a",
        commandQueueUrl: "https://sqs.eu-west-1.amazonaws.com/1/q",
        publicHost: "h",
        startedAt: 0,
      },
      0,
      30,
    );
    expect("viewerPort" in without).toBe(false);
  });
});
