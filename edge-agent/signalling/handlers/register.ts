import { createHash, timingSafeEqual } from "node:crypto";
import type { ProvisioningDecision } from "../../ports.ts";
import type { CatalogueView } from "../catalogue.ts";
import { buildFields, type RegisterMessage } from "../codec/index.ts";
import { formatAddress, isDuplicate, newSession } from "../sessions.ts";
import { type HandlerContext, OK } from "./context.ts";

/**
 * REGISTER (ehome-2.0 §2.1): provisioning check, session keyed by DeviceID with the observed
 * source address (never LocalIP, §1.1), the reply announcing keepalive period, alarm, NTP and
 * picture servers, then learning the device. A duplicate (same DeviceID, Sequence and address) is
 * answered again but acted on once (§2.9).
 */

/** Longest DeviceID accepted (the event contract's limit). */
export const MAX_DEVICE_ID = 256;

const REFUSED = { status: 403, description: "Device not provisioned" } as const;
const BAD_PASSWORD = { status: 401, description: "Password mismatch" } as const;
/** A device with a stored password sent none (EHOME_REQUIRE_PASSWORD, issue 7). */
const NO_PASSWORD = { status: 401, description: "Password required" } as const;
const BAD_ID = { status: 400, description: "Invalid DeviceID" } as const;
/** EHOME_MAX_SESSIONS_PER_ADDRESS reached (issue 7): a 403 like any refusal (§2.1 C). */
const ADDRESS_FULL = { status: 403, description: "Too many devices at this address" } as const;
/** `NTPInterval` as in the §2.1 sample (unit undocumented; the sample value is kept). */
const NTP_INTERVAL = 3600;

function clip(s: string | undefined, max: number): string | undefined {
  return s === undefined || s === "" ? undefined : s.slice(0, max);
}

function samePassword(expected: string, given: string): boolean {
  const a = createHash("sha256").update(expected).digest();
  const b = createHash("sha256").update(given).digest();
  return timingSafeEqual(a, b);
}

function refuse(
  ctx: HandlerContext,
  msg: RegisterMessage,
  host: string,
  port: number,
  answer: { status: number; description: string },
): void {
  const view = ctx.dialect.viewFor(msg.devType, msg.firmwareVersion);
  // §2.1: a non-200 REGISTER answer is undocumented (C); we send the status with no Params.
  ctx.respond(host, port, msg.header.encoding, {
    sequence: msg.header.sequence,
    method: view.commands.register.method,
    whichCommand: view.commands.register.command,
    status: answer.status,
    description: answer.description,
  });
}

function accept(
  ctx: HandlerContext,
  msg: RegisterMessage,
  host: string,
  port: number,
  now: number,
): void {
  const { sessions } = ctx;
  const view = ctx.dialect.viewFor(msg.devType, msg.firmwareVersion);
  const firmwareVersion = clip(msg.firmwareVersion, 64);
  const session = newSession({
    deviceId: msg.deviceId,
    host,
    port,
    encoding: msg.header.encoding,
    view,
    protocolVersion: msg.header.version,
    firmwareVersion,
    devType: clip(msg.devType, 32),
    netUnitType: clip(msg.netUnitType, 16),
    now,
    firstSequence: Math.floor(ctx.random() * 2 ** 31),
  });
  isDuplicate(session, msg.header.sequence);
  const previous = sessions.add(session);

  replyAccepted(ctx, view, msg, host, port);

  const address = formatAddress(host, port);
  const deviceId = msg.deviceId;
  ctx.emit({
    type: "registered",
    deviceId,
    address,
    firmwareVersion: session.firmwareVersion,
    devType: session.devType,
    netUnitType: session.netUnitType,
    protocolVersion: clip(msg.header.version, 16),
  });
  if (!previous) {
    ctx.emit({ type: "online", deviceId, address });
  } else {
    if (previous.host !== host || previous.port !== port) {
      ctx.metrics.c.address_changes++;
      ctx.emit({
        type: "address-changed",
        deviceId,
        address,
        previousAddress: formatAddress(previous.host, previous.port),
      });
    }
    if (
      previous.firmwareVersion !== undefined &&
      firmwareVersion !== undefined &&
      previous.firmwareVersion !== firmwareVersion
    ) {
      ctx.emit({
        type: "firmware-changed",
        deviceId,
        firmwareVersion,
        previousFirmwareVersion: previous.firmwareVersion,
      });
    }
  }
  ctx.learn(session);
}

