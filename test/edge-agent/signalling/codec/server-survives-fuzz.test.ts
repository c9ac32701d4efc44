/**
 * The server keeps answering (issue 2, architecture §6): a real agent on loopback UDP takes a few
 * thousand mutated datagrams, none of which crashes a handler, and then still answers a valid
 * REGISTER and KEEPALIVE (ehome-2.0 §2.1, §2.2) and re-registers an unknown device with 403.
 */
import { createSocket, type Socket } from "node:dgram";
import { afterEach, describe, expect, it } from "vitest";
import { createEdgeAgent, type EdgeAgent } from "../../../../edge-agent/agent.ts";
import { loadConfig } from "../../../../edge-agent/config.ts";
import { COMMANDS, ENVELOPE } from "../../../../edge-agent/signalling/catalogue.ts";
import {
  buildFields,
  decode,
  encode,
  type ResponseMessage,
  type XmlElement,
} from "../../../../edge-agent/signalling/codec/index.ts";
import { createUdpTransport } from "../../../../edge-agent/signalling/server.ts";
import { createMutantSource } from "../../../fixtures/datagrams/fuzz.ts";

const MUTANTS = 3_000;
/** Largest UDP payload over IPv4; bigger mutants cannot be sent at all. */
const MAX_UDP_PAYLOAD = 65_507;
const BATCH = 16;

interface Client {
  socket: Socket;
  port: number;
  responses: ResponseMessage[];
}

const open: Array<{ close(): unknown }> = [];

afterEach(async () => {
  for (const o of open.splice(0).reverse()) await o.close();
});

async function startAgent(): Promise<EdgeAgent> {
  const config = loadConfig(
    {
      EHOME_AGENT_ID: "agent-fuzz",
      EHOME_HOST: "127.0.0.1",
      EHOME_AUTO_PROVISION: "true",
      EHOME_LEARN_DEVICES: "false",
    },
    { hostname: "test", pid: 1 },
  );
  const agent = createEdgeAgent(config, {
    transport: createUdpTransport({ host: "127.0.0.1", port: 0 }),
    events: { emit: () => undefined },
  });
  open.push(agent);
  await agent.start();
  return agent;
}

async function startClient(): Promise<Client> {
  const socket = createSocket("udp4");
  const responses: ResponseMessage[] = [];
  socket.on("message", (msg) => {
    const r = decode(msg, { role: "device" });
    if (r.ok && r.message.kind === "response") responses.push(r.message);
  });
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
  open.push({ close: () => new Promise<void>((resolve) => socket.close(() => resolve())) });
  return { socket, port: socket.address().port, responses };
}

function send(client: Client, bytes: Uint8Array, port: number): Promise<void> {
  return new Promise((resolve, reject) =>
    client.socket.send(bytes, port, "127.0.0.1", (err) => (err ? reject(err) : resolve())),
  );
}

/** Polls until `check` holds, yielding to the event loop (the agent runs in this process). */
async function until(check: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

function deviceRequest(command: string, sequence: number, params: XmlElement): Buffer {
  const r = encode(
    { kind: "request", version: ENVELOPE.deviceVersion, sequence, command, params },
    { encoding: "GB2312" },
  );
  if (!r.ok) throw new Error(r.error.code);
  return r.bytes;
}

const register = (deviceId: string, sequence: number) =>
  deviceRequest(
    COMMANDS.register.command,
    sequence,
    buildFields(COMMANDS.register.params, { netUnitType: "PU", deviceId, devType: 31 }),
  );
const keepalive = (deviceId: string, sequence: number) =>
  deviceRequest(
    COMMANDS.keepalive.command,
    sequence,
    buildFields(COMMANDS.keepalive.params, { deviceId }),
  );

async function answer(
  client: Client,
  bytes: Buffer,
  agentPort: number,
  whichCommand: string,
  sequence: number,
): Promise<ResponseMessage> {
  await send(client, bytes, agentPort);
  let found: ResponseMessage | undefined;
  await until(() => {
    found = client.responses.find(
      (r) => r.whichCommand === whichCommand && r.header.sequence === sequence,
    );
    return found !== undefined;
  }, `${whichCommand} ${sequence} answered`);
  return found!;
}

describe("signalling server under fuzz (loopback UDP)", () => {
  it(`keeps answering REGISTER and KEEPALIVE after ${MUTANTS} mutated datagrams`, async () => {
    const agent = await startAgent();
    const agentPort = agent.signalAddress().port;
    const fuzzer = await startClient();
    const device = await startClient();
    const source = createMutantSource(0xf022);

    let sent = 0;
    for (let i = 0; i < MUTANTS; i++) {
      const bytes = source.next();
      if (bytes.length > MAX_UDP_PAYLOAD) continue;
      await send(fuzzer, bytes, agentPort);
      sent++;
      if (sent % BATCH === 0) {
        // Let the agent drain its socket so the kernel buffer never drops a mutant.
        const target = sent;
        await until(() => agent.metrics().datagrams_in! >= target, "agent to read the batch");
      }
      if (i === MUTANTS / 2) {
        // Halfway through the barrage a real device is still served.
        const mid = await answer(device, register("mid-fuzz", 70), agentPort, "REGISTER", 70);
        expect(mid.status).toBe(200);
        sent += 1;
      }
    }
    await until(() => agent.metrics().datagrams_in! >= sent, "agent to read every mutant");

    const m = agent.metrics();
    expect(m.datagrams_in).toBe(sent);
    expect(m.handler_errors).toBe(0);
    expect(m.decode_errors! + m.datagrams_oversize!).toBeGreaterThan(sent / 2);
    // Some mutants decoded and went through the handlers (and the agent answered them).
    const handlerCounters = [
      "registers",
      "keepalives",
      "keepalives_unknown",
      "gps_reports",
      "alarm_reports",
      "device_requests",
      "responses_unmatched",
      "platform_requests_ignored",
    ];
    const handled = handlerCounters.reduce((n, k) => n + (m[k] ?? 0), 0);
    expect(handled).toBeGreaterThan(0);
    expect(m.datagrams_out).toBeGreaterThan(0);

    const registered = await answer(device, register("alive-1", 500), agentPort, "REGISTER", 500);
    expect(registered).toMatchObject({
      status: 200,
      header: { method: COMMANDS.register.method, encoding: "GB2312" },
    });
    expect(agent.sessions.get("alive-1")).toBeDefined();

    const kept = await answer(device, keepalive("alive-1", 501), agentPort, "KEEPALIVE", 501);
    expect(kept).toMatchObject({ status: 200, header: { method: COMMANDS.keepalive.method } });

    const stranger = await answer(
      device,
      keepalive("never-registered", 9),
      agentPort,
      "KEEPALIVE",
      9,
    );
    expect(stranger).toMatchObject({ status: 403, header: { method: COMMANDS.register.method } });
  });
});
