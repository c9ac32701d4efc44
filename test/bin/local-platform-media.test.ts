import { SendMessageCommand } from "@aws-sdk/client-sqs";
import { PutCommand } from "@aws-sdk/lib-dynamodb";
import { describe, expect, it } from "vitest";
import type { StreamItem } from "../../functions/api/streams-repository.ts";
import { awsClientConfigFromEnv, createDocumentClient } from "../../functions/shared/clients.ts";
import type { AgentRecord } from "../../lib/contracts/agent-messages.ts";
import { ENV } from "../../lib/contracts/env.ts";
import type { StreamEvent } from "../../lib/contracts/media.ts";
import { parseFirmwareTokenKey } from "../../lib/contracts/upgrades.ts";
import { eventually, usePlatform } from "../e2e/helpers/platform.ts";

/**
 * The media part of the platform `npm start` runs (bin/local-platform.ts): a stream token key per
 * start for the api (and the agent), the media routes served, and the media function polling the
 * media-events queue.
 */
const p = usePlatform({ agentEnv: false });

describe("media on the npm start platform", () => {
  it("generates a STREAM_TOKEN_KEY per start, distinct from the firmware key", () => {
    const { env } = p().platform;
    const key = parseFirmwareTokenKey(env[ENV.STREAM_TOKEN_KEY]!);
    expect(key.length).toBeGreaterThanOrEqual(32);
    expect(env[ENV.STREAM_TOKEN_KEY]).not.toBe(env[ENV.FIRMWARE_TOKEN_KEY]);
    expect(env[ENV.STREAMS_TABLE]).toBeDefined();
    expect(env[ENV.MEDIA_EVENTS_QUEUE_URL]).toBeDefined();
    // An agent process started with it beside the in-process agent takes a free viewer port.
    expect(env[ENV.EHOME_VIEWER_PORT]).toBe("0");
  });

  it("serves the media routes, and the media function applies events from the queue", async () => {
    const { backends, platform } = p();
    const doc = await p().api<{ paths: Record<string, unknown> }>("GET", "/openapi.json");
    expect(Object.keys(doc.body.paths)).toEqual(
      expect.arrayContaining(["/devices/{deviceId}/streams", "/streams/{streamId}"]),
    );

    // A stream as the api writes it, then an event as the agent sends it.
    const now = new Date().toISOString();
    const streamId = "st-platform-1";
    const item: StreamItem = {
      streamId,
      deviceId: "cam-p",
      agentId: "agent-p",
      kind: "download",
      spec: { streamId, kind: "download", channel: 1, file: "f1", transport: "tcp" },
      state: "starting",
      counters: { viewers: 0, bytesIn: 0, bytesOut: 0, bitrateBps: 0, viewersDropped: 0 },
      seq: -1,
      createdAt: now,
      updatedAt: now,
      tokenExpiresAt: Math.floor(Date.now() / 1000) + 3600,
      expiresAt: Math.floor(Date.now() / 1000) + 86_400,
    };
    const documentClient = createDocumentClient(awsClientConfigFromEnv(platform.env));
    try {
      await documentClient.send(
        new PutCommand({ TableName: platform.env[ENV.STREAMS_TABLE]!, Item: item }),
      );
      // Its agent is alive (else the api's read repair fails the stream: AGENT_LOST).
      const agent: AgentRecord = {
        agentId: "agent-p",
        commandQueueUrl: "http://127.0.0.1:1/queue/ehome-agent-cmd-agent-p",
        publicHost: "127.0.0.1",
        startedAt: now,
        heartbeatAt: now,
        expiresAt: Math.floor(Date.now() / 1000) + 300,
      };
      await documentClient.send(
        new PutCommand({ TableName: platform.env[ENV.AGENTS_TABLE]!, Item: agent }),
      );
    } finally {
      documentClient.destroy();
    }
    const event: StreamEvent = {
      type: "stream-state",
      streamId,
      deviceId: "cam-p",
      agentId: "agent-p",
      seq: 1,
      state: "active",
      counters: { viewers: 0, bytesIn: 777, bytesOut: 0, bitrateBps: 1000, viewersDropped: 0 },
      at: now,
    };
    await backends.clients.sqs.send(
      new SendMessageCommand({
        QueueUrl: platform.env[ENV.MEDIA_EVENTS_QUEUE_URL]!,
        MessageBody: JSON.stringify(event),
      }),
    );
    const progress = await eventually(
      async () => {
        const res = await p().api<{ state: string; bytesReceived: number }>(
          "GET",
          `/downloads/${streamId}`,
        );
        return res.body.state === "active" ? res.body : undefined;
      },
      { timeoutMs: 10_000 },
    );
    expect(progress.bytesReceived).toBe(777);
  });
});
