import type { HandlerContext } from "./context.ts";

/** A 1-based channel number this device has (absent = channel 1). */
export function channelInRange(ctx: HandlerContext, text: string | undefined): boolean {
  const ch = Number(text ?? "1");
  return Number.isInteger(ch) && ch >= 1 && ch <= ctx.device.profile.channels;
}
