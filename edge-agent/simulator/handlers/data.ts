import { readFields } from "../../signalling/codec/index.ts";
import type { CommandHandler } from "./context.ts";
import { badRequest, ok } from "./status.ts";

/** ehome-2.0 §8 TRANSPARENT (provisional): a serial-port loopback, the data comes back as sent. */
export const transparent: CommandHandler = (ctx, request) => {
  const c = ctx.view.commands.transparent;
  const f = readFields(request.params, c.params);
  if (f.data === undefined) return badRequest("Data missing");
  return ok({ [c.reply.data!]: f.data });
};
