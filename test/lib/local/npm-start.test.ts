import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { createSocket } from "node:dgram";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { eventually } from "../../helpers/local-backends.ts";

// `npm start` (bin/local.ts) as a user runs it: a separate process, real ports, Ctrl-C.

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const TOKEN = "npm-start-test-token";

let child: ChildProcess | undefined;
let dataDir: string | undefined;

afterEach(async () => {
  if (child && child.exitCode === null) child.kill("SIGKILL");
  child = undefined;
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
  dataDir = undefined;
});

/** Processes whose command line mentions `needle` (DynamoDB Local names the data folder). */
function processesMentioning(needle: string): string[] {
  const out = execFileSync("ps", ["-eo", "pid=,args="], { encoding: "utf8" });
  return out.split("\n").filter((line) => line.includes(needle) && !line.includes("ps -eo"));
}

interface Ready {
  api: string;
  signalling: string;
  deviceHttp: string;
}

describe("npm start", () => {
  it("serves the API with the token, registers a device, routes a command to it, and Ctrl-C stops everything", async () => {
    dataDir = await mkdtemp(join(tmpdir(), "ehome-npm-start-"));
    const proc = spawn(process.execPath, ["--import", "tsx", "bin/local.ts"], {
      cwd: ROOT,
      env: {
        ...process.env,
        EHOME_DATA_DIR: dataDir,
        EHOME_API_PORT: "0",
        EHOME_API_TOKEN: TOKEN,
        EHOME_HOST: "127.0.0.1",
        EHOME_SIGNAL_PORT: "0",
        EHOME_HTTP_PORT: "0",
        EHOME_LOG_LEVEL: "info",
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    child = proc;
    let stderr = "";
    let stdout = "";
    proc.stderr?.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    proc.stdout?.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    const exited = new Promise<number | null>((resolve) => proc.once("exit", resolve));

    const ready = await eventually(
      async () => {
        const line = stderr.split("\n").find((l) => l.includes('"local platform ready"'));
        return line ? (JSON.parse(line) as Ready) : undefined;
      },
      { timeoutMs: 45_000, intervalMs: 100 },
    );
    expect(stdout).toContain(TOKEN);

    const denied = await fetch(`${ready.api}/devices`);
    expect(denied.status).toBe(401);
    // The agent's device-facing HTTP port answers the load balancer's health check.
    const health = await fetch(`http://${ready.deviceHttp}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ ok: true, agentId: "local" });

    const [host, port] = ready.signalling.split(":");
    const register = await readFile(
      join(ROOT, "test/fixtures/datagrams/register-gb2312-chinese-comments.bin"),
    );
    // The test socket plays the device: it registers, then receives what the agent sends it.
    const socket = createSocket("udp4");
    let datagrams = 0;
    socket.on("message", () => {
      datagrams++;
    });
    socket.send(register, Number(port), host);
    await eventually(async () => (datagrams > 0 ? true : undefined));

    // REGISTER → agent → device-events queue → registry poller → DynamoDB → API.
    const device = await eventually(async () => {
      const res = await fetch(`${ready.api}/devices`, {
        headers: { authorization: `Bearer ${TOKEN}` },
      });
      const body = (await res.json()) as { items: { deviceId: string; status: string }[] };
      return body.items.find((d) => d.deviceId === "0012");
    });
    expect(device.status).toBe("online");

    // API → commands table → agent command queue (agents table) → agent → device socket.
    const before = datagrams;
    const command = await fetch(`${ready.api}/devices/0012/commands?wait=1`, {
      method: "POST",
      headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify({ type: "reboot" }),
    });
    expect(command.status).toBe(202);
    expect(await command.json()).toMatchObject({ deviceId: "0012", agentId: "local" });
    await eventually(async () => (datagrams > before ? true : undefined));
    socket.close();
    expect(processesMentioning(dataDir).length).toBeGreaterThan(0);

    proc.kill("SIGINT");

    expect(await exited).toBe(0);
    await eventually(async () => (processesMentioning(dataDir!).length === 0 ? true : undefined));
  }, 90_000);
});
