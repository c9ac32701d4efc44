import type { CommandReply } from "./context.ts";

/**
 * Status codes a simulated device answers with. No public list exists (ehome-2.0 §3.4): 200 and the
 * 401 "System Oper Faild." of a fixed camera asked to move are captured; 400 for requests we do not
 * understand is our choice.
 */
export const STATUS_OK = 200;
export const STATUS_BAD_REQUEST = 400;
export const STATUS_OPER_FAILED = 401;

export function ok(params?: CommandReply["params"]): CommandReply {
  return params === undefined
    ? { status: STATUS_OK, description: "OK" }
    : { status: STATUS_OK, description: "OK", params };
}

export function badRequest(description: string): CommandReply {
  return { status: STATUS_BAD_REQUEST, description };
}

/** ehome-2.0 §2.8, §3.4: the device's own spelling. */
export function operFailed(): CommandReply {
  return { status: STATUS_OPER_FAILED, description: "System Oper Faild." };
}
