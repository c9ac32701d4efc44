import type { CatalogueView, CommandId } from "../catalogue.ts";
import type { DeviceRequestMessage } from "../codec/index.ts";
import { formatAddress, isDuplicate } from "../sessions.ts";
import { askToRegister, type HandlerContext, OK } from "./context.ts";

/**
 * Any other device REQUEST (STATUS, UPGRADESTATUS, TRANSPARENT, or a command we do not know).
 * ehome-2.0 §2.9: every device-originated REQUEST is answered with its Sequence echoed and
 * de-duplicated on (DeviceID, Sequence).
 *
 * Unknown commands are answered `200 OK` too: the answer acknowledges receipt, so a device that
 * resends until acknowledged stops resending; nothing is acted on. They are counted
 * (`device_requests_unknown_command`) and logged once per command name per interval, so a real
 * device's unknown message shows up in the logs and in trace mode (docs/errors.md).
 */
export function handleDeviceRequest(
  ctx: HandlerContext,
  msg: DeviceRequestMessage,
  host: string,
  port: number,
  now: number,
  view: CatalogueView,
): void {
  const c = ctx.metrics.c;
  const session =
    msg.deviceId !== null ? ctx.sessions.get(msg.deviceId) : ctx.sessions.byAddress(host, port);
  const known = msg.commandId !== null;
  const whichCommand = known ? view.commands[msg.commandId as CommandId].command : msg.command;
  if (session === undefined) {
    c.device_requests_unregistered++;
    askToRegister(ctx, view, whichCommand, msg.header.sequence, msg.header.encoding, host, port);
    return;
  }
  session.lastSeen = now;
  ctx.respond(host, port, msg.header.encoding, {
    sequence: msg.header.sequence,
    method: known ? view.commands[msg.commandId as CommandId].method : null,
    whichCommand,
    status: 200,
    description: OK,
  });
  if (isDuplicate(session, msg.header.sequence)) {
    c.duplicates++;
    return;
  }
  if (!known) {
    c.device_requests_unknown_command++;
    const command = msg.command.slice(0, 64);
    ctx.logLimited(`unknown-command:${command}`, "warn", "unknown device command answered 200", {
      command,
      deviceId: session.deviceId,
    });
    return;
  }
  c.device_requests++;
  ctx.report({
    kind: msg.commandId as string,
    deviceId: session.deviceId,
    sequence: msg.header.sequence,
    address: formatAddress(host, port),
    params: msg.params,
    receivedAt: now,
  });
}