function refusePassword(ctx: HandlerContext, msg: RegisterMessage, host: string, port: number) {
  ctx.metrics.c.registers_unauthorized++;
  ctx.logLimited(`password:${host}`, "warn", "register refused: password mismatch", {
    deviceId: msg.deviceId.slice(0, 64),
    address: formatAddress(host, port),
  });
  refuse(ctx, msg, host, port, BAD_PASSWORD);
}

function decide(
  ctx: HandlerContext,
  msg: RegisterMessage,
  host: string,
  port: number,
  now: number,
  decision: ProvisioningDecision | undefined,
): void {
  const c = ctx.metrics.c;
  const allowed = decision ? decision.allowed : ctx.config.autoProvision;
  if (!allowed) {
    c.registers_refused++;
    ctx.logLimited(`refused:${host}`, "warn", "register refused: device not provisioned", {
      deviceId: msg.deviceId.slice(0, 64),
      address: formatAddress(host, port),
    });
    refuse(ctx, msg, host, port, REFUSED);
    return;
  }
  if (
    msg.password === undefined &&
    ctx.config.requirePassword !== false &&
    (decision?.password !== undefined || decision?.passwordHash !== undefined)
  ) {
    // A password is stored for this device but the REGISTER carries none: refused, or anyone who
    // knows the DeviceID could register by leaving the element out (issue 7, docs/SECURITY.md
    // §3.1). EHOME_REQUIRE_PASSWORD=false restores "checked only when sent".
    c.registers_unauthorized++;
    ctx.logLimited(`password:${host}`, "warn", "register refused: password required", {
      deviceId: msg.deviceId.slice(0, 64),
      address: formatAddress(host, port),
    });
    refuse(ctx, msg, host, port, NO_PASSWORD);
    return;
  }
  if (msg.password !== undefined) {
    // The password is checked when the device sends one (issue 2 item 5; EHome 2.0 has no key,
    // §7.3). A clear password from the allowlist is compared here; a source that stores only a
    // hash (the cloud registry) verifies it itself, possibly asynchronously.
    let ok: boolean | Promise<boolean> = true;
    if (decision?.password !== undefined) ok = samePassword(decision.password, msg.password);
    else if (ctx.provisioning.verifyPassword) {
      try {
        ok = ctx.provisioning.verifyPassword(msg.deviceId, msg.password);
      } catch (err) {
        ctx.logLimited("provisioning-error", "error", "password verification failed", { err });
        return; // unanswered: the device retries
      }
    }
    if (ok instanceof Promise) {
      const key = `${msg.deviceId}#${msg.header.sequence}`;
      ctx.registering.add(key);
      ok.then(
        (good) => {
          if (!ctx.registering.delete(key)) return; // the agent closed meanwhile
          if (good) accept(ctx, msg, host, port, Date.now());
          else refusePassword(ctx, msg, host, port);
        },
        (err: unknown) => {
          ctx.registering.delete(key);
          ctx.logLimited("provisioning-error", "error", "password verification failed", { err });
        },
      );
      return;
    }
    if (!ok) {
      refusePassword(ctx, msg, host, port);
      return;
    }
  }
  accept(ctx, msg, host, port, now);
}

