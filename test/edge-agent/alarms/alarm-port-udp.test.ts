import { CreateQueueCommand, ReceiveMessageCommand, SQSClient } from "@aws-sdk/client-sqs";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createEdgeAgent, type EdgeAgent } from "../../../edge-agent/agent.ts";
import { createAlarmParts } from "../../../edge-agent/alarms/index.ts";
import { createCloudAdapters } from "../../../edge-agent/cloud/index.ts";
import { loadConfig } from "../../../edge-agent/config.ts";
import { silentLogger } from "../../../edge-agent/log.ts";
import { COMMANDS } from "../../../edge-agent/signalling/catalogue.ts";
import { buildFields, childText } from "../../../edge-agent/signalling/codec/index.ts";
import { createUdpTransport } from "../../../edge-agent/signalling/server.ts";
import { AlarmQueueMessage } from "../../../lib/contracts/alarms.ts";
import { LOCAL_CREDENTIALS, LOCAL_REGION } from "../../../lib/local/clients.ts";
import { type LocalFauxqs, startFauxqs } from "../../../lib/local/fauxqs.ts";
import { eventually, uniquePrefix } from "../../helpers/local-backends.ts";
import { deviceRequestDatagram, registerDatagram } from "../helpers/devices.ts";
import { createUdpDevice, type UdpDevice } from "../helpers/udp-device.ts";

// ehome-2.0 §8 ALARM on its own UDP port (7332 by default), end to end through the alarm reporter
// and the alarm-events SQS sink into a real (fauxqs) queue.

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

const open: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const close of open.splice(0).reverse()) await close();
});

describe("alarm port over UDP → alarm-events queue", () => {
  it("announces the bound alarm port, answers ALARM there, and one AlarmEvent reaches the queue", async () => {
    const { QueueUrl } = await sqs.send(
      new CreateQueueCommand({ QueueName: uniquePrefix("alarms") }),
    );
    const cloud = createCloudAdapters(
      {
        agentId: "agent-udp",
        publicHost: "127.0.0.1",
        deviceEventsQueueUrl: QueueUrl!,
        commandResultsQueueUrl: QueueUrl!,
        agentQueuePrefix: "unused-",
        devicesTable: "unused",
        agentsTable: "unused",
        alarmEventsQueueUrl: QueueUrl!,
        events: { lingerMs: 10 },
      },
      { sqs: () => sqs },
    );
    open.push(() => cloud.close());
    const late: { agent?: EdgeAgent } = {};
    const parts = createAlarmParts(
      { agentId: "agent-udp", maxPictureBytes: 1024, maxVideoBytes: 1024 },
      { sink: cloud.alarmEvents!, sessions: () => late.agent?.sessions, log: silentLogger },
    );
    const config = loadConfig({
      EHOME_AGENT_ID: "agent-udp",
      EHOME_HOST: "127.0.0.1",
      EHOME_SIGNAL_PORT: "0",
      EHOME_ALARM_PORT: "0",
      EHOME_LEARN_DEVICES: "false",
    });
    const agent = createEdgeAgent(config, {
      transport: createUdpTransport({ host: "127.0.0.1", port: 0 }),
      alarmTransport: createUdpTransport({ host: "127.0.0.1", port: 0 }),
      events: { emit: () => {} },
      reports: parts.reports,
    });
    late.agent = agent;
    await agent.start();
    open.push(() => agent.close());
    const alarmPort = agent.alarmAddress()!.port;
    expect(alarmPort).toBeGreaterThan(0);

    const signalling: UdpDevice = await createUdpDevice(agent.signalAddress());
    open.push(() => signalling.close());
    signalling.send(registerDatagram({ deviceId: "cam-udp", sequence: 1 }));
    const reply = await signalling.next();
    expect(reply.kind).toBe("response");
    if (reply.kind !== "response") return;
    expect(childText(reply.params, COMMANDS.register.reply.alarmServerPort)).toBe(
      String(alarmPort),
    );

    const alarms: UdpDevice = await createUdpDevice({ host: "127.0.0.1", port: alarmPort });
    open.push(() => alarms.close());
    const bytes = deviceRequestDatagram(
      COMMANDS.alarm.command,
      77,
      buildFields(COMMANDS.alarm.params, {
        deviceId: "cam-udp",
        alarmType: 1,
        alarmTime: "2026-01-02 10:00:00",
        picId: ["p-1"],
        videoId: ["v-1"],
      }),
    );
    alarms.send(bytes);
    alarms.send(bytes); // a retransmission: answered again, recorded once
    for (let i = 0; i < 2; i++) {
      const answer = await alarms.next();
      expect(answer).toMatchObject({ kind: "response", status: 200 });
      expect(answer.header.sequence).toBe(77);
    }
    const body = await eventually(async () => {
      const out = await sqs.send(
        new ReceiveMessageCommand({ QueueUrl, WaitTimeSeconds: 1, MaxNumberOfMessages: 10 }),
      );
      return out.Messages?.[0]?.Body;
    });
    expect(AlarmQueueMessage.parse(JSON.parse(body))).toMatchObject({
      type: "alarm",
      deviceId: "cam-udp",
      sequence: 77,
      picIds: ["p-1"],
      videoIds: ["v-1"],
    });
    const again = await sqs.send(new ReceiveMessageCommand({ QueueUrl, WaitTimeSeconds: 0 }));
    expect(again.Messages ?? []).toHaveLength(0);
    expect(agent.metrics()).toMatchObject({ alarm_reports: 1, duplicates: 1 });
  });
});
