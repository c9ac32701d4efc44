import type { CatalogueView } from "../catalogue.ts";
import type { Message } from "../codec/index.ts";
import { handleAlarm } from "./alarm.ts";
import type { HandlerContext } from "./context.ts";
import { handleDeviceRequest } from "./device-request.ts";
import { handleGps } from "./gps.ts";
import { handleKeepalive } from "./keepalive.ts";
import { handlePlatformRequest } from "./platform-request.ts";
import { handleRegister } from "./register.ts";
import { handleResponse } from "./response.ts";

export type { HandlerContext, ResponseFields } from "./context.ts";

/** One handler per message kind behind one exhaustive switch (style rule 2). */
export function dispatch(
  ctx: HandlerContext,
  message: Message,
  host: string,
  port: number,
  now: number,
  view: CatalogueView,
): void {
  switch (message.kind) {
    case "keepalive":
      handleKeepalive(ctx, message, host, port, now, view);
      return;
    case "register":
      handleRegister(ctx, message, host, port, now);
      return;
    case "gps":
      handleGps(ctx, message, host, port, now, view);
      return;
    case "alarm":
      handleAlarm(ctx, message, host, port, now, view);
      return;
    case "device-request":
      handleDeviceRequest(ctx, message, host, port, now, view);
      return;
    case "response":
      handleResponse(ctx, message, host, port, now);
      return;
    case "platform-request":
      handlePlatformRequest(ctx, message);
      return;
    default: {
      const unreachable: never = message;
      throw new Error(`unhandled message kind ${(unreachable as Message).kind}`);
    }
  }
}
