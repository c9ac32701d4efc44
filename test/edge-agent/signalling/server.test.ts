import { createSocket } from "node:dgram";
import { afterEach, describe, expect, it } from "vitest";
import { createEdgeAgent, type EdgeAgent } from "../../../edge-agent/agent.ts";
import { loadConfig } from "../../../edge-agent/config.ts";
import { COMMANDS } from "../../../edge-agent/signalling/catalogue.ts";
import type {
  PlatformRequestMessage,
  ResponseMessage,
} from "../../../edge-agent/signalling/codec/index.ts";
import { createUdpTransport } from "../../../edge-agent/signalling/server.ts";
import { DeviceEvent } from "../../../lib/contracts/events.ts";
import { keepaliveDatagram, registerDatagram, responseDatagram } from "../helpers/devices.ts";
import { createUdpDevice, type UdpDevice } from "../helpers/udp-device.ts";

let agent: EdgeAgent | undefined;
const devices: UdpDevice[] = [];
afterEach(async () => {
  await Promise.all(devices.splice(0).map((d) => d.close()));
  await agent?.close();
  agent = undefined;
});

async function startAgent(env: Record<string, string> = {}) {
  const config = loadConfig({
    EHOME_HOST: "127.0.0.1",
    EHOME_SIGNAL_PORT: "0",
    EHOME_LEARN_DEVICES: "false",
    EHOME_AGENT_ID: "loopback",
    ...env,
  });
  const events: DeviceEvent[] = [];
  agent = createEdgeAgent(config, {
    transport: createUdpTransport({ host: config.host, port: config.signalPort }),
    events: { emit: (e) => void events.push(DeviceEvent.parse(e)) },
  });
  await agent.start();
  return { agent, events, address: agent.signalAddress() };
}

async function device(address: { host: string; port: number }) {
  const d = await createUdpDevice(address);
  devices.push(d);
  return d;
}

describe("signalling server over loopback UDP", () => {
  it("registers hand-rolled devices at their observed ports, answers keepalives, and 403s strangers", async () => {
    const { agent, events, address } = await startAgent();
    expect(address.port).toBeGreaterThan(0);
    const [a, b, stranger] = await Promise.all([device(address), device(address), device(address)]);

    a.send(registerDatagram({ deviceId: "cam-a", sequence: 1 }));
    b.send(registerDatagram({ deviceId: "cam-b", sequence: 1, encoding: "UTF-8" }));
    const ra = (await a.next()) as ResponseMessage;
    const rb = (await b.next()) as ResponseMessage;
    expect([ra.status, rb.status]).toEqual([200, 200]);
    expect(rb.header.encoding).toBe("UTF-8");
    expect(agent.sessions.get("cam-a")).toMatchObject({ host: "127.0.0.1", port: a.port });
    expect(agent.sessions.get("cam-b")).toMatchObject({ port: b.port });

    a.send(keepaliveDatagram("cam-a", 2));
    expect(await a.next()).toMatchObject({
      kind: "response",
      status: 200,
      whichCommand: COMMANDS.keepalive.command,
    });

    stranger.send(keepaliveDatagram("nobody", 9));
    const r403 = (await stranger.next()) as ResponseMessage;
    expect(r403.status).toBe(403);
    expect(r403.header.method).toBe(COMMANDS.register.method);
    expect(events.filter((e) => e.type === "online")).toHaveLength(2);
  });

  it("round-trips a command: request to the device's port, answer matched", async () => {
    const { agent, address } = await startAgent();
    const d = await device(address);
    d.send(registerDatagram({ deviceId: "cam-c", sequence: 1 }));
    await d.next();
    const result = agent.commands.send("cam-c", "reboot");
    const req = (await d.next()) as PlatformRequestMessage;
    expect(req).toMatchObject({ kind: "platform-request", command: COMMANDS.reboot.command });
    d.send(responseDatagram(req.header.sequence, req.command));
    await expect(result).resolves.toMatchObject({ kind: "ok", status: 200 });
  });

  it("refuses oversize datagrams and survives garbage", async () => {
    const { agent, address } = await startAgent({ EHOME_MAX_DATAGRAM_BYTES: "1024" });
    const d = await device(address);
    d.send(Buffer.alloc(4000, 0x3c));
    d.send(Buffer.from("<PPVSPMessage>"));
    d.send(registerDatagram({ deviceId: "cam-g", sequence: 1 }));
    expect(await d.next()).toMatchObject({ status: 200 });
    expect(agent.metrics()).toMatchObject({ datagrams_oversize: 1, decode_errors: 1 });
  });

  it("expires a device that stops sending keepalives (shortened timers)", async () => {
    const { agent, events, address } = await startAgent({
      EHOME_KEEPALIVE_SECONDS: "1",
      EHOME_OFFLINE_AFTER_MISSED: "1",
    });
    const d = await device(address);
    d.send(registerDatagram({ deviceId: "cam-e", sequence: 1 }));
    await d.next();
    const start = Date.now();
    while (agent.sessions.get("cam-e") && Date.now() - start < 5000) {
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(agent.sessions.get("cam-e")).toBeUndefined();
    // Not before the deadline (1 s), and within two wheel ticks of it (plus scheduling slack).
    expect(Date.now() - start).toBeGreaterThanOrEqual(950);
    expect(events.filter((e) => e.type === "offline")).toEqual([
      expect.objectContaining({ deviceId: "cam-e", reason: "keepalive-timeout" }),
    ]);
  });

  it("binding a port in use fails start()", async () => {
    const blocker = createSocket("udp4");
    await new Promise<void>((r) => blocker.bind(0, "127.0.0.1", () => r()));
    try {
      const transport = createUdpTransport({ host: "127.0.0.1", port: blocker.address().port });
      await expect(
        transport.start({ onDatagram: () => {}, onSendError: () => {} }),
      ).rejects.toThrow(/EADDRINUSE/);
      await transport.close();
    } finally {
      await new Promise<void>((r) => blocker.close(() => r()));
    }
  });
});
