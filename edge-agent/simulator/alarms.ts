import { ALARM_TYPES } from "../../lib/contracts/alarms.ts";
import type { CommandEntry } from "../signalling/catalogue.ts";
import { buildFields, type ResponseMessage, type XmlElement } from "../signalling/codec/index.ts";
import type { DeviceEnv, DevicePort } from "./device-env.ts";
import { fakeVideo, SNAPSHOT_JPEG } from "./media-files.ts";
import type { UploadOrder } from "./options.ts";
import { randomInt } from "./random.ts";
import type { TaskHandle } from "./scheduler.ts";
import { type StoredPictureFile, storedPictureBytes } from "./stored-pictures.ts";
import { type UploadTarget, uploadMedia } from "./uploader.ts";

/**
 * Alarms of one device with their pictures and videos (ehome-2.0 §5.1, §8 ALARM and upload rows),
 * and the picture a MANUALSNAP asks for. An ALARM names its media (`PicID`, `VideoId`); the files
 * go to the picture server before the alarm, after it, twice, or never (`uploadOrder`), possibly
 * late (`uploadDelayMs`) or lost (`uploadFailRate`). An ALARM not answered `200` (no answer, or a
 * refusal such as 403) is resent with the same Sequence and RetransFlag 1 until it is. Alarms go to `AlarmServerIP`:`AlarmServerPort` of the
 * REGISTER reply (the signalling port when none is announced; the agent accepts both, §8).
 */

/** One alarm to raise (library API: `device.raiseAlarm(spec)`); every field has a default. */
export interface AlarmSpec {
  /** `AlarmType` (ehome-2.0 §5.1 numbers). Default: one of the §5.1 types at random. */
  alarmType?: number;
  action?: "start" | "stop";
  /** `VideoChannel`. Default: a random channel of the device. */
  channel?: number;
  /** Default `alarmPictures` (0 for a stop). */
  pictures?: number;
  /** Default `alarmVideos` (0 for a stop). */
  videos?: number;
  /** Default `uploadOrder`. */
  order?: UploadOrder;
}

/** What a raised alarm announced. */
export interface RaisedAlarm {
  sequence: number;
  alarmType: number;
  action: "start" | "stop";
  channel: number;
  alarmTime: string;
  picIds: string[];
  videoIds: string[];
  order: Exclude<UploadOrder, "mixed">;
}

/** What the raiser uses of its device. */
export interface AlarmDevicePort extends DevicePort {
  readonly id: string;
  readonly channelCount: number;
  readonly localAddress: { address: string };
  deviceTime(): string;
  timeDiff(): { hours: number; minutes: number };
  /** `PictureServer`:`PictureServerPort` of the REGISTER reply; undefined before it. */
  pictureServer(): UploadTarget | undefined;
  /** Sends an ALARM request: to the alarm port of the REGISTER reply, else the signalling port. */
  sendAlarm(entry: CommandEntry, sequence: number, params: XmlElement): void;
  online(): boolean;
}

const TYPES = Object.values(ALARM_TYPES);
const ORDERS = ["after", "before", "twice", "never"] as const;

interface Pending {
  params: XmlElement;
  timer: TaskHandle | null;
}

export class AlarmRaiser {
  private readonly pending = new Map<number, Pending>();
  private readonly tasks = new Set<TaskHandle>();
  private timer: TaskHandle | null = null;
  private closed = false;

  constructor(
    private readonly env: DeviceEnv,
    private readonly device: AlarmDevicePort,
  ) {}

  private get periodMs(): number {
    return this.env.options.alarmEverySeconds * 1000;
  }

  /** Device online: periodic alarms (the first somewhere in the first period); resends resume. */
  start(): void {
    this.stop();
    if (this.periodMs > 0) {
      this.timer = this.env.scheduler.after(this.periodMs * this.env.random(), () => this.tick());
    }
    for (const [sequence, p] of this.pending) this.scheduleResend(sequence, p);
  }

  /** Device offline or silent: timers stop; unanswered alarms are kept for later. */
  stop(): void {
    this.timer?.cancel();
    this.timer = null;
    for (const p of this.pending.values()) {
      p.timer?.cancel();
      p.timer = null;
    }
  }

  /** Device rebooted: unanswered alarms are lost with its memory; scheduled uploads too. */
  reset(): void {
    this.stop();
    this.pending.clear();
    for (const t of this.tasks) t.cancel();
    this.tasks.clear();
  }

  close(): void {
    this.reset();
    this.closed = true;
  }

  /** True when the response answered a pending alarm. */
  onResponse(m: ResponseMessage): boolean {
    const alarm = this.env.view.commands.alarm;
    const p = this.pending.get(m.header.sequence);
    if (!p || m.whichCommand.toUpperCase() !== alarm.command.toUpperCase()) return false;
    if (m.status !== 200) {
      // Not stored (e.g. 403: the agent holds no session and asks for a REGISTER): the alarm
      // stays pending and its resends go on, after the re-registration they lead to.
      this.device.count("alarmsRefused");
      return true;
    }
    p.timer?.cancel();
    this.pending.delete(m.header.sequence);
    this.device.count("alarmsAnswered");
    return true;
  }

