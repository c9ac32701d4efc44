import type { SendMessageBatchCommandOutput } from "@aws-sdk/client-sqs";
import { ENV } from "../../../lib/contracts/env.ts";
import type { PlatformFixture } from "./platform.ts";

/**
 * What SQS acknowledged on the alarm-events queue, recorded at the client (a middleware on the
 * backends' SQS client, which the platform's sinks use): the e2e fault tests count an alarm as
 * delivered only once SQS took it, and check each device's order of first deliveries.
 */
export interface AlarmDeliveries {
  /** In acknowledgement order, copies included. */
  readonly all: ReadonlyArray<{ deviceId: string; sequence: number }>;
  /** `deviceId#sequence` of everything acknowledged so far. */
  keys(): Set<string>;
  /** One device's sequences, first deliveries only, in acknowledgement order. */
  firsts(deviceId: string): number[];
}

export function recordAlarmDeliveries(fx: PlatformFixture, name: string): AlarmDeliveries {
  const queueUrl = fx.platform.env[ENV.ALARM_EVENTS_QUEUE_URL]!;
  const all: { deviceId: string; sequence: number }[] = [];
  fx.backends.clients.sqs.middlewareStack.add(
    (next, context) => async (args) => {
      const out = await next(args);
      const input = args.input as {
        QueueUrl?: string;
        Entries?: { Id?: string; MessageBody?: string }[];
      };
      if (context.commandName === "SendMessageBatchCommand" && input.QueueUrl === queueUrl) {
        const failed = new Set(
          ((out.output as SendMessageBatchCommandOutput).Failed ?? []).map((f) => f.Id),
        );
        for (const e of input.Entries ?? []) {
          if (failed.has(e.Id)) continue;
          const body = JSON.parse(e.MessageBody!) as {
            type: string;
            deviceId: string;
            sequence?: number;
          };
          if (body.type === "alarm")
            all.push({ deviceId: body.deviceId, sequence: body.sequence! });
        }
      }
      return out;
    },
    { step: "initialize", name, priority: "low" },
  );
  return {
    all,
    keys: () => new Set(all.map((d) => `${d.deviceId}#${d.sequence}`)),
    firsts(deviceId) {
      const out: number[] = [];
      for (const d of all) {
        if (d.deviceId === deviceId && !out.includes(d.sequence)) out.push(d.sequence);
      }
      return out;
    },
  };
}
