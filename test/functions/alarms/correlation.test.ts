import { GetCommand } from "@aws-sdk/lib-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAlarmsHandler } from "../../../functions/alarms/handler.ts";
import type { AlarmItem, CaptureItem } from "../../../functions/alarms/items.ts";
import { alarmIdFor, effectiveAlarmState, newCaptureId } from "../../../functions/alarms/model.ts";
import { createAlarmsRepository } from "../../../functions/alarms/repository.ts";
import {
  type AlarmsService,
  createAlarmsService,
  DEFAULT_ALARMS_CONFIG,
} from "../../../functions/alarms/service.ts";
import type { AlarmQueueMessage } from "../../../lib/contracts/alarms.ts";
import { alarmKey, captureKey } from "../../../lib/contracts/tables.ts";
import { useLocalBackends } from "../../helpers/local-backends.ts";
import {
  type FunctionClients,
  functionClients,
  offsetClock,
  silentLogger,
  sqsEvent,
} from "../support.ts";
import { alarmEvent, permutations, pictureEvent, videoEvent } from "./fixtures.ts";

const backends = useLocalBackends();
let clients: FunctionClients;
let service: AlarmsService;
let handler: ReturnType<typeof createAlarmsHandler>;
const clock = offsetClock();

beforeAll(() => {
  clients = functionClients(backends());
  const { tables } = backends().resources;
  const repository = createAlarmsRepository(
    {
      alarmsTable: tables.alarms,
      alarmMediaTable: tables.alarmMedia,
      capturesTable: tables.captures,
    },
    { documentClient: clients.documentClient },
  );
  service = createAlarmsService(DEFAULT_ALARMS_CONFIG, { repository, clock, logger: silentLogger });
  handler = createAlarmsHandler({ service, logger: silentLogger });
});
afterAll(() => clients?.close());

async function alarm(alarmId: string): Promise<AlarmItem | undefined> {
  const out = await clients.documentClient.send(
    new GetCommand({
      TableName: backends().resources.tables.alarms,
      Key: alarmKey(alarmId),
      ConsistentRead: true,
    }),
  );
  return out.Item as AlarmItem | undefined;
}

/** Delivers each message as its own SQS batch, in order; fails on any batch item failure. */
async function deliver(...messages: AlarmQueueMessage[]): Promise<void> {
  for (const message of messages) {
    const out = await handler.batch(sqsEvent(message));
    expect(out.batchItemFailures).toEqual([]);
  }
}

let deviceCounter = 0;
const newDevice = () => `cam-${process.pid}-${++deviceCounter}`;

describe("alarm records", () => {
  it("an alarm without media is complete at once, with its §5.1 fields kept", async () => {
    const deviceId = newDevice();
    const event = alarmEvent(deviceId, 7, {}, { alarmType: 3, remark: "door", timeDiffH: 8 });
    await deliver(event);
    const item = await alarm(alarmIdFor(deviceId, 7, event.alarmTime));
    expect(item).toMatchObject({
      deviceId,
      sequence: 7,
      alarmType: 3,
      remark: "door",
      timeDiffH: 8,
      state: "complete",
      picIds: [],
      videoIds: [],
    });
    expect(item?.openShard).toBeUndefined();
    expect(item?.missing).toBeUndefined();
  });

  it("the alarm id is derived from deviceId + Sequence + AlarmTime: a redelivery is one record", async () => {
    const deviceId = newDevice();
    const event = alarmEvent(deviceId, 1, { picIds: ["p1"] });
    await deliver(event, event, { ...event, eventId: "retransmitted-copy", retransmitted: true });
    const id = alarmIdFor(deviceId, 1, event.alarmTime);
    expect(id).toMatch(/^al-[0-9a-f]{32}$/);
    expect(alarmIdFor(deviceId, 2, event.alarmTime)).not.toBe(id);
    expect(alarmIdFor(deviceId, 1, "2026-11-24 06:00:01")).not.toBe(id);
    const item = await alarm(id);
    expect(item?.eventId).toBe(event.eventId);
    expect(item?.retransmitted).toBe(false);
    expect([...(item?.missing ?? [])]).toEqual(["p#p1"]);
  });
});

