import type { CapabilitiesResult } from "../../lib/contracts/capabilities.ts";
import type { CommandRequest } from "../../lib/contracts/commands.ts";
import type { PassthroughParams } from "../../lib/contracts/passthrough.ts";
import type { Position } from "../../lib/contracts/positions.ts";
import type { PassthroughItem, PositionItem } from "../device-data/items.ts";
import type { Clock } from "../shared/clock.ts";
import { ApiError } from "../shared/errors.ts";
import type { DeviceItem } from "../shared/items.ts";
import type { CommandsService } from "./commands-service.ts";
import { decodeCursor, encodeCursor } from "./cursor.ts";
import type { DeviceDataAttributes, DeviceDataReadRepository } from "./device-data-repository.ts";
import type { DevicesRepository } from "./ports.ts";
import type { CommandView } from "./views.ts";

/**
 * GPS positions and tracks, passthrough both ways, and the capability cache (issue 8). Commands
 * (`passthrough`, `capabilities`) go through the commands service, so they are recorded, routed
 * to the device's agent and waited for exactly like `POST /devices/{id}/commands`.
 */

const LOW = "0000";
/** Above every `<ISO time>#<sequence>` key. */
const HIGH_SUFFIX = "#~";

export type PositionView = Position;

export interface TrackPage {
  deviceId: string;
  positions: PositionView[];
  nextCursor?: string;
}

export interface PassthroughView {
  receivedAt: string;
  sequence: number;
  channel?: number;
  data: string;
}

export interface CapabilitiesView {
  deviceId: string;
  capabilities: CapabilitiesResult | null;
  fetchedAt?: string;
  /** `cache`: from the device record; `device`: fetched by this request. */
  source: "cache" | "device" | "pending";
  commandId?: string;
}

function positionView(item: PositionItem | NonNullable<DeviceDataAttributes["position"]>) {
  const { deviceId: _d, at: _a, expiresAt: _e, ...rest } = item as PositionItem;
  return rest as PositionView;
}

const iso = (text: string) => new Date(text).toISOString();

export function createDeviceDataService(deps: {
  devices: DevicesRepository;
  data: DeviceDataReadRepository;
  commands: CommandsService;
  clock: Clock;
}) {
  const device = async (deviceId: string): Promise<DeviceItem & DeviceDataAttributes> => {
    const item = await deps.devices.get(deviceId);
    if (!item) throw new ApiError("DEVICE_NOT_FOUND", `no device ${deviceId}`);
    return item as DeviceItem & DeviceDataAttributes;
  };

  const range = (scope: string, from: string, to: string, limit: number, cursor?: string) => ({
    from,
    to,
    limit,
    ...(cursor ? { startKey: decodeCursor(scope, cursor, ["deviceId", "at"]) } : {}),
  });

  const storeCapabilities = async (deviceId: string, command: CommandView) => {
    const result = command.result as CapabilitiesResult;
    const at = command.completedAt ?? new Date(deps.clock.now()).toISOString();
    await deps.data.setCapabilities(deviceId, { result, at });
    return { result, at };
  };

  return {
    async position(deviceId: string): Promise<{ deviceId: string; position: PositionView | null }> {
      const item = await device(deviceId);
      return { deviceId, position: item.position ? positionView(item.position) : null };
    },

    async track(
      deviceId: string,
      q: { start?: string; end?: string; limit: number; cursor?: string },
    ): Promise<TrackPage> {
      await device(deviceId);
      const from = q.start ? iso(q.start) : LOW;
      const to = `${q.end ? iso(q.end) : "9999"}${HIGH_SUFFIX}`;
      const scope = `track:${deviceId}:${from}:${to}`;
      const page = await deps.data.track(deviceId, range(scope, from, to, q.limit, q.cursor));
      return {
        deviceId,
        positions: page.items.map(positionView),
        ...(page.lastKey ? { nextCursor: encodeCursor(scope, page.lastKey) } : {}),
      };
    },

    async passthroughMessages(
      deviceId: string,
      q: { since?: string; limit: number; cursor?: string },
    ): Promise<{ deviceId: string; messages: PassthroughView[]; nextCursor?: string }> {
      await device(deviceId);
      // Strictly after `since`: every message of that instant sorts below `<since>#~`.
      const from = q.since ? `${iso(q.since)}${HIGH_SUFFIX}` : LOW;
      const to = `9999${HIGH_SUFFIX}`;
      const scope = `passthrough:${deviceId}:${from}`;
      const page = await deps.data.passthrough(deviceId, range(scope, from, to, q.limit, q.cursor));
      return {
        deviceId,
        messages: page.items.map((m: PassthroughItem) => ({
          receivedAt: m.receivedAt,
          sequence: m.sequence,
          ...(m.channel === undefined ? {} : { channel: m.channel }),
          data: m.data,
        })),
        ...(page.lastKey ? { nextCursor: encodeCursor(scope, page.lastKey) } : {}),
      };
    },

    /** TRANSPARENT to the device (ehome-2.0 §8): a `passthrough` command. */
    sendPassthrough(deviceId: string, params: PassthroughParams, waitSeconds: number) {
      // Like `capture`, the type is sent only from here, so it is not in the public union.
      return deps.commands.submit(
        deviceId,
        { type: "passthrough", params } as unknown as CommandRequest,
        waitSeconds,
      );
    },

    /**
     * The cached capability set, or (no cache, or `refresh`) GetDevAbility through a
     * `capabilities` command, waited for up to `waitSeconds`. A command still running then is
     * remembered on the device record, and its result is cached by the next read that finds it
     * succeeded.
     */
    async capabilities(
      deviceId: string,
      q: { refresh: boolean; waitSeconds: number },
    ): Promise<{ status: 200 | 202; view: CapabilitiesView }> {
      const item = await device(deviceId);
      if (item.capabilitiesCommandId && !q.refresh) {
        const previous = await deps.commands.get(item.capabilitiesCommandId).catch(() => undefined);
        if (previous?.state === "succeeded") {
          const { result, at } = await storeCapabilities(deviceId, previous);
          return {
            status: 200,
            view: { deviceId, capabilities: result, fetchedAt: at, source: "device" },
          };
        }
        if (previous && (previous.state === "pending" || previous.state === "sent")) {
          return {
            status: 202,
            view: {
              deviceId,
              capabilities: item.capabilities ?? null,
              ...(item.capabilitiesAt ? { fetchedAt: item.capabilitiesAt } : {}),
              source: "pending",
              commandId: previous.commandId,
            },
          };
        }
      }
      if (item.capabilities && !q.refresh) {
        return {
          status: 200,
          view: {
            deviceId,
            capabilities: item.capabilities,
            ...(item.capabilitiesAt ? { fetchedAt: item.capabilitiesAt } : {}),
            source: "cache",
          },
        };
      }
      const { command } = await deps.commands.submit(
        deviceId,
        { type: "capabilities", params: {} } as unknown as CommandRequest,
        q.waitSeconds,
      );
      if (command.state === "succeeded") {
        const { result, at } = await storeCapabilities(deviceId, command);
        return {
          status: 200,
          view: { deviceId, capabilities: result, fetchedAt: at, source: "device" },
        };
      }
      await deps.data.setCapabilities(deviceId, { commandId: command.commandId });
      return {
        status: 202,
        view: {
          deviceId,
          capabilities: item.capabilities ?? null,
          ...(item.capabilitiesAt ? { fetchedAt: item.capabilitiesAt } : {}),
          source: "pending",
          commandId: command.commandId,
        },
      };
    },
  };
}

export type DeviceDataService = ReturnType<typeof createDeviceDataService>;
