import type { CatalogueView } from "../catalogue.ts";
import type { KeepaliveMessage } from "../codec/index.ts";
import { formatAddress } from "../sessions.ts";
import { askToRegister, type HandlerContext, OK } from "./context.ts";

/**
 * KEEPALIVE (ehome-2.0 §2.2), the hot path: one map lookup, one timestamp write, one reply. No
 * de-duplication ring (a repeated keepalive is idempotent) and no awaits. An unknown device gets
 * 403 + Method REGISTER so it registers again. A keepalive from a new address is a NAT rebinding:
 * replies and commands follow the observed address (§1.1) — unless `EHOME_ADDRESS_BINDING` is
 * `strict` (issue 7, docs/SECURITY.md §3.2): then it is refused like an unknown device (403 +
 * Method REGISTER, counted `keepalives_address_refused`) and the session stays where it is; the
 * device moves only by a REGISTER, which passes provisioning and the password check.
 */
export function handleKeepalive(
  ctx: HandlerContext,
  msg: KeepaliveMessage,
  host: string,
  port: number,
  now: number,
  view: CatalogueView,
): void {
  const c = ctx.metrics.c;
  const session = ctx.sessions.get(msg.deviceId);
  if (session === undefined) {
    c.keepalives_unknown++;
    const which = view.commands.keepalive.command;
    askToRegister(ctx, view, which, msg.header.sequence, msg.header.encoding, host, port);
    return;
  }
  const moved = session.host !== host || session.port !== port;
  if (moved && ctx.config.addressBinding === "strict") {
    c.keepalives_address_refused++;
    ctx.logLimited(`binding:${host}`, "warn", "keepalive refused: not the session's address", {
      deviceId: msg.deviceId.slice(0, 64),
      address: formatAddress(host, port),
    });
    const which = view.commands.keepalive.command;
    askToRegister(ctx, view, which, msg.header.sequence, msg.header.encoding, host, port);
    return;
  }
  c.keepalives++;
  session.lastSeen = now;
  if (moved) {
    const previousAddress = formatAddress(session.host, session.port);
    ctx.sessions.move(session, host, port);
    c.address_changes++;
    ctx.emit({
      type: "address-changed",
      deviceId: session.deviceId,
      address: formatAddress(host, port),
      previousAddress,
    });
  }
  const entry = session.view.commands.keepalive;
  ctx.respond(host, port, msg.header.encoding, {
    sequence: msg.header.sequence,
    method: entry.method,
    whichCommand: entry.command,
    status: 200,
    description: OK,
  });
}
