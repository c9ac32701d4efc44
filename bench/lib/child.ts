import { type ChildProcess, fork } from "node:child_process";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";

/**
 * Benchmark processes: the parent forks TypeScript children (through the tsx loader) and talks to
 * them with request/response messages over IPC. A pending map keyed by id with a timeout per
 * request, everything pending rejected when the child exits, and one idempotent close() that asks
 * the child to exit and kills it if it does not (style: mediasoup's channel).
 */

interface RequestEnvelope {
  id: number;
  body: unknown;
}

type ChildEnvelope =
  | { ready: unknown }
  | { id: number; ok: true; value: unknown }
  | { id: number; ok: false; error: string };

/** Node flags that let a forked child run our TypeScript sources. */
export function tsxExecArgv(extra: readonly string[] = []): string[] {
  const loader = createRequire(import.meta.url).resolve("tsx");
  return ["--import", pathToFileURL(loader).href, ...extra];
}

export interface ChildHandle<Ready> {
  readonly name: string;
  readonly pid: number;
  /** What the child announced once it was ready. */
  readonly ready: Ready;
  request<T>(body: unknown, timeoutMs?: number): Promise<T>;
  /** Asks the child to finish (it receives a disconnect), kills it after `timeoutMs`. Idempotent. */
  close(timeoutMs?: number): Promise<void>;
}

export interface StartChildOptions {
  /** Shown in errors. */
  name: string;
  /** Extra Node flags (e.g. --expose-gc, --cpu-prof). */
  nodeFlags?: readonly string[];
  args?: readonly string[];
  startTimeoutMs?: number;
}

export async function startChild<Ready>(
  modulePath: string,
  options: StartChildOptions,
): Promise<ChildHandle<Ready>> {
  const child: ChildProcess = fork(modulePath, [...(options.args ?? [])], {
    execArgv: tsxExecArgv(options.nodeFlags),
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  // A crashed or interrupted parent must not leave generators and agents behind.
  const killOnExit = () => child.kill("SIGKILL");
  process.on("exit", killOnExit);
  // An IPC write to a child that just died (EPIPE) must not crash the parent.
  child.on("error", () => {});
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  let nextId = 1;
  let exited = false;
  const exit = new Promise<void>((resolve) => {
    child.once("exit", (code, signal) => {
      exited = true;
      process.off("exit", killOnExit);
      for (const p of pending.values()) {
        p.reject(new Error(`${options.name} exited (code ${code}, signal ${signal})`));
      }
      pending.clear();
      resolve();
    });
  });

  const ready = await new Promise<Ready>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(
        new Error(`${options.name} did not start within ${options.startTimeoutMs ?? 30_000} ms`),
      );
    }, options.startTimeoutMs ?? 30_000);
    child.on("message", (m: ChildEnvelope) => {
      if ("ready" in m) {
        clearTimeout(timer);
        resolve(m.ready as Ready);
        return;
      }
      const p = pending.get(m.id);
      if (!p) return;
      pending.delete(m.id);
      if (m.ok) p.resolve(m.value);
      else p.reject(new Error(`${options.name}: ${m.error}`));
    });
    void exit.then(() => {
      clearTimeout(timer);
      reject(new Error(`${options.name} exited before it was ready`));
    });
  });

  let closing: Promise<void> | undefined;
  return {
    name: options.name,
    pid: child.pid ?? -1,
    ready,
    request<T>(body: unknown, timeoutMs = 120_000): Promise<T> {
      if (exited || closing) return Promise.reject(new Error(`${options.name} is not running`));
      const id = nextId++;
      return new Promise<T>((resolve, reject) => {
        const timer = setTimeout(() => {
          pending.delete(id);
          reject(new Error(`${options.name} did not answer within ${timeoutMs} ms`));
        }, timeoutMs);
        pending.set(id, {
          resolve: (v) => {
            clearTimeout(timer);
            resolve(v as T);
          },
          reject: (e) => {
            clearTimeout(timer);
            reject(e);
          },
        });
        const envelope: RequestEnvelope = { id, body };
        child.send(envelope, (err) => {
          if (err) pending.get(id)?.reject(err);
        });
      });
    },
    close(timeoutMs = 10_000) {
      closing ??= (async () => {
        if (exited) return;
        if (child.connected) child.disconnect();
        const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
        await exit;
        clearTimeout(timer);
      })();
      return closing;
    },
  };
}

export interface ChildServer {
  /** Handles one request from the parent; the resolved value is sent back. */
  handle(body: unknown): unknown;
  /** Called once when the parent disconnects (close() or parent death); then the process exits. */
  close(): Promise<void> | void;
}

/** The child side: announces `ready`, answers requests, exits when the parent goes away. */
export function serveParent(ready: unknown, server: ChildServer): void {
  const reply = (m: ChildEnvelope) => {
    // The callback swallows EPIPE when the parent is already gone.
    if (process.connected) process.send?.(m, undefined, {}, (err) => void err);
  };
  process.on("message", (m: RequestEnvelope) => {
    Promise.resolve()
      .then(() => server.handle(m.body))
      .then(
        (value) => reply({ id: m.id, ok: true, value }),
        (err: unknown) =>
          reply({ id: m.id, ok: false, error: err instanceof Error ? err.message : String(err) }),
      );
  });
  let closing = false;
  process.on("disconnect", () => {
    if (closing) return;
    closing = true;
    // Give up on a stuck close rather than leave an orphan behind.
    setTimeout(() => process.exit(1), 5000).unref();
    Promise.resolve()
      .then(() => server.close())
      .then(
        () => process.exit(0),
        () => process.exit(1),
      );
  });
  // Ctrl-C reaches the whole process group: the parent decides when children stop.
  process.on("SIGINT", () => {});
  reply({ ready });
}