describe("correlation under every interleaving", () => {
  it("alarm, picture, video, a redelivered alarm and a second upload of the picture: all 120 orders end complete, each object attached once, first upload wins", async () => {
    const orders = permutations(["alarm", "pic", "video", "alarmAgain", "picAgain"] as const);
    expect(orders).toHaveLength(120);
    const runs = orders.map((order) => {
      const deviceId = newDevice();
      const a = alarmEvent(deviceId, 42, { picIds: ["P1"], videoIds: ["V1"] });
      const events = {
        alarm: a,
        alarmAgain: a,
        pic: pictureEvent(deviceId, "P1", `pictures/${deviceId}/first.jpg`),
        picAgain: pictureEvent(deviceId, "P1", `pictures/${deviceId}/second.jpg`),
        video: videoEvent(deviceId, "V1"),
      };
      return { order, deviceId, a, events };
    });
    // Devices are independent: run them side by side, each in its own order.
    for (let i = 0; i < runs.length; i += 20) {
      await Promise.all(
        runs.slice(i, i + 20).map((run) => deliver(...run.order.map((k) => run.events[k]))),
      );
    }
    for (const run of runs) {
      const item = await alarm(alarmIdFor(run.deviceId, 42, run.a.alarmTime));
      const firstPic =
        run.order.indexOf("pic") < run.order.indexOf("picAgain") ? "first" : "second";
      expect(item?.state, run.order.join(",")).toBe("complete");
      expect(item?.missing).toBeUndefined();
      expect(item?.openShard).toBeUndefined();
      expect(Object.keys(item?.media ?? {}).sort()).toEqual(["p#P1", "v#V1"]);
      expect(item?.media["p#P1"]?.key).toBe(`pictures/${run.deviceId}/${firstPic}.jpg`);
      expect(item?.media["v#V1"]?.key).toBe(run.events.video.key);
    }
  }, 60_000);

  it("concurrent deliveries of the same alarm and its media (no ordering at all) converge", async () => {
    const devices = Array.from({ length: 25 }, () => newDevice());
    await Promise.all(
      devices.map((deviceId) => {
        const a = alarmEvent(deviceId, 5, { picIds: ["a", "b"], videoIds: ["v"] });
        return Promise.all([
          service.applyAlarm(a),
          service.applyMedia(pictureEvent(deviceId, "b")),
          service.applyAlarm(a),
          service.applyMedia(pictureEvent(deviceId, "a")),
          service.applyMedia(videoEvent(deviceId, "v")),
          service.applyMedia(pictureEvent(deviceId, "a")),
        ]);
      }),
    );
    for (const deviceId of devices) {
      const item = await alarm(alarmIdFor(deviceId, 5, "2026-11-24 06:00:00"));
      expect(item?.state).toBe("complete");
      expect(Object.keys(item?.media ?? {}).sort()).toEqual(["p#a", "p#b", "v#v"]);
    }
  });

  it("media for two alarms of one device, and media no alarm names, stay apart", async () => {
    const deviceId = newDevice();
    const first = alarmEvent(deviceId, 1, { picIds: ["x"] });
    const second = alarmEvent(deviceId, 2, { picIds: ["x", "y"] });
    await deliver(pictureEvent(deviceId, "x"), first, pictureEvent(deviceId, "unrelated"), second);
    expect((await alarm(alarmIdFor(deviceId, 1, first.alarmTime)))?.state).toBe("complete");
    const other = await alarm(alarmIdFor(deviceId, 2, second.alarmTime));
    expect(other?.state).toBe("open");
    expect([...(other?.missing ?? [])]).toEqual(["p#y"]);
    // Another device's upload with the same PicID is not this device's picture.
    await deliver(pictureEvent(newDevice(), "y"));
    expect((await alarm(alarmIdFor(deviceId, 2, second.alarmTime)))?.state).toBe("open");
  });
});

