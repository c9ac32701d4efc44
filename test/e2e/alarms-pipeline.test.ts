import { createHash, randomBytes } from "node:crypto";
import { PutObjectCommand } from "@aws-sdk/client-s3";
import { GetQueueAttributesCommand, SendMessageBatchCommand } from "@aws-sdk/client-sqs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLocalPlatform, type LocalPlatform } from "../../bin/local-platform.ts";
import { createLogger } from "../../edge-agent/log.ts";
import type { AlarmQueueMessage } from "../../lib/contracts/alarms.ts";
import { mediaObjectKey } from "../../lib/contracts/storage.ts";
import { eventually, uniquePrefix } from "../helpers/local-backends.ts";

/**
 * The cloud half of alarms end to end, as `npm start` composes it: alarm and upload events on the
 * real alarm-events queue (as the agent sends them), the local event source and the alarms
 * function, its deadline sweep on its timer, and the HTTP API with presigned URLs fetched from
 * the local S3. 100 alarms over 10 devices with 0–3 pictures and 0–1 video each, every upload
 * delivered before or after its alarm (shuffled), some twice, some never, a tenth of all messages
 * redelivered, and two poison messages that must end in the DLQ. Every alarm must end in the
 * right state, listed once, and every attached object must come back byte-identical through its
 * URL. `EHOME_E2E_ALARMS=1000` runs the issue's size; with devices, see alarms.test.ts.
 */

/** `EHOME_E2E_ALARMS=1000` runs the issue's full size (about a minute on 2 cores). */
const ALARMS = Number(process.env.EHOME_E2E_ALARMS ?? 100);
const DEVICES = 10;
const DEADLINE_S = 3;

let platform: LocalPlatform;
let token: string;
const bytesByKey = new Map<string, Buffer>();

beforeAll(async () => {
  token = randomBytes(12).toString("hex");
  platform = createLocalPlatform(
    {
      // 1 s visibility: a poison message reaches the DLQ after maxReceiveCount (5) receives in
      // seconds; correct records are idempotent, so an early redelivery changes nothing.
      backends: { prefix: uniquePrefix("e2e-alarms"), visibilityTimeoutSeconds: 1 },
      api: { port: 0, host: "127.0.0.1", token },
      agent: false,
      // The poison messages below are logged as errors by design: keep the functions quiet.
      env: { ALARM_MEDIA_DEADLINE_SECONDS: String(DEADLINE_S), AWS_LAMBDA_LOG_LEVEL: "silent" },
      alarmSweepIntervalMs: 250,
    },
    { log: createLogger({ level: "silent", bindings: { test: "e2e-alarms" } }) },
  );
  await platform.start();
  if (!platform.api || !platform.backends) {
    throw new Error(`platform did not start: ${platform.missing.join("; ")}`);
  }
}, 60_000);
afterAll(() => platform?.close("tests done"));

// biome-ignore lint/suspicious/noExplicitAny: response JSON is navigated freely; assertions check it
type Json = any;
async function api(path: string): Promise<Json> {
  const res = await fetch(`${platform.api!.url}${path}`, {
    headers: { authorization: `Bearer ${token}` },
  });
  expect(res.status, path).toBe(200);
  return res.json();
}

/** A deterministic generator, so a failure can be replayed. */
function prng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

interface Plan {
  deviceId: string;
  sequence: number;
  alarmTime: string;
  picIds: string[];
  videoIds: string[];
  /** Ids that are never uploaded. */
  lost: Set<string>;
}

