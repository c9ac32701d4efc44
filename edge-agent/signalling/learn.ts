import type { DeviceEventInput } from "../../lib/contracts/events.ts";
import type { Logger } from "../log.ts";
import type { AgentMetrics } from "../metrics.ts";
import { CONFIG_CMD } from "./catalogue.ts";
import type { CommandSender } from "./command-sender.ts";
import { parseServerInfo, parseWorkStatus } from "./device-status.ts";
import { type DeviceInfo, type DeviceSession, ownString, type SessionStore } from "./sessions.ts";

/**
 * After a registration the agent learns the device, as FE does (ehome-2.0 §2.1, B):
 * `GETDEVICECONFIG`/`GetServerInfo` (serial, channel counts, §2.3), then `GETDEVICEWORKSTATUS`
 * (channels, §2.4). The result is kept on the session and emitted as a `device-info` event.
 *
 * At most `concurrency` devices are learned at once, so a registration storm (an agent restart
 * with 100k devices re-registering) does not put 200k requests in flight; the rest wait in a
 * queue holding only session references.
 */

export interface Learner {
  learn(session: DeviceSession): void;
  /** Queued and in-flight learns. */
  readonly backlog: number;
  close(): void;
}

export interface LearnerDeps {
  sender: CommandSender;
  sessions: Pick<SessionStore, "get">;
  emit(event: DeviceEventInput): void;
  metrics: AgentMetrics;
  log: Logger;
  now(): number;
}

export function createLearner(options: { concurrency: number }, deps: LearnerDeps): Learner {
  const queue: DeviceSession[] = [];
  let head = 0;
  let active = 0;
  let closed = false;

  const current = (s: DeviceSession) => !closed && deps.sessions.get(s.deviceId) === s;

  async function learnOne(session: DeviceSession): Promise<void> {
    const id = session.deviceId;
    const info: DeviceInfo = { learnedAt: 0 };
    let learned = false;
    const serverInfo = await deps.sender.send(id, "getDeviceConfig", {
      configCmd: CONFIG_CMD.getServerInfo,
      configParam1: 0,
      configParam2: 0,
      configParam3: 0,
      configParam4: 0,
    });
    if (!current(session)) return;
    if (serverInfo.kind === "ok") {
      const si = parseServerInfo(serverInfo.params, session.view);
      if (si) {
        learned = true;
        if (si.serialNumber !== undefined)
          info.serialNumber = ownString(si.serialNumber.slice(0, 64));
        if (si.channelCount !== undefined) info.channelCount = si.channelCount;
        if (si.alarmInCount !== undefined) info.alarmInCount = si.alarmInCount;
        if (si.alarmOutCount !== undefined) info.alarmOutCount = si.alarmOutCount;
        if (si.diskCount !== undefined) info.diskCount = si.diskCount;
      }
    }
    const status = await deps.sender.send(id, "getWorkStatus", {});
    if (!current(session)) return;
    if (status.kind === "ok") {
      const ws = parseWorkStatus(status.params, session.view);
      if (ws) {
        learned = true;
        info.channels = ws.channels;
      }
    }
    if (!learned) {
      deps.metrics.c.learn_failures++;
      return;
    }
    info.learnedAt = deps.now();
    session.info = info;
    deps.emit({
      type: "device-info",
      deviceId: id,
      serialNumber: info.serialNumber,
      channelCount: info.channelCount,
      alarmInCount: info.alarmInCount,
      alarmOutCount: info.alarmOutCount,
      diskCount: info.diskCount,
      channels: info.channels?.map((ch) => ({
        channel: ch.channel,
        recording: ch.recording,
        signalLost: ch.signalLost,
        online: ch.online,
      })),
    });
  }

  const pump = (): void => {
    while (!closed && active < options.concurrency && head < queue.length) {
      const session = queue[head++]!;
      if (head > 1024 && head * 2 > queue.length) {
        queue.splice(0, head);
        head = 0;
      }
      if (!current(session)) continue;
      active++;
      learnOne(session)
        .catch((err: unknown) => {
          deps.metrics.c.learn_failures++;
          deps.log.warn("learning a device failed", { deviceId: session.deviceId, err });
        })
        .finally(() => {
          active--;
          pump();
        });
    }
  };

  return {
    learn(session) {
      if (closed) return;
      queue.push(session);
      pump();
    },
    get backlog() {
      return queue.length - head + active;
    },
    close() {
      closed = true;
      queue.length = 0;
      head = 0;
    },
  };
}
