import { describe, expect, it } from "vitest";
import { CLOUD_ENV, cloudConfigFromEnv } from "../../../edge-agent/cloud/index.ts";
import { ConfigError, loadConfig } from "../../../edge-agent/config.ts";
import { ENV } from "../../../lib/contracts/env.ts";

const agent = { agentId: "agent-1", publicHost: "203.0.113.7" };
const full = {
  [ENV.DEVICE_EVENTS_QUEUE_URL]: "https://sqs.eu-west-1.amazonaws.com/1/DeviceEvents",
  [ENV.COMMAND_RESULTS_QUEUE_URL]: "https://sqs.eu-west-1.amazonaws.com/1/CommandResults",
  [ENV.AGENT_QUEUE_PREFIX]: "ehome-agent-cmd-",
  [ENV.DEVICES_TABLE]: "Data-Devices-1",
  [ENV.AGENTS_TABLE]: "Data-Agents-1",
};

describe("cloud adapter configuration from the environment", () => {
  it("is absent when no resource variable is set: the agent runs stand-alone", () => {
    expect(cloudConfigFromEnv({ AWS_REGION: "eu-west-1" }, agent)).toBeUndefined();
  });

  it("refuses a partial set, naming what is missing", () => {
    const { [ENV.AGENTS_TABLE]: _, [ENV.AGENT_QUEUE_PREFIX]: __, ...partial } = full;
    expect(() => cloudConfigFromEnv(partial, agent)).toThrow(ConfigError);
    expect(() => cloudConfigFromEnv(partial, agent)).toThrow(
      /AGENT_QUEUE_PREFIX, AGENTS_TABLE|AGENTS_TABLE, AGENT_QUEUE_PREFIX/,
    );
  });

  it("reads every resource from the contract's variables, and endpoints from the SDK's", () => {
    expect(CLOUD_ENV).toHaveLength(5);
    const config = cloudConfigFromEnv(
      {
        ...full,
        AWS_REGION: "eu-west-1",
        AWS_ENDPOINT_URL: "http://127.0.0.1:9000",
        AWS_ENDPOINT_URL_SQS: "http://127.0.0.1:4566",
      },
      agent,
    );
    expect(config).toEqual({
      ...agent,
      deviceEventsQueueUrl: full.DEVICE_EVENTS_QUEUE_URL,
      commandResultsQueueUrl: full.COMMAND_RESULTS_QUEUE_URL,
      agentQueuePrefix: "ehome-agent-cmd-",
      devicesTable: "Data-Devices-1",
      agentsTable: "Data-Agents-1",
      aws: {
        region: "eu-west-1",
        sqsEndpoint: "http://127.0.0.1:4566",
        dynamodbEndpoint: "http://127.0.0.1:9000",
        s3Endpoint: "http://127.0.0.1:9000",
      },
    });
  });

  it("adds the alarm-events queue and the media bucket when they are set (optional)", () => {
    const config = cloudConfigFromEnv(
      {
        ...full,
        ALARM_EVENTS_QUEUE_URL: "https://sqs.eu-west-1.amazonaws.com/1/AlarmEvents",
        MEDIA_BUCKET: "data-media-1",
        AWS_ENDPOINT_URL_S3: "http://127.0.0.1:4566",
      },
      agent,
    );
    expect(config).toMatchObject({
      alarmEventsQueueUrl: "https://sqs.eu-west-1.amazonaws.com/1/AlarmEvents",
      mediaBucket: "data-media-1",
      aws: { s3Endpoint: "http://127.0.0.1:4566" },
    });
  });

  it("carries the agent's outage buffering (EHOME_EVENT_BUFFER_MAX, EHOME_SPILL_*) to the sinks", () => {
    const agentConfig = loadConfig(
      {
        EHOME_AGENT_ID: "agent-1",
        EHOME_EVENT_BUFFER_MAX: "1048576",
        EHOME_SPILL_DIR: "/var/spool/ehome",
        EHOME_SPILL_MAX_BYTES: "5000000",
      },
      { hostname: "h", pid: 1 },
    );
    expect(cloudConfigFromEnv(full, agentConfig)?.buffer).toEqual({
      maxQueuedBytes: 1048576,
      spillDir: "/var/spool/ehome",
      spillMaxBytes: 5000000,
    });
    // Defaults: 16 MiB in memory, 1 GiB on disk under ./.ehome/spill.
    const defaults = loadConfig({}, { hostname: "h", pid: 1 });
    expect(cloudConfigFromEnv(full, defaults)?.buffer).toEqual({
      maxQueuedBytes: 16 * 1024 * 1024,
      spillDir: "./.ehome/spill",
      spillMaxBytes: 1024 * 1024 * 1024,
    });
  });
});
