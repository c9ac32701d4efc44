import type { CatalogueView } from "../catalogue.ts";
import type { AlarmMessage } from "../codec/index.ts";
import { formatAddress, isDuplicate } from "../sessions.ts";
import { askToRegister, type HandlerContext, OK } from "./context.ts";

/**
 * ALARM on the signalling port (ehome-2.0 §8: provisional, "also accepted on 7660"): answered 200
 * with the Sequence echoed, handed to the report sink once per (DeviceID, Sequence) before the
 * answer goes out.
 *
 * With `EHOME_ADDRESS_BINDING=strict` (issue 7, docs/SECURITY.md §3.2) an ALARM from another IP
 * than the session's is refused like one from an unregistered device (403 + Method REGISTER,
 * counted `alarms_address_refused`). Only the IP is compared: a device may send alarms from
 * another socket (source port) than its signalling one, to the alarm port (§8).
 */
export function handleAlarm(
  ctx: HandlerContext,
  msg: AlarmMessage,
  host: string,
  port: number,
  now: number,
  view: CatalogueView,
): void {
  const session = ctx.sessions.get(msg.deviceId);
  if (session === undefined) {
    ctx.metrics.c.device_requests_unregistered++;
    ctx.metrics.c.alarms_refused++;
    const which = view.commands.alarm.command;
    askToRegister(ctx, view, which, msg.header.sequence, msg.header.encoding, host, port);
    return;
  }
  if (ctx.config.addressBinding === "strict" && session.host !== host) {
    ctx.metrics.c.alarms_refused++;
    ctx.metrics.c.alarms_address_refused++;
    ctx.logLimited(`binding:${host}`, "warn", "alarm refused: not the session's address", {
      deviceId: msg.deviceId.slice(0, 64),
      address: formatAddress(host, port),
    });
    const which = view.commands.alarm.command;
    askToRegister(ctx, view, which, msg.header.sequence, msg.header.encoding, host, port);
    return;
  }
  session.lastSeen = now;
  const entry = session.view.commands.alarm;
  if (isDuplicate(session, msg.header.sequence)) {
    ctx.metrics.c.duplicates++;
  } else {
    ctx.metrics.c.alarm_reports++;
    // Reported before the answer: with a journalled alarm sink the event is in the journal file
    // when `report` returns, so a device told 200 never loses the alarm to an agent crash.
    ctx.report({
      kind: "alarm",
      deviceId: msg.deviceId,
      sequence: msg.header.sequence,
      address: formatAddress(host, port),
      params: msg.params,
      receivedAt: now,
    });
  }
  ctx.respond(host, port, msg.header.encoding, {
    sequence: msg.header.sequence,
    method: entry.method,
    whichCommand: entry.command,
    status: 200,
    description: OK,
  });
}
