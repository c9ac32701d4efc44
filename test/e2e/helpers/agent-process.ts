import { type ChildProcess, spawn } from "node:child_process";
import { createSocket } from "node:dgram";
import { fileURLToPath } from "node:url";
import { eventually } from "../../helpers/local-backends.ts";

/**
 * The edge agent as its own process (`npm run agent`: tsx edge-agent/main.ts), for tests that
 * kill it. It reads its cloud resources from the environment, like on ECS.
 */

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));

export interface AgentProcess {
  readonly pid: number;
  /** `host:port` from the agent's "edge agent listening" log line. */
  readonly signalling: string;
  /** Everything the agent wrote to stderr (its JSON log lines). */
  stderr(): string;
  /** Resolves with the exit code (or signal name) once the process is gone. */
  readonly exited: Promise<number | string>;
  /** SIGKILL (no shutdown at all) or SIGTERM (clean stop); resolves when it is gone. */
  kill(signal: "SIGKILL" | "SIGTERM"): Promise<number | string>;
}

/**
 * The variables the stacks give the agent on ECS (`platformEnv`: the local platform's cloud
 * variables, read by cloudConfigFromEnv), on loopback at signalling `port` with the other ports
 * picked by the system, a 1 s keepalive (offline after 3 missed) and the info log level (the
 * "edge agent listening" line `startAgentProcess` waits for). `extra` overrides any of them.
 */
export function agentProcessEnv(
  platformEnv: Readonly<Record<string, string | undefined>>,
  agentId: string,
  port: number,
  extra: Record<string, string> = {},
): Record<string, string | undefined> {
  return {
    ...process.env,
    ...platformEnv,
    EHOME_AGENT_ID: agentId,
    EHOME_HOST: "127.0.0.1",
    EHOME_SIGNAL_PORT: String(port),
    EHOME_ALARM_PORT: "0",
    EHOME_HTTP_PORT: "0",
    EHOME_KEEPALIVE_SECONDS: "1",
    EHOME_OFFLINE_AFTER_MISSED: "3",
    EHOME_LOG_LEVEL: "info",
    ...extra,
  };
}

/** Starts the agent and resolves once it listens; kills it if it does not within `timeoutMs`. */
export async function startAgentProcess(
  env: Record<string, string | undefined>,
  timeoutMs = 30_000,
): Promise<AgentProcess> {
  const proc: ChildProcess = spawn(process.execPath, ["--import", "tsx", "edge-agent/main.ts"], {
    cwd: ROOT,
    env,
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  proc.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = new Promise<number | string>((resolve) =>
    proc.once("exit", (code, signal) => resolve(code ?? signal ?? "unknown")),
  );
  let gone = false;
  void exited.then(() => {
    gone = true;
  });
  const kill = async (signal: "SIGKILL" | "SIGTERM") => {
    if (!gone) proc.kill(signal);
    return exited;
  };
  try {
    const ready = await eventually(
      async () => {
        if (gone) throw new Error(`agent exited before listening:\n${stderr.slice(-2000)}`);
        const line = stderr.split("\n").find((l) => l.includes('"edge agent listening"'));
        return line ? (JSON.parse(line) as { signalling: string }) : undefined;
      },
      { timeoutMs, intervalMs: 50 },
    );
    return { pid: proc.pid!, signalling: ready.signalling, stderr: () => stderr, exited, kill };
  } catch (err) {
    await kill("SIGKILL");
    throw err;
  }
}

/**
 * A UDP port that was free a moment ago. The restarted agent must come back on the port its
 * devices know (devices, like real ones, keep sending to the address they were given), so the
 * port is chosen once, here, instead of letting each start bind port 0.
 */
export function freeUdpPort(host = "127.0.0.1"): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = createSocket("udp4");
    socket.once("error", reject);
    socket.bind(0, host, () => {
      const { port } = socket.address();
      socket.close(() => resolve(port));
    });
  });
}
