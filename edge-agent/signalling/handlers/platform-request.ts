import type { PlatformRequestMessage } from "../codec/index.ts";
import type { HandlerContext } from "./context.ts";

/**
 * The agent decodes with role `platform`, so the codec reads every REQUEST as device-originated
 * and never produces this kind; it is counted and ignored so the dispatch switch stays exhaustive.
 */
export function handlePlatformRequest(ctx: HandlerContext, _msg: PlatformRequestMessage): void {
  ctx.metrics.c.platform_requests_ignored++;
}
