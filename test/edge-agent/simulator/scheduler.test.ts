import { describe, expect, it } from "vitest";
import { createScheduler } from "../../../edge-agent/simulator/scheduler.ts";

/** A manual clock and timer: the scheduler's one Node timer, observable. */
function manual() {
  let now = 0;
  let armed: { fn: () => void; at: number } | null = null;
  let arms = 0;
  const errors: unknown[] = [];
  const s = createScheduler({
    now: () => now,
    setTimer: (fn, ms) => {
      arms++;
      armed = { fn, at: now + ms };
      return armed;
    },
    clearTimer: (h) => {
      if (armed === h) armed = null;
    },
    onError: (e) => errors.push(e),
  });
  const advance = (ms: number) => {
    const until = now + ms;
    while (armed && armed.at <= until) {
      now = Math.max(now, armed.at);
      const { fn } = armed;
      armed = null;
      fn();
    }
    now = until;
  };
  /** Fires the armed timer once, whatever its due time (one turn of the event loop). */
  const fireOnce = () => {
    const a = armed;
    armed = null;
    if (a) {
      now = Math.max(now, a.at);
      a.fn();
    }
  };
  return { s, advance, fireOnce, armedAt: () => armed?.at ?? null, arms: () => arms, errors };
}

describe("shared scheduler (one timer for all devices)", () => {
  it("runs tasks in due order, ties in insertion order", () => {
    const { s, advance } = manual();
    const order: string[] = [];
    s.after(30, () => order.push("c"));
    s.after(10, () => order.push("a"));
    s.after(10, () => order.push("b"));
    s.after(20, () => order.push("x"));
    advance(25);
    expect(order).toEqual(["a", "b", "x"]);
    advance(5);
    expect(order).toEqual(["a", "b", "x", "c"]);
    expect(s.size).toBe(0);
  });

  it("keeps a single timer armed at the earliest task", () => {
    const { s, armedAt, arms } = manual();
    for (let i = 0; i < 1000; i++) s.after(1000 + i, () => {});
    expect(armedAt()).toBe(1000);
    expect(arms()).toBe(1);
    s.after(5, () => {});
    expect(armedAt()).toBe(5);
    expect(arms()).toBe(2);
  });

  it("cancelled tasks do not run and do not count", () => {
    const { s, advance } = manual();
    let ran = 0;
    const t = s.after(10, () => ran++);
    s.after(20, () => ran++);
    t.cancel();
    t.cancel();
    expect(s.size).toBe(1);
    advance(30);
    expect(ran).toBe(1);
  });

  it("a zero-delay task scheduled by a task waits for the next turn", () => {
    const { s, fireOnce, armedAt } = manual();
    let runs = 0;
    const again = () => {
      runs++;
      s.after(0, again);
    };
    s.after(0, again);
    fireOnce();
    expect(runs).toBe(1);
    expect(armedAt()).toBe(0);
    fireOnce();
    expect(runs).toBe(2);
    s.close();
  });

  it("a throwing task is reported and the others still run", () => {
    const { s, advance, errors } = manual();
    let ran = false;
    s.after(1, () => {
      throw new Error("boom");
    });
    s.after(1, () => {
      ran = true;
    });
    advance(1);
    expect(ran).toBe(true);
    expect(errors).toHaveLength(1);
  });

  it("close() clears the timer and refuses new work", () => {
    const { s, advance, armedAt } = manual();
    let ran = 0;
    s.after(10, () => ran++);
    s.close();
    s.close();
    expect(armedAt()).toBeNull();
    s.after(1, () => ran++);
    advance(100);
    expect(ran).toBe(0);
    expect(s.size).toBe(0);
  });
});
