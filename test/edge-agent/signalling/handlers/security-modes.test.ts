import { createSocket, type Socket } from "node:dgram";
import { afterEach, describe, expect, it } from "vitest";
import { createEdgeAgent, type EdgeAgent } from "../../../../edge-agent/agent.ts";
import { loadConfig } from "../../../../edge-agent/config.ts";
import type { ProvisioningSource } from "../../../../edge-agent/ports.ts";
import { COMMANDS } from "../../../../edge-agent/signalling/catalogue.ts";
import {
  buildFields,
  type Message,
  type ResponseMessage,
} from "../../../../edge-agent/signalling/codec/index.ts";
import { createMemoryProvisioningSource } from "../../../../edge-agent/signalling/provisioning.ts";
import { createUdpTransport } from "../../../../edge-agent/signalling/server.ts";
import { DeviceEvent } from "../../../../lib/contracts/events.ts";
import {
  decodeAsDevice,
  deviceRequestDatagram,
  keepaliveDatagram,
  registerDatagram,
} from "../../helpers/devices.ts";

/**
 * Security modes of issue 7 (docs/SECURITY.md §3.1, §3.2), over real loopback UDP: a device on
 * 127.0.0.1 and an impersonator on 127.0.0.2 (Linux routes all of 127/8 to lo).
 *
 * - `EHOME_ADDRESS_BINDING=strict`: a KEEPALIVE or ALARM for a registered device from another
 *   address is answered 403 + Method REGISTER (as for an unknown device), counted, and moves
 *   nothing; a REGISTER (provisioning and password checked) still moves the device. `rebind`
 *   (the default) keeps following the observed address.
 * - A device with a stored password must send it: a REGISTER without one is refused 401
 *   (`EHOME_REQUIRE_PASSWORD`, default true; false restores "checked only when sent").
 */

let agent: EdgeAgent | undefined;
const sockets: Socket[] = [];
afterEach(async () => {
  await Promise.all(sockets.splice(0).map((s) => new Promise<void>((r) => s.close(() => r()))));
  await agent?.close();
  agent = undefined;
});

async function startAgent(env: Record<string, string>, provisioning?: ProvisioningSource) {
  const config = loadConfig({
    EHOME_HOST: "127.0.0.1",
    EHOME_SIGNAL_PORT: "0",
    EHOME_ALARM_PORT: "0",
    EHOME_LEARN_DEVICES: "false",
    EHOME_AGENT_ID: "security-modes",
    ...env,
  });
  const events: DeviceEvent[] = [];
  agent = createEdgeAgent(config, {
    transport: createUdpTransport({ host: config.host, port: config.signalPort }),
    events: { emit: (e) => void events.push(DeviceEvent.parse(e)) },
    ...(provisioning ? { provisioning } : {}),
  });
  await agent.start();
  return { agent, events, address: agent.signalAddress() };
}

interface Peer {
  readonly host: string;
  readonly port: number;
  send(bytes: Uint8Array): void;
  next(ms?: number): Promise<Message>;
}

/** A hand-rolled device socket bound to `host` (127.0.0.1 or 127.0.0.2). */
async function peer(host: string, agentAddress: { host: string; port: number }): Promise<Peer> {
  const socket = createSocket("udp4");
  sockets.push(socket);
  const inbox: Message[] = [];
  const waiters: Array<(m: Message) => void> = [];
  socket.on("message", (bytes) => {
    const m = decodeAsDevice(bytes);
    const w = waiters.shift();
    if (w) w(m);
    else inbox.push(m);
  });
  await new Promise<void>((r) => socket.bind(0, host, () => r()));
  return {
    host,
    port: socket.address().port,
    send: (bytes) => socket.send(bytes, agentAddress.port, agentAddress.host),
    next(ms = 2000) {
      const queued = inbox.shift();
      if (queued) return Promise.resolve(queued);
      return new Promise((resolve, reject) => {
        const w = (m: Message) => {
          clearTimeout(t);
          resolve(m);
        };
        const t = setTimeout(() => {
          waiters.splice(waiters.indexOf(w), 1);
          reject(new Error(`no datagram within ${ms} ms`));
        }, ms);
        waiters.push(w);
      });
    },
  };
}

