/**
 * One timer for the whole simulator: a binary min-heap of due times with a single Node timer armed
 * for the earliest. Thousands of devices each holding keepalive, retry and delayed-send timers cost
 * one heap entry each instead of one Node timer each, and close() clears everything in one go.
 */

export interface SchedulerDeps {
  /** Monotonic milliseconds. */
  now?: () => number;
  setTimer?: (fn: () => void, ms: number) => unknown;
  clearTimer?: (handle: unknown) => void;
  /** Where a throwing task's error goes (the other tasks still run). Default: console.error. */
  onError?: (err: unknown) => void;
}

export interface TaskHandle {
  cancel(): void;
}

export interface Scheduler {
  now(): number;
  /** Runs `fn` after `delayMs` (clamped at 0). */
  after(delayMs: number, fn: () => void): TaskHandle;
  /** Number of live (not cancelled, not run) tasks. */
  readonly size: number;
  close(): void;
}

interface Task extends TaskHandle {
  at: number;
  order: number;
  fn: (() => void) | null;
}

export function createScheduler(deps: SchedulerDeps = {}): Scheduler {
  const now = deps.now ?? (() => performance.now());
  const setTimer = deps.setTimer ?? ((fn, ms) => setTimeout(fn, ms));
  const clearTimer = deps.clearTimer ?? ((h) => clearTimeout(h as NodeJS.Timeout));
  const onError = deps.onError ?? ((err) => console.error("simulator task failed", err));
  const heap: Task[] = [];
  let live = 0;
  let order = 0;
  let timer: unknown = null;
  let armedAt = Number.POSITIVE_INFINITY;
  let closed = false;
  let running = false;

  const less = (a: Task, b: Task): boolean => a.at < b.at || (a.at === b.at && a.order < b.order);

  function push(t: Task): void {
    heap.push(t);
    let i = heap.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!less(heap[i]!, heap[p]!)) break;
      [heap[i], heap[p]] = [heap[p]!, heap[i]!];
      i = p;
    }
  }

  function pop(): Task | undefined {
    const top = heap[0];
    const last = heap.pop();
    if (heap.length > 0 && last) {
      heap[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < heap.length && less(heap[l]!, heap[m]!)) m = l;
        if (r < heap.length && less(heap[r]!, heap[m]!)) m = r;
        if (m === i) break;
        [heap[i], heap[m]] = [heap[m]!, heap[i]!];
        i = m;
      }
    }
    return top;
  }

  function arm(): void {
    while (heap.length > 0 && heap[0]!.fn === null) pop();
    const next = heap[0];
    if (!next) {
      if (timer !== null) clearTimer(timer);
      timer = null;
      armedAt = Number.POSITIVE_INFINITY;
      return;
    }
    if (timer !== null && armedAt <= next.at) return;
    if (timer !== null) clearTimer(timer);
    armedAt = next.at;
    timer = setTimer(run, Math.max(0, Math.ceil(next.at - now())));
  }

  function run(): void {
    timer = null;
    armedAt = Number.POSITIVE_INFINITY;
    running = true;
    try {
      const t = now();
      // Tasks added while running wait for the next turn, so a zero-delay task cannot spin forever.
      const limit = order;
      while (!closed && heap.length > 0 && heap[0]!.at <= t && heap[0]!.order < limit) {
        const task = pop()!;
        const fn = task.fn;
        if (fn === null) continue;
        task.fn = null;
        live--;
        try {
          fn();
        } catch (err) {
          onError(err);
        }
      }
    } finally {
      running = false;
    }
    if (!closed) arm();
  }

  return {
    now,
    get size() {
      return live;
    },
    after(delayMs, fn) {
      const task: Task = {
        at: now() + Math.max(0, delayMs),
        order: order++,
        fn: closed ? null : fn,
        cancel() {
          if (task.fn !== null) {
            task.fn = null;
            live--;
          }
        },
      };
      if (closed) return task;
      live++;
      push(task);
      if (!running) arm();
      return task;
    },
    close() {
      if (closed) return;
      closed = true;
      for (const t of heap) t.fn = null;
      heap.length = 0;
      live = 0;
      if (timer !== null) clearTimer(timer);
      timer = null;
    },
  };
}