  /** Raises one alarm now (uploads per its order). */
  raise(spec: AlarmSpec = {}): RaisedAlarm {
    const o = this.env.options;
    const random = this.env.random;
    const action = spec.action ?? "start";
    const sequence = this.device.nextSequence();
    const pictures = spec.pictures ?? (action === "start" ? o.alarmPictures : 0);
    const videos = spec.videos ?? (action === "start" ? o.alarmVideos : 0);
    const wanted = spec.order ?? o.uploadOrder;
    const order = wanted === "mixed" ? ORDERS[randomInt(random, 0, ORDERS.length - 1)]! : wanted;
    const id = this.device.id;
    const alarm: RaisedAlarm = {
      sequence,
      alarmType: spec.alarmType ?? TYPES[randomInt(random, 0, TYPES.length - 1)]!,
      action,
      channel: spec.channel ?? randomInt(random, 1, this.device.channelCount),
      alarmTime: this.device.deviceTime(),
      picIds: Array.from({ length: pictures }, (_, i) => `${id}-a${sequence}-p${i + 1}`),
      videoIds: Array.from({ length: videos }, (_, i) => `${id}-a${sequence}-v${i + 1}`),
      order,
    };
    const send = () => this.send(alarm);
    const uploads = () => this.uploadAll(alarm, order === "twice" ? 2 : 1);
    if (order === "never") {
      this.device.count("uploadsSkipped", pictures + videos);
      send();
    } else if (order === "before") {
      void uploads().then(() => this.later(o.uploadDelayMs, send));
    } else {
      send();
      this.later(o.uploadDelayMs, () => void uploads());
    }
    if (action === "start" && o.alarmStopAfterMs > 0) {
      this.later(o.alarmStopAfterMs, () => {
        if (this.device.online()) {
          this.raise({
            alarmType: alarm.alarmType,
            action: "stop",
            channel: alarm.channel,
            pictures: 0,
            videos: 0,
          });
        }
      });
    }
    return alarm;
  }

  /** MANUALSNAP answered 200: the picture goes to the picture server named `picId` (§8). */
  snapshot(channel: number, picId: string): void {
    this.device.count("snapshots");
    this.later(this.env.options.uploadDelayMs, () => {
      void this.uploadOne("picture", picId, channel, this.device.deviceTime());
    });
  }

  /** UPLOADPIC answered 200: the stored file goes to the picture server named `picId` (§8). */
  uploadStored(file: StoredPictureFile, picId: string): void {
    this.device.count("storedPicturesUploaded");
    this.later(this.env.options.uploadDelayMs, () => {
      void this.uploadOne("picture", picId, file.channel, file.time, storedPictureBytes(file));
    });
  }

  private tick(): void {
    this.timer = this.env.scheduler.after(this.periodMs, () => this.tick());
    if (this.device.online()) this.raise();
  }

  private send(alarm: RaisedAlarm): void {
    if (this.closed) return;
    const c = this.env.view.commands.alarm;
    const diff = this.device.timeDiff();
    const params = buildFields(c.params, {
      deviceId: this.device.id,
      alarmType: alarm.alarmType,
      alarmAction: alarm.action === "stop" ? 1 : 0,
      videoChannel: alarm.channel,
      alarmInChannel: 1,
      diskNumber: 0,
      alarmTime: alarm.alarmTime,
      timeDiffH: diff.hours,
      timeDiffM: diff.minutes,
      remark: "simulated",
      retransFlag: 0,
      picId: alarm.picIds,
      videoId: alarm.videoIds,
    });
    const p: Pending = { params, timer: null };
    this.pending.set(alarm.sequence, p);
    this.device.count("alarmsSent");
    this.device.sendAlarm(c, alarm.sequence, params);
    this.scheduleResend(alarm.sequence, p);
  }

  private scheduleResend(sequence: number, p: Pending): void {
    p.timer?.cancel();
    p.timer = this.env.scheduler.after(this.env.options.alarmRetryMs, () => {
      p.timer = null;
      if (!this.pending.has(sequence) || !this.device.online()) return;
      const c = this.env.view.commands.alarm;
      p.params[c.params.retransFlag!] = "1";
      this.device.count("alarmsResent");
      this.device.sendAlarm(c, sequence, p.params);
      this.scheduleResend(sequence, p);
    });
  }

  private async uploadAll(alarm: RaisedAlarm, times: number): Promise<void> {
    const jobs: Promise<void>[] = [];
    for (let t = 0; t < times; t++) {
      for (const id of alarm.picIds) {
        jobs.push(this.uploadOne("picture", id, alarm.channel, alarm.alarmTime));
      }
      for (const id of alarm.videoIds) {
        jobs.push(this.uploadOne("video", id, alarm.channel, alarm.alarmTime));
      }
      await Promise.all(jobs.splice(0));
    }
  }

  private async uploadOne(
    kind: "picture" | "video",
    mediaId: string,
    channel: number,
    time: string,
    picture: Uint8Array = SNAPSHOT_JPEG,
  ): Promise<void> {
    if (this.closed) return;
    const o = this.env.options;
    if (o.uploadFailRate > 0 && this.env.random() < o.uploadFailRate) {
      this.device.count("uploadsSkipped");
      return;
    }
    const target = this.device.pictureServer();
    if (!target) {
      this.device.count("uploadsFailed");
      return;
    }
    this.device.count("uploadsSent");
    const body = kind === "picture" ? picture : fakeVideo(o.videoBytes, mediaId.length + channel);
    const status = await uploadMedia(target, {
      kind,
      deviceId: this.device.id,
      mediaId,
      channel,
      time,
      body,
      localAddress: this.device.localAddress.address,
    });
    this.device.count(status === 200 ? "uploadsOk" : "uploadsFailed");
  }

  private later(ms: number, fn: () => void): void {
    if (this.closed) return;
    if (ms <= 0) {
      fn();
      return;
    }
    const task = this.env.scheduler.after(ms, () => {
      this.tasks.delete(task);
      fn();
    });
    this.tasks.add(task);
  }
}