const alarmDatagram = (deviceId: string, sequence: number) =>
  deviceRequestDatagram(
    COMMANDS.alarm.command,
    sequence,
    buildFields(COMMANDS.alarm.params, { deviceId, alarmType: 1 }),
  );

async function answer(p: Peer): Promise<ResponseMessage> {
  const m = await p.next();
  if (m.kind !== "response") throw new Error(`expected a response, got ${m.kind}`);
  return m;
}

describe("EHOME_ADDRESS_BINDING", () => {
  it("strict: a KEEPALIVE from another address is refused 403 + REGISTER and moves nothing; a REGISTER does move the device", async () => {
    const { agent, events, address } = await startAgent({ EHOME_ADDRESS_BINDING: "strict" });
    const device = await peer("127.0.0.1", address);
    const intruder = await peer("127.0.0.2", address);
    device.send(registerDatagram({ deviceId: "cam-s", sequence: 1 }));
    expect((await answer(device)).status).toBe(200);

    intruder.send(keepaliveDatagram("cam-s", 2));
    const refused = await answer(intruder);
    expect(refused).toMatchObject({ status: 403, whichCommand: COMMANDS.keepalive.command });
    expect(refused.header.method).toBe(COMMANDS.register.method);
    expect(agent.sessions.get("cam-s")).toMatchObject({ host: "127.0.0.1", port: device.port });
    // Another port on the session's own IP is another address too (a NAT port remap).
    const samehost = await peer("127.0.0.1", address);
    samehost.send(keepaliveDatagram("cam-s", 3));
    expect((await answer(samehost)).status).toBe(403);
    expect(agent.metrics()).toMatchObject({ keepalives_address_refused: 2, address_changes: 0 });
    expect(events.filter((e) => e.type === "address-changed")).toHaveLength(0);

    // The real device is still answered at its address.
    device.send(keepaliveDatagram("cam-s", 4));
    expect((await answer(device)).status).toBe(200);

    // A REGISTER from the new address (it passes provisioning and the password check) moves it.
    intruder.send(registerDatagram({ deviceId: "cam-s", sequence: 5 }));
    expect((await answer(intruder)).status).toBe(200);
    expect(agent.sessions.get("cam-s")).toMatchObject({ host: "127.0.0.2", port: intruder.port });
    expect(events.filter((e) => e.type === "address-changed")).toHaveLength(1);
    // From then on the old address is the stranger.
    device.send(keepaliveDatagram("cam-s", 6));
    expect((await answer(device)).status).toBe(403);
    intruder.send(keepaliveDatagram("cam-s", 7));
    expect((await answer(intruder)).status).toBe(200);
  });

  it("strict: an ALARM from another IP is refused 403 and not reported; from the session's IP (any port) it is accepted", async () => {
    const reports: string[] = [];
    const config = loadConfig({
      EHOME_HOST: "127.0.0.1",
      EHOME_SIGNAL_PORT: "0",
      EHOME_LEARN_DEVICES: "false",
      EHOME_AGENT_ID: "security-modes",
      EHOME_ADDRESS_BINDING: "strict",
    });
    agent = createEdgeAgent(config, {
      transport: createUdpTransport({ host: config.host, port: config.signalPort }),
      events: { emit: () => undefined },
      reports: { report: (r) => void reports.push(`${r.kind}:${r.deviceId}:${r.sequence}`) },
    });
    await agent.start();
    const address = agent.signalAddress();
    const device = await peer("127.0.0.1", address);
    const otherSocket = await peer("127.0.0.1", address);
    const intruder = await peer("127.0.0.2", address);
    device.send(registerDatagram({ deviceId: "cam-a", sequence: 1 }));
    expect((await answer(device)).status).toBe(200);

    intruder.send(alarmDatagram("cam-a", 10));
    const refused = await answer(intruder);
    expect(refused).toMatchObject({ status: 403, whichCommand: COMMANDS.alarm.command });
    expect(refused.header.method).toBe(COMMANDS.register.method);
    otherSocket.send(alarmDatagram("cam-a", 11));
    expect((await answer(otherSocket)).status).toBe(200);
    expect(reports).toEqual(["alarm:cam-a:11"]);
    expect(agent.metrics()).toMatchObject({ alarms_address_refused: 1, alarm_reports: 1 });
  });

  it("rebind (the default): a KEEPALIVE from a new address moves the session (NAT rebinding), an ALARM from another IP is accepted", async () => {
    const { agent, events, address } = await startAgent({});
    const device = await peer("127.0.0.1", address);
    const moved = await peer("127.0.0.2", address);
    device.send(registerDatagram({ deviceId: "cam-r", sequence: 1 }));
    expect((await answer(device)).status).toBe(200);
    moved.send(keepaliveDatagram("cam-r", 2));
    expect((await answer(moved)).status).toBe(200);
    expect(agent.sessions.get("cam-r")).toMatchObject({ host: "127.0.0.2", port: moved.port });
    expect(events.filter((e) => e.type === "address-changed")).toHaveLength(1);
    device.send(alarmDatagram("cam-r", 3));
    expect((await answer(device)).status).toBe(200);
    expect(agent.metrics()).toMatchObject({
      keepalives_address_refused: 0,
      alarms_address_refused: 0,
    });
  });

  it("refuses other values at start-up", () => {
    expect(() => loadConfig({ EHOME_ADDRESS_BINDING: "sticky" })).toThrow(/EHOME_ADDRESS_BINDING/);
    expect(loadConfig({ EHOME_ADDRESS_BINDING: "STRICT" }).addressBinding).toBe("strict");
    expect(loadConfig({}).addressBinding).toBe("rebind");
  });
});