describe("alarms through the alarm-events queue, the alarms function and the API", () => {
  it(
    "100 alarms with mixed media, shuffled and partly redelivered: right final states, each listed once, objects byte-identical through presigned URLs",
    async () => {
      const b = platform.backends!;
      const random = prng(20261124);
      const messages: AlarmQueueMessage[] = [];
      const plans: Plan[] = [];
      const now = new Date();
      let eventNo = 0;
      const envelope = (deviceId: string) => ({
        eventId: `ev-${++eventNo}`,
        agentId: "agent-e2e",
        deviceId,
      });

      for (let i = 0; i < ALARMS; i++) {
        const deviceId = `cam-${i % DEVICES}`;
        const picIds = Array.from({ length: Math.floor(random() * 4) }, (_, k) => `P${i}-${k}`);
        const videoIds = random() < 0.4 ? [`V${i}`] : [];
        const plan: Plan = {
          deviceId,
          sequence: 1000 + i,
          alarmTime: `2026-11-24 06:${String(Math.floor(i / 60)).padStart(2, "0")}:${String(i % 60).padStart(2, "0")}`,
          picIds,
          videoIds,
          lost: new Set(),
        };
        plans.push(plan);
        messages.push({
          ...envelope(deviceId),
          type: "alarm",
          sequence: plan.sequence,
          receivedAt: now.toISOString(),
          alarmType: i % 5 === 0 ? 3 : 1,
          alarmAction: "start",
          videoChannel: 1,
          alarmTime: plan.alarmTime,
          picIds,
          videoIds,
          retransmitted: false,
        });
        for (const [kind, id] of [
          ...picIds.map((id) => ["picture", id] as const),
          ...videoIds.map((id) => ["video", id] as const),
        ]) {
          const fate = random();
          if (fate < 0.12) {
            plan.lost.add(id);
            continue;
          }
          const key = mediaObjectKey(kind, deviceId, id, now);
          const body = randomBytes(256 + Math.floor(random() * 2048));
          if (kind === "picture") body.set([0xff, 0xd8, 0xff], 0);
          bytesByKey.set(key, body);
          await b.clients.s3.send(
            new PutObjectCommand({ Bucket: b.resources.bucket, Key: key, Body: body }),
          );
          const upload = {
            ...envelope(deviceId),
            type: "media-uploaded" as const,
            bucket: b.resources.bucket,
            key,
            size: body.length,
            contentType: kind === "picture" ? "image/jpeg" : "video/mp2p",
            sha256: createHash("sha256").update(body).digest("hex"),
            uploadedAt: now.toISOString(),
          };
          const message: AlarmQueueMessage =
            kind === "picture"
              ? { ...upload, kind: "picture", picId: id }
              : { ...upload, kind: "video", videoId: id };
          messages.push(message);
          // Uploaded twice by the device: a second event for the same object.
          if (fate > 0.85) messages.push({ ...message, eventId: `ev-${++eventNo}` });
        }
      }
      // SQS redelivery: a tenth of all messages arrive again, identical.
      const redelivered = messages.filter(() => random() < 0.1);
      const all = [...messages, ...redelivered];
      for (let i = all.length - 1; i > 0; i--) {
        const j = Math.floor(random() * (i + 1));
        [all[i], all[j]] = [all[j]!, all[i]!];
      }
      const startedAt = performance.now();
      const queueUrl = b.resources.queues.alarmEvents.url;
      // Poison among them: not JSON, and JSON that is no alarm-events message.
      await b.clients.sqs.send(
        new SendMessageBatchCommand({
          QueueUrl: queueUrl,
          Entries: [
            { Id: "bad-json", MessageBody: "{not json" },
            { Id: "bad-shape", MessageBody: JSON.stringify({ type: "alarm", deviceId: "x" }) },
          ],
        }),
      );
      for (let i = 0; i < all.length; i += 10) {
        await b.clients.sqs.send(
          new SendMessageBatchCommand({
            QueueUrl: queueUrl,
            Entries: all
              .slice(i, i + 10)
              .map((m, k) => ({ Id: String(k), MessageBody: JSON.stringify(m) })),
          }),
        );
      }

      // Every alarm listed and none still open (those with lost media pass their 3 s deadline).
      const listAll = async (query: string): Promise<Json[]> => {
        const items: Json[] = [];
        let cursor: string | undefined;
        do {
          const page = await api(
            `/alarms?limit=100${query}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`,
          );
          items.push(...page.items);
          cursor = page.nextCursor;
        } while (cursor);
        return items;
      };
      const listed = await eventually(
        async () => {
          const items = await listAll("");
          const settled =
            items.length === ALARMS &&
            items.every((a) =>
              a.state === "partial"
                ? true
                : a.state === "complete" && a.missing.picIds.length === 0,
            );
          // Complete alarms must have every upload attached; wait until the queue is drained.
          const pending = plans.filter((plan) => {
            const item = items.find(
              (a) => a.deviceId === plan.deviceId && a.sequence === plan.sequence,
            );
            return plan.lost.size === 0 && item?.state !== "complete";
          });
          return settled && pending.length === 0 ? items : undefined;
        },
        { timeoutMs: 30_000 + ALARMS * 100, intervalMs: 250 },
      );
      const settledMs = Math.round(performance.now() - startedAt);

      expect(new Set(listed.map((a) => a.alarmId)).size).toBe(ALARMS);
      // The state filter agrees with the details below.
      const partials = await listAll("&state=partial");
      expect(partials).toHaveLength(plans.filter((p) => p.lost.size > 0).length);

      let fetched = 0;
      for (const plan of plans) {
        const summary = listed.find(
          (a) => a.deviceId === plan.deviceId && a.sequence === plan.sequence,
        );
        const alarm = await api(`/alarms/${summary.alarmId}`);
        const label = `${plan.deviceId}#${plan.sequence}`;
        expect(alarm.state, label).toBe(plan.lost.size > 0 ? "partial" : "complete");
        expect(alarm.missing, label).toEqual({
          picIds: plan.picIds.filter((id) => plan.lost.has(id)),
          videoIds: plan.videoIds.filter((id) => plan.lost.has(id)),
        });
        for (const media of [...alarm.pictures, ...alarm.videos]) {
          if (!media.attached) continue;
          const res = await fetch(media.url);
          expect(res.status).toBe(200);
          const body = Buffer.from(await res.arrayBuffer());
          expect(body.equals(bytesByKey.get(media.key)!), media.key).toBe(true);
          fetched++;
        }
      }
      expect(fetched).toBe([...bytesByKey.keys()].length);
      // The two poison messages stopped retrying in the DLQ; nothing else is there.
      const dlq = b.resources.queues.alarmEvents.deadLetter.url;
      const inDlq = await eventually(
        async () => {
          const out = await b.clients.sqs.send(
            new GetQueueAttributesCommand({
              QueueUrl: dlq,
              AttributeNames: ["ApproximateNumberOfMessages"],
            }),
          );
          const n = Number(out.Attributes?.ApproximateNumberOfMessages ?? 0);
          return n >= 2 ? n : undefined;
        },
        { timeoutMs: 30_000, intervalMs: 250 },
      );
      expect(inDlq).toBe(2);
      console.log(
        JSON.stringify({
          bench: "alarms-pipeline",
          alarms: ALARMS,
          messages: all.length,
          redelivered: redelivered.length,
          objects: fetched,
          partial: partials.length,
          settledMs,
          deadlineSeconds: DEADLINE_S,
        }),
      );
    },
    90_000 + ALARMS * 300,
  );
});
