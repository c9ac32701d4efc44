import { describe, expect, it } from "vitest";
import { createLogger, createRateLimiter } from "../../edge-agent/log.ts";

describe("logging", () => {
  it("writes JSON lines at or above the level, with bindings and serialised errors", () => {
    const lines: string[] = [];
    const log = createLogger({ level: "info", write: (l) => lines.push(l), now: () => 0 }).child({
      agentId: "a1",
    });
    log.debug("hidden");
    log.warn("careful", { err: Object.assign(new Error("boom"), { code: "E_X" }) });
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toEqual({
      time: "1970-01-01T00:00:00.000Z",
      level: "warn",
      msg: "careful",
      agentId: "a1",
      err: { name: "Error", message: "boom", code: "E_X" },
    });
    expect(log.enabled("debug")).toBe(false);
    expect(log.enabled("error")).toBe(true);
  });

  it("rate-limits per key per interval and reports how many were suppressed", () => {
    const rl = createRateLimiter({ intervalMs: 1000, maxKeys: 2 });
    expect(rl.allow("a", 0)).toEqual({ allowed: true, suppressed: 0 });
    expect(rl.allow("a", 10).allowed).toBe(false);
    expect(rl.allow("a", 20).allowed).toBe(false);
    expect(rl.allow("b", 20).allowed).toBe(true);
    expect(rl.allow("a", 1000)).toEqual({ allowed: true, suppressed: 2 });
    // Bounded memory: a third key clears the table rather than growing it.
    expect(rl.allow("c", 1001).allowed).toBe(true);
    expect(rl.allow("a", 1002).allowed).toBe(true);
  });
});
