import type { Position } from "../../lib/contracts/positions.ts";

/** Items of the positions and passthrough tables (`TABLES.positions`, `TABLES.passthrough`). */

export interface PositionItem extends Position {
  deviceId: string;
  /** Sort key `<time>#<sequence>` (`positionSortKey`). */
  at: string;
  /** TTL, epoch seconds. */
  expiresAt: number;
}

export interface PassthroughItem {
  deviceId: string;
  /** Sort key `<receivedAt>#<sequence>` (`passthroughSortKey`). */
  at: string;
  sequence: number;
  channel?: number;
  /** Base64 as the device sent it. */
  data: string;
  receivedAt: string;
  agentId: string;
  eventId: string;
  /** TTL, epoch seconds. */
  expiresAt: number;
}
