import type { CatalogueView } from "../catalogue.ts";
import { buildFields, type GpsMessage } from "../codec/index.ts";
import { formatAddress, isDuplicate } from "../sessions.ts";
import { askToRegister, type HandlerContext, OK } from "./context.ts";

/**
 * GPS (ehome-2.0 §2.9): answered 200 with `RetransFlag` echoed, every time; reported once per
 * (DeviceID, Sequence), because resent copies (RetransFlag 1) repeat the same report.
 */
export function handleGps(
  ctx: HandlerContext,
  msg: GpsMessage,
  host: string,
  port: number,
  now: number,
  view: CatalogueView,
): void {
  const session = ctx.sessions.get(msg.deviceId);
  if (session === undefined) {
    ctx.metrics.c.device_requests_unregistered++;
    const which = view.commands.gps.command;
    askToRegister(ctx, view, which, msg.header.sequence, msg.header.encoding, host, port);
    return;
  }
  session.lastSeen = now;
  const entry = session.view.commands.gps;
  ctx.respond(host, port, msg.header.encoding, {
    sequence: msg.header.sequence,
    method: entry.method,
    whichCommand: entry.command,
    status: 200,
    description: OK,
    params: buildFields(entry.reply, { retransFlag: msg.retransFlag }),
  });
  if (isDuplicate(session, msg.header.sequence)) {
    ctx.metrics.c.duplicates++;
    return;
  }
  ctx.metrics.c.gps_reports++;
  ctx.report({
    kind: "gps",
    deviceId: msg.deviceId,
    sequence: msg.header.sequence,
    address: formatAddress(host, port),
    params: msg.params,
    receivedAt: now,
  });
}
