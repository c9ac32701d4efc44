import type { Clock } from "../shared/clock.ts";
import { hashDevicePassword } from "../shared/device-password.ts";
import { ApiError } from "../shared/errors.ts";
import type { Logger } from "../shared/logger.ts";
import { isAgentLive, queueUrlAllowed } from "./agents.ts";
import type { ApiConfig } from "./config.ts";
import { decodeCursor, encodeCursor } from "./cursor.ts";
import type {
  AgentQueue,
  AgentsRepository,
  DevicesRepository,
  ListDevicesInput,
  PresenceRepository,
} from "./ports.ts";
import { type DeviceView, deviceView, type PresenceView, presenceView } from "./views.ts";

export interface DevicesServiceDeps {
  devices: DevicesRepository;
  presence: PresenceRepository;
  agents: AgentsRepository;
  agentQueue: AgentQueue;
  clock: Clock;
  logger: Logger;
  /** Injected so unit tests need not pay for scrypt. */
  hashPassword?: (password: string) => Promise<string>;
}

export interface ListDevicesQuery extends Omit<ListDevicesInput, "startKey"> {
  cursor?: string;
}

export interface ProvisionBody {
  allowed: boolean;
  password?: string;
  labels?: Record<string, string>;
  timeZone?: string;
}

export interface PageView<T> {
  items: T[];
  nextCursor?: string;
}

function deviceNotFound(deviceId: string): ApiError {
  return new ApiError("DEVICE_NOT_FOUND", `no device ${deviceId}`);
}

/** Cursor scope of a device listing: the filters, so a cursor cannot be reused across them. */
export function devicesCursorScope(query: Pick<ListDevicesInput, "status" | "model" | "firmware">) {
  return `devices?${JSON.stringify([query.status ?? null, query.model ?? null, query.firmware ?? null])}`;
}

export function createDevicesService(config: ApiConfig, deps: DevicesServiceDeps) {
  const hashPassword = deps.hashPassword ?? ((p: string) => hashDevicePassword(p));
  const iso = () => new Date(deps.clock.now()).toISOString();

  /**
   * Tells every live agent to re-read the device's provisioning, so a deprovisioned device is
   * dropped now and refused at its next REGISTER. Best effort: the agent also reads provisioning
   * at every REGISTER, so a lost notification only delays dropping a session that is up.
   */
  async function notifyProvisioningChanged(deviceId: string): Promise<void> {
    let agents: Awaited<ReturnType<AgentsRepository["list"]>>;
    try {
      agents = await deps.agents.list();
    } catch (error) {
      deps.logger.error("provisioning-changed not sent: agents table unreadable", {
        deviceId,
        error,
      });
      return;
    }
    const now = deps.clock.now();
    const targets = agents.filter(
      (a) => isAgentLive(a, now) && queueUrlAllowed(a.commandQueueUrl, config.agentQueuePrefix),
    );
    const results = await Promise.allSettled(
      targets.map((a) =>
        deps.agentQueue.send(a.commandQueueUrl, { kind: "provisioning-changed", deviceId }),
      ),
    );
    results.forEach((result, i) => {
      if (result.status === "rejected") {
        deps.logger.error("provisioning-changed not sent", {
          deviceId,
          agentId: targets[i]!.agentId,
          error: result.reason,
        });
      }
    });
  }

  return {
    async get(deviceId: string): Promise<DeviceView> {
      const item = await deps.devices.get(deviceId);
      if (!item) throw deviceNotFound(deviceId);
      return deviceView(item);
    },

    async list(query: ListDevicesQuery): Promise<PageView<DeviceView>> {
      const scope = devicesCursorScope(query);
      const keyNames = query.status === undefined ? ["deviceId"] : ["deviceId", "status"];
      const startKey =
        query.cursor === undefined ? undefined : decodeCursor(scope, query.cursor, keyNames);
      const page = await deps.devices.list({
        ...(query.status === undefined ? {} : { status: query.status }),
        ...(query.model === undefined ? {} : { model: query.model }),
        ...(query.firmware === undefined ? {} : { firmware: query.firmware }),
        limit: query.limit,
        ...(startKey ? { startKey } : {}),
      });
      return {
        items: page.items.map(deviceView),
        ...(page.lastKey ? { nextCursor: encodeCursor(scope, page.lastKey) } : {}),
      };
    },

    async presence(
      deviceId: string,
      query: { limit: number; cursor?: string },
    ): Promise<PageView<PresenceView>> {
      if (!(await deps.devices.get(deviceId))) throw deviceNotFound(deviceId);
      const scope = `presence?${deviceId}`;
      const startKey =
        query.cursor === undefined
          ? undefined
          : decodeCursor(scope, query.cursor, ["deviceId", "at"]);
      const page = await deps.presence.list(deviceId, {
        limit: query.limit,
        ...(startKey ? { startKey } : {}),
      });
      return {
        items: page.items.map(presenceView),
        ...(page.lastKey ? { nextCursor: encodeCursor(scope, page.lastKey) } : {}),
      };
    },

    /**
     * PUT replaces the provisioning settings as a whole: an omitted password means none is
     * required (a stored hash is removed), omitted labels mean none. `timeZone` is a fact about
     * the device rather than a setting: omitted, the stored one is kept.
     */
    async provision(
      deviceId: string,
      body: ProvisionBody,
    ): Promise<{ device: DeviceView; created: boolean }> {
      const passwordHash =
        body.password === undefined ? undefined : await hashPassword(body.password);
      const { item, created } = await deps.devices.provision(deviceId, {
        provisioned: body.allowed,
        ...(passwordHash === undefined ? {} : { passwordHash }),
        labels: body.labels ?? {},
        ...(body.timeZone === undefined ? {} : { timeZone: body.timeZone }),
        now: iso(),
      });
      await notifyProvisioningChanged(deviceId);
      return { device: deviceView(item), created };
    },

    async remove(deviceId: string): Promise<void> {
      if (!(await deps.devices.remove(deviceId, iso()))) throw deviceNotFound(deviceId);
      await notifyProvisioningChanged(deviceId);
    },
  };
}

export type DevicesService = ReturnType<typeof createDevicesService>;