describe("media deadline", () => {
  it("past the deadline an open alarm reads partial, the sweep writes partial with the missing ids, and the last item arriving late completes it", async () => {
    const deviceId = newDevice();
    const event = alarmEvent(deviceId, 9, { picIds: ["got", "lost"], videoIds: ["vid"] });
    await deliver(event, pictureEvent(deviceId, "got"));
    const id = alarmIdFor(deviceId, 9, event.alarmTime);
    const before = await alarm(id);
    expect(before?.state).toBe("open");
    expect(effectiveAlarmState(before!, clock.now())).toBe("open");
    expect(await service.sweep()).toMatchObject({ moved: 0 });

    clock.advance((DEFAULT_ALARMS_CONFIG.mediaDeadlineSeconds + 1) * 1000);
    expect(effectiveAlarmState(before!, clock.now())).toBe("partial");
    const swept = await service.sweep();
    expect(swept.moved).toBeGreaterThanOrEqual(1);
    const after = await alarm(id);
    expect(after?.state).toBe("partial");
    expect(after?.openShard).toBeUndefined();
    expect([...(after?.missing ?? [])].sort()).toEqual(["p#lost", "v#vid"]);
    // A second sweep finds nothing more to do for it.
    await service.sweep();
    expect((await alarm(id))?.partialAt).toBe(after?.partialAt);

    await deliver(videoEvent(deviceId, "vid"), pictureEvent(deviceId, "lost"));
    const late = await alarm(id);
    expect(late?.state).toBe("complete");
    expect(Object.keys(late?.media ?? {}).sort()).toEqual(["p#got", "p#lost", "v#vid"]);
  });
});

describe("queue semantics", () => {
  it("a poison record fails alone (to the DLQ after maxReceiveCount); the rest of the batch is applied", async () => {
    const deviceId = newDevice();
    const good = alarmEvent(deviceId, 3);
    const event = sqsEvent("not json", { type: "alarm", deviceId }, good);
    const out = await handler.batch(event);
    expect(out.batchItemFailures).toEqual([
      { itemIdentifier: event.Records[0]!.messageId },
      { itemIdentifier: event.Records[1]!.messageId },
    ]);
    expect((await alarm(alarmIdFor(deviceId, 3, good.alarmTime)))?.state).toBe("complete");
  });

  it("the scheduled event (anything but an SQS batch) runs the sweep", async () => {
    const result = await handler.handle({ source: "aws.events", "detail-type": "Scheduled Event" });
    expect(result).toHaveProperty("moved");
  });
});

describe("captures", () => {
  it("a picture whose PicID is a pending capture of the same device makes the capture ready", async () => {
    const deviceId = newDevice();
    const captureId = newCaptureId();
    const { tables } = backends().resources;
    const now = new Date().toISOString();
    const capture: CaptureItem = {
      captureId,
      deviceId,
      picId: captureId,
      channel: 1,
      state: "pending",
      createdAt: now,
      updatedAt: now,
      deadline: Date.now() + 60_000,
      expiresAt: Math.floor(Date.now() / 1000) + 3600,
    };
    const { PutCommand } = await import("@aws-sdk/lib-dynamodb");
    await clients.documentClient.send(
      new PutCommand({ TableName: tables.captures, Item: capture }),
    );
    // Another device naming the same PicID does not close it.
    await deliver(pictureEvent(newDevice(), captureId));
    const read = async () =>
      (
        await clients.documentClient.send(
          new GetCommand({ TableName: tables.captures, Key: captureKey(captureId) }),
        )
      ).Item as CaptureItem;
    expect((await read()).state).toBe("pending");
    const upload = pictureEvent(deviceId, captureId);
    await deliver(upload, upload);
    const ready = await read();
    expect(ready.state).toBe("ready");
    expect(ready.picture).toMatchObject({ key: upload.key, contentType: "image/jpeg" });
  });
});
