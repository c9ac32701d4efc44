import { readFields } from "../../signalling/codec/index.ts";
import { parseDeviceTime, parseTimeZone } from "./clock.ts";
import type { CommandHandler } from "./context.ts";
import { badRequest, ok, operFailed } from "./status.ts";

/** ehome-2.0 §8 (provisional REBOOT): answer 200, then go silent and re-register. */
export const reboot: CommandHandler = (ctx) => ({
  ...ok(),
  afterReply: () => ctx.actions.reboot(ctx.options.rebootMs),
});

/** ehome-2.0 §2.8: ADJUSTTIME `Time` (device-local) + `TimeZone`; the device keeps the offset. */
export const adjustTime: CommandHandler = (ctx, request) => {
  const f = readFields(request.params, ctx.view.commands.adjustTime.params);
  const local = f.time ? parseDeviceTime(f.time) : undefined;
  if (local === undefined) return badRequest("Time invalid");
  const zone = f.timeZone ?? ctx.device.timeZone;
  const zoneMinutes = parseTimeZone(zone);
  if (zoneMinutes === undefined) return badRequest("TimeZone invalid");
  ctx.device.timeZone = zone;
  ctx.device.timeOffsetMs = local - zoneMinutes * 60_000 - ctx.wallClock();
  return ok();
};

/**
 * ehome-2.0 §8 (UPDATE with an HTTP URL, provisional): 200 means "download starting". With
 * `upgradeDownload` the device fetches `URL` for real and checks `FileSize` / `MD5` (device.ts);
 * otherwise it flashes for `upgradeMs` and boots into `Version` (or, without one, its current
 * version with an `-upgraded` suffix). The `refuse` fault answers 401 "System Oper Faild." (§3.4).
 */
export const update: CommandHandler = (ctx, request) => {
  const f = readFields(request.params, ctx.view.commands.update.params);
  if (!f.url) return badRequest("URL missing");
  if (ctx.actions.upgradeFault() === "refuse") return operFailed();
  const version = f.version || `${ctx.device.profile.firmwareVersion}-upgraded`;
  if (ctx.options.upgradeDownload) {
    const fileSize = f.fileSize === undefined ? undefined : Number(f.fileSize);
    if (fileSize !== undefined && !(Number.isSafeInteger(fileSize) && fileSize >= 0)) {
      return badRequest("FileSize invalid");
    }
    const md5 = f.md5?.trim().toLowerCase();
    if (md5 !== undefined && !/^[0-9a-f]{32}$/.test(md5)) return badRequest("MD5 invalid");
    const job = { url: f.url, fileSize, md5, version };
    return { ...ok(), afterReply: () => ctx.actions.downloadUpgrade(job) };
  }
  ctx.device.pendingFirmware = version;
  return { ...ok(), afterReply: () => ctx.actions.upgrade(version, ctx.options.upgradeMs) };
};