export function handleRegister(
  ctx: HandlerContext,
  msg: RegisterMessage,
  host: string,
  port: number,
  now: number,
): void {
  const c = ctx.metrics.c;
  c.registers++;
  if (msg.deviceId.length > MAX_DEVICE_ID) {
    c.registers_refused++;
    refuse(ctx, msg, host, port, BAD_ID);
    return;
  }
  const existing = ctx.sessions.get(msg.deviceId);
  if (
    existing &&
    existing.host === host &&
    existing.port === port &&
    existing.recent.includes(msg.header.sequence)
  ) {
    c.registers_duplicate++;
    c.duplicates++;
    existing.lastSeen = now;
    // Answered again exactly as before: the reply depends only on configuration.
    replyAccepted(ctx, existing.view, msg, host, port);
    return;
  }

  // Before any provisioning read: a flood from one address costs no DynamoDB reads beyond the cap.
  if (!ctx.sessions.admits(msg.deviceId, host)) {
    c.registers_refused++;
    ctx.logLimited(`address-cap:${host}`, "warn", "register refused: sessions per address cap", {
      deviceId: msg.deviceId.slice(0, 64),
      address: formatAddress(host, port),
      sessions: ctx.sessions.countAt(host),
    });
    refuse(ctx, msg, host, port, ADDRESS_FULL);
    return;
  }

  const key = `${msg.deviceId}#${msg.header.sequence}`;
  if (ctx.registering.has(key)) {
    c.registers_duplicate++;
    c.duplicates++;
    return; // the first copy is answered when its asynchronous lookup completes
  }
  let decision: ReturnType<typeof ctx.provisioning.lookup>;
  try {
    decision = ctx.provisioning.lookup(msg.deviceId);
  } catch (err) {
    if ((err as { code?: unknown }).code === "PROVISIONING_BUSY") {
      // Too many reads in flight (a flood of unknown ids): shed, the device retries.
      ctx.logLimited("provisioning-busy", "warn", "register shed: provisioning reads saturated", {
        address: formatAddress(host, port),
      });
      return;
    }
    ctx.logLimited("provisioning-error", "error", "provisioning lookup failed", { err });
    return; // no answer: the device retries, and a transient store error is not a refusal
  }
  if (!(decision instanceof Promise)) {
    decide(ctx, msg, host, port, now, decision);
    return;
  }
  ctx.registering.add(key);
  decision.then(
    (d) => {
      // Cleared by close(): the agent stopped while the lookup was in flight.
      if (ctx.registering.delete(key)) decide(ctx, msg, host, port, Date.now(), d);
    },
    (err: unknown) => {
      ctx.registering.delete(key);
      ctx.logLimited("provisioning-error", "error", "provisioning lookup failed", { err });
    },
  );
}

function replyAccepted(
  ctx: HandlerContext,
  view: CatalogueView,
  msg: RegisterMessage,
  host: string,
  port: number,
): void {
  const { config } = ctx;
  const entry = view.commands.register;
  ctx.respond(host, port, msg.header.encoding, {
    sequence: msg.header.sequence,
    method: entry.method,
    whichCommand: entry.command,
    status: 200,
    description: OK,
    // Field order is the catalogue's (FE ResRegister); blacklist and RegisterServer fields are
    // sent empty/0 like FE, which devices accept (§2.1, B).
    params: buildFields(entry.reply, {
      keepAliveSeconds: config.keepAliveSeconds,
      alarmServerIp: config.publicHost,
      alarmServerPort: config.alarmPort,
      alarmServerType: config.alarmServerType,
      ntpServerIp: config.ntpHost,
      ntpServerPort: config.ntpPort,
      ntpInterval: NTP_INTERVAL,
      pictureServer: config.publicHost,
      pictureServerPort: config.httpPort,
      pictureServerType: config.pictureServerType,
      blackListAddr: "",
      blackListName: "",
      blackListPort: 0,
      blackListUser: "",
      blackListPassword: "",
      registerServerIp: "",
      registerServerPort: 0,
    }),
  });
}
