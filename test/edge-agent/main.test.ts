import { type ChildProcess, spawn } from "node:child_process";
import { createRequire } from "node:module";
import { afterEach, describe, expect, it } from "vitest";
import { COMMANDS } from "../../edge-agent/signalling/catalogue.ts";
import { registerDatagram } from "./helpers/devices.ts";
import { createUdpDevice, type UdpDevice } from "./helpers/udp-device.ts";

const require = createRequire(import.meta.url);
const tsx = require.resolve("tsx");
const main = new URL("../../edge-agent/main.ts", import.meta.url).pathname;

let child: ChildProcess | undefined;
let dev: UdpDevice | undefined;
afterEach(async () => {
  await dev?.close();
  dev = undefined;
  if (child && child.exitCode === null) child.kill("SIGKILL");
  child = undefined;
});

function run(env: Record<string, string>) {
  const p = spawn(process.execPath, ["--import", tsx, main], {
    env: { PATH: process.env.PATH ?? "", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  child = p;
  let stdout = "";
  let stderr = "";
  p.stdout!.on("data", (d) => (stdout += d));
  p.stderr!.on("data", (d) => (stderr += d));
  const exited = new Promise<number | null>((r) => p.on("exit", (code) => r(code)));
  return {
    p,
    exited,
    out: () => stdout,
    err: () => stderr,
    async waitFor(pred: () => boolean, ms = 15_000) {
      const start = Date.now();
      while (!pred()) {
        if (Date.now() - start > ms) throw new Error(`timed out; stderr: ${stderr}`);
        if (p.exitCode !== null) throw new Error(`exited ${p.exitCode}; stderr: ${stderr}`);
        await new Promise((r) => setTimeout(r, 25));
      }
    },
  };
}

describe("npm run agent (edge-agent/main.ts)", () => {
  it("an invalid variable or file stops start-up with a message naming the variable", async () => {
    const r = run({ EHOME_KEEPALIVE_SECONDS: "soon" });
    expect(await r.exited).toBe(2);
    expect(r.err()).toContain("EHOME_KEEPALIVE_SECONDS");
    const f = run({
      EHOME_SIGNAL_PORT: "0",
      EHOME_ALARM_PORT: "0",
      EHOME_DIALECT_FILE: "/nonexistent/dialect.json",
    });
    expect(await f.exited).toBe(2);
    expect(f.err()).toContain("EHOME_DIALECT_FILE: /nonexistent/dialect.json: cannot read");
  });

  it("serves devices, logs events as JSON lines, and on SIGTERM marks devices offline (agent-shutdown)", async () => {
    const r = run({
      EHOME_HOST: "127.0.0.1",
      EHOME_SIGNAL_PORT: "0",
      EHOME_ALARM_PORT: "0",
      EHOME_HTTP_PORT: "0",
      EHOME_LEARN_DEVICES: "false",
    });
    await r.waitFor(() => r.err().includes("edge agent listening"));
    const line = r
      .err()
      .split("\n")
      .find((l) => l.includes("edge agent listening"))!;
    const port = Number((JSON.parse(line) as { signalling: string }).signalling.split(":")[1]);

    dev = await createUdpDevice({ host: "127.0.0.1", port });
    dev.send(registerDatagram({ deviceId: "cam-main", sequence: 1 }));
    expect(await dev.next(5000)).toMatchObject({
      status: 200,
      whichCommand: COMMANDS.register.command,
    });
    await r.waitFor(() => r.out().includes('"online"'));
    const http = (JSON.parse(line) as { http: string }).http;
    const health = await fetch(`http://${http}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ ok: true, sessions: 1 });

    r.p.kill("SIGTERM");
    expect(await r.exited).toBe(0);
    const events = r
      .out()
      .split("\n")
      .filter(Boolean)
      .map((l) => (JSON.parse(l) as { event?: { type: string; reason?: string } }).event)
      .filter((e) => e !== undefined);
    expect(events.map((e) => e.type)).toEqual(["registered", "online", "offline"]);
    expect(events[2]!.reason).toBe("agent-shutdown");
  });
});