describe("a stored password is required (memory provisioning source)", () => {
  const provisioning = () =>
    createMemoryProvisioningSource([
      { deviceId: "cam-pw", password: "s3cret" },
      { deviceId: "cam-open" },
    ]);

  it("refuses a REGISTER without the password (401), accepts the right one; devices without a password register as before", async () => {
    const { agent, events, address } = await startAgent(
      { EHOME_AUTO_PROVISION: "false" },
      provisioning(),
    );
    const device = await peer("127.0.0.1", address);
    device.send(registerDatagram({ deviceId: "cam-pw", sequence: 1 }));
    expect(await answer(device)).toMatchObject({ status: 401, description: "Password required" });
    expect(agent.sessions.get("cam-pw")).toBeUndefined();
    expect(events).toHaveLength(0);
    device.send(registerDatagram({ deviceId: "cam-pw", sequence: 2, password: "wrong" }));
    expect((await answer(device)).status).toBe(401);
    device.send(registerDatagram({ deviceId: "cam-pw", sequence: 3, password: "s3cret" }));
    expect((await answer(device)).status).toBe(200);
    const open = await peer("127.0.0.1", address);
    open.send(registerDatagram({ deviceId: "cam-open", sequence: 1 }));
    expect((await answer(open)).status).toBe(200);
    expect(agent.metrics()).toMatchObject({ registers_unauthorized: 2 });
  });

  it("a session cannot be taken over by a REGISTER that leaves the password out", async () => {
    const { agent, address } = await startAgent(
      { EHOME_AUTO_PROVISION: "false", EHOME_ADDRESS_BINDING: "strict" },
      provisioning(),
    );
    const device = await peer("127.0.0.1", address);
    const intruder = await peer("127.0.0.2", address);
    device.send(registerDatagram({ deviceId: "cam-pw", sequence: 1, password: "s3cret" }));
    expect((await answer(device)).status).toBe(200);
    intruder.send(registerDatagram({ deviceId: "cam-pw", sequence: 2 }));
    expect((await answer(intruder)).status).toBe(401);
    intruder.send(keepaliveDatagram("cam-pw", 3));
    expect((await answer(intruder)).status).toBe(403);
    expect(agent.sessions.get("cam-pw")).toMatchObject({ host: "127.0.0.1", port: device.port });
  });

  it("EHOME_REQUIRE_PASSWORD=false: checked only when sent (the earlier behaviour)", async () => {
    const { address } = await startAgent(
      { EHOME_AUTO_PROVISION: "false", EHOME_REQUIRE_PASSWORD: "false" },
      provisioning(),
    );
    const device = await peer("127.0.0.1", address);
    device.send(registerDatagram({ deviceId: "cam-pw", sequence: 1 }));
    expect((await answer(device)).status).toBe(200);
    device.send(registerDatagram({ deviceId: "cam-pw", sequence: 2, password: "wrong" }));
    expect((await answer(device)).status).toBe(401);
  });
});
