import type { AlarmState } from "../alarms/items.ts";
import { effectiveAlarmState } from "../alarms/model.ts";
import type { Clock } from "../shared/clock.ts";
import { ApiError } from "../shared/errors.ts";
import { type AlarmView, alarmView } from "./alarm-views.ts";
import type { AlarmsReadRepository } from "./alarms-repository.ts";
import { decodeCursor, encodeCursor } from "./cursor.ts";
import type { MediaUrlSigner } from "./media-urls.ts";
import type { DevicesRepository } from "./ports.ts";

/**
 * Alarm listings and details. States are reported as of the read: an `open` alarm past its
 * deadline reads `partial` before the sweep writes it, and the `state` filter uses the same rule.
 */

export interface AlarmFilters {
  deviceId?: string;
  type?: number;
  state?: AlarmState;
  from?: string;
  to?: string;
  limit: number;
  cursor?: string;
}

export function createAlarmsService(deps: {
  alarms: AlarmsReadRepository;
  devices: DevicesRepository;
  mediaUrls: MediaUrlSigner;
  clock: Clock;
}) {
  async function list(filters: AlarmFilters): Promise<{ items: AlarmView[]; nextCursor?: string }> {
    const { deviceId, type, state, from, to, limit, cursor } = filters;
    const scope = `alarms:${JSON.stringify([deviceId ?? null, type ?? null, state ?? null, from ?? null, to ?? null])}`;
    const keyNames = ["alarmId", "receivedAt", deviceId === undefined ? "listShard" : "deviceId"];
    const startKey = cursor === undefined ? undefined : decodeCursor(scope, cursor, keyNames);
    const nowMs = deps.clock.now();
    const page = await deps.alarms.list({
      ...(deviceId === undefined ? {} : { deviceId }),
      ...(type === undefined ? {} : { alarmType: type }),
      ...(from === undefined ? {} : { from }),
      ...(to === undefined ? {} : { to }),
      limit,
      ...(startKey ? { startKey } : {}),
      ...(state === undefined
        ? {}
        : { keep: (item) => effectiveAlarmState(item, nowMs) === state }),
    });
    const items = await Promise.all(page.items.map((item) => alarmView(item, nowMs)));
    return page.lastKey ? { items, nextCursor: encodeCursor(scope, page.lastKey) } : { items };
  }

  return {
    list,

    async listForDevice(deviceId: string, filters: Omit<AlarmFilters, "deviceId">) {
      if (!(await deps.devices.get(deviceId))) {
        throw new ApiError("DEVICE_NOT_FOUND", `no device ${deviceId}`);
      }
      return list({ ...filters, deviceId });
    },

    async get(alarmId: string): Promise<AlarmView> {
      const item = await deps.alarms.get(alarmId);
      if (!item) throw new ApiError("ALARM_NOT_FOUND", `no alarm ${alarmId}`);
      return alarmView(item, deps.clock.now(), deps.mediaUrls);
    },
  };
}

export type AlarmsApiService = ReturnType<typeof createAlarmsService>;
