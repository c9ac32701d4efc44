import type { AgentQueueMessage, AgentRecord } from "../../lib/contracts/agent-messages.ts";
import type { CommandState } from "../../lib/contracts/commands.ts";
import type { CommandItem, DeviceItem, PresenceItem } from "../shared/items.ts";
import type { CursorKey } from "./cursor.ts";

/** What the API services need from storage and queues (implemented by the repositories). */

export interface Page<T> {
  items: T[];
  /** Key to continue after; absent on the last page. */
  lastKey?: CursorKey;
}

export interface ListDevicesInput {
  status?: "online" | "offline";
  model?: string;
  firmware?: string;
  limit: number;
  startKey?: CursorKey;
}

export interface ProvisionInput {
  provisioned: boolean;
  /** `undefined` removes any stored hash (no password required). */
  passwordHash?: string;
  labels: Record<string, string>;
  /** The device's UTC offset; `undefined` keeps the stored one. */
  timeZone?: string;
  now: string;
}

export interface DevicesRepository {
  /** The device, or `undefined` when absent or deleted (tombstone). */
  get(deviceId: string): Promise<DeviceItem | undefined>;
  list(input: ListDevicesInput): Promise<Page<DeviceItem>>;
  /** Upserts the provisioning attributes; `created` when no live record existed. */
  provision(
    deviceId: string,
    input: ProvisionInput,
  ): Promise<{ item: DeviceItem; created: boolean }>;
  /** Replaces the record with a tombstone; false when there was no live record. */
  remove(deviceId: string, now: string): Promise<boolean>;
  /** Sets the device's UTC offset on a live record; false when there is none. */
  setTimeZone(deviceId: string, timeZone: string, now: string): Promise<boolean>;
}

export interface PresenceRepository {
  /** Newest first. */
  list(
    deviceId: string,
    input: { limit: number; startKey?: CursorKey },
  ): Promise<Page<PresenceItem>>;
}

export interface CommandsRepository {
  /** Writes a new record (fails if the id exists). */
  create(item: CommandItem): Promise<void>;
  /** Strongly consistent read. */
  get(commandId: string): Promise<CommandItem | undefined>;
  /**
   * Moves the record from one of `from` to `changes.state`, setting `changes`. Returns the
   * record after the write, or `undefined` when it was not in one of `from` (nothing written).
   */
  transition(
    commandId: string,
    from: readonly CommandState[],
    changes: Partial<Omit<CommandItem, "commandId">> & { state: CommandState; updatedAt: string },
  ): Promise<CommandItem | undefined>;
}

export interface AgentsRepository {
  /** The heartbeat record, or `undefined` when absent or malformed. */
  get(agentId: string): Promise<AgentRecord | undefined>;
  /** Every heartbeat record (the table holds one item per running agent). */
  list(): Promise<AgentRecord[]>;
}

export interface AgentQueue {
  send(queueUrl: string, message: AgentQueueMessage): Promise<void>;
}
