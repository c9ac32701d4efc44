import type { ResponseMessage } from "../codec/index.ts";
import type { HandlerContext } from "./context.ts";

/**
 * A device's RESPONSE to one of our requests (ehome-2.0 §3.2): matched by the command sender on
 * (device at this address, Sequence) and WhichCommand. Any answer also proves the device alive.
 */
export function handleResponse(
  ctx: HandlerContext,
  msg: ResponseMessage,
  host: string,
  port: number,
  now: number,
): void {
  const session = ctx.sessions.byAddress(host, port);
  if (session) session.lastSeen = now;
  ctx.sender.handleResponse(msg, host, port);
}
