import { afterEach, describe, expect, it } from "vitest";
import { COMMANDS } from "../../../../edge-agent/signalling/catalogue.ts";
import { childText, type ResponseMessage } from "../../../../edge-agent/signalling/codec/index.ts";
import { createMemoryProvisioningSource } from "../../../../edge-agent/signalling/provisioning.ts";
import { registerDatagram } from "../../helpers/devices.ts";
import { type Harness, startHarness } from "../../helpers/harness.ts";

const DEV = "10.1.1.1";
let h: Harness;
afterEach(() => h?.close());

const reply = COMMANDS.register.reply;

describe("REGISTER (ehome-2.0 §2.1)", () => {
  it("creates a session at the observed source address, never LocalIP, and answers 200 with the servers", async () => {
    h = await startHarness({
      EHOME_PUBLIC_HOST: "203.0.113.10",
      EHOME_ALARM_PORT: "7332",
      EHOME_HTTP_PORT: "8660",
      EHOME_KEEPALIVE_SECONDS: "20",
      EHOME_NTP_HOST: "203.0.113.99",
      EHOME_NTP_PORT: "1123",
    });
    h.transport.deliver(
      registerDatagram({ deviceId: "cam-1", sequence: 100, localIp: "192.168.9.9" }),
      DEV,
      40001,
    );

    const r = h.lastResponse(40001);
    expect(r.header.sequence).toBe(100);
    expect(r.header.method).toBe(COMMANDS.register.method);
    expect(r.whichCommand).toBe(COMMANDS.register.command);
    expect(r.status).toBe(200);
    expect(r.header.encoding).toBe("GB2312");
    expect(childText(r.params, reply.keepAliveSeconds)).toBe("20");
    expect(childText(r.params, reply.alarmServerIp)).toBe("203.0.113.10");
    expect(childText(r.params, reply.alarmServerPort)).toBe("7332");
    expect(childText(r.params, reply.ntpServerIp)).toBe("203.0.113.99");
    expect(childText(r.params, reply.ntpServerPort)).toBe("1123");
    expect(childText(r.params, reply.pictureServer)).toBe("203.0.113.10");
    expect(childText(r.params, reply.pictureServerPort)).toBe("8660");
    expect(childText(r.params, reply.blackListPort)).toBe("0");
    expect(childText(r.params, reply.registerServerIp)).toBe("");
    // Exact field order of FE ResRegister, as the catalogue lists it.
    expect(Object.keys(r.params)).toEqual(Object.values(reply));

    const s = h.agent.sessions.get("cam-1");
    expect(s).toMatchObject({
      host: DEV,
      port: 40001,
      firmwareVersion: "V5.5.0 build 180101",
      devType: "31",
    });
    expect(h.eventsOf("registered", "cam-1")).toHaveLength(1);
    expect(h.eventsOf("registered")[0]).toMatchObject({ address: `${DEV}:40001`, devType: "31" });
    expect(h.eventsOf("online", "cam-1")).toHaveLength(1);
  });

  it("answers each device in the encoding it used", async () => {
    h = await startHarness();
    h.transport.deliver(
      registerDatagram({ deviceId: "cam-u", sequence: 1, encoding: "UTF-8" }),
      DEV,
      40002,
    );
    expect(h.lastResponse(40002).header.encoding).toBe("UTF-8");
  });

  it("answers a duplicate REGISTER (same DeviceID + Sequence) again but acts on it once", async () => {
    h = await startHarness();
    const d = registerDatagram({ deviceId: "cam-d", sequence: 7 });
    h.transport.deliver(d, DEV, 40003);
    const first = h.agent.sessions.get("cam-d");
    h.transport.deliver(d, DEV, 40003);

    const responses = h.sentTo(40003).filter((m): m is ResponseMessage => m.kind === "response");
    expect(responses).toHaveLength(2);
    expect(responses.map((r) => [r.header.sequence, r.status])).toEqual([
      [7, 200],
      [7, 200],
    ]);
    expect(h.agent.sessions.get("cam-d")).toBe(first);
    expect(h.eventsOf("registered", "cam-d")).toHaveLength(1);
    expect(h.agent.metrics().registers_duplicate).toBe(1);
  });

  it("a re-register from a new address replaces the session and emits address-changed", async () => {
    h = await startHarness();
    h.transport.deliver(registerDatagram({ deviceId: "cam-m", sequence: 1 }), DEV, 40004);
    const old = h.agent.sessions.get("cam-m");
    h.transport.deliver(registerDatagram({ deviceId: "cam-m", sequence: 2 }), "10.2.2.2", 50000);

    const s = h.agent.sessions.get("cam-m");
    expect(s).not.toBe(old);
    expect(s).toMatchObject({ host: "10.2.2.2", port: 50000 });
    expect(h.agent.sessions.size).toBe(1);
    expect(h.eventsOf("address-changed", "cam-m")).toEqual([
      expect.objectContaining({ address: "10.2.2.2:50000", previousAddress: `${DEV}:40004` }),
    ]);
    expect(h.eventsOf("online", "cam-m")).toHaveLength(1);
    expect(h.eventsOf("offline", "cam-m")).toHaveLength(0);
  });

  it("a re-register with a new FirmwareVersion emits firmware-changed", async () => {
    h = await startHarness();
    h.transport.deliver(
      registerDatagram({ deviceId: "cam-f", sequence: 1, firmwareVersion: "V5.4.0" }),
      DEV,
      40005,
    );
    h.transport.deliver(
      registerDatagram({ deviceId: "cam-f", sequence: 2, firmwareVersion: "V5.5.0" }),
      DEV,
      40005,
    );
    expect(h.eventsOf("firmware-changed", "cam-f")).toEqual([
      expect.objectContaining({ firmwareVersion: "V5.5.0", previousFirmwareVersion: "V5.4.0" }),
    ]);
    expect(h.eventsOf("address-changed", "cam-f")).toHaveLength(0);
  });
});

describe("provisioning (issue 2 item 5)", () => {
  it("refuses a device not in the allowlist with 403 and no Params, counts it, and creates no session", async () => {
    const lines: string[] = [];
    const { createLogger } = await import("../../../../edge-agent/log.ts");
    h = await startHarness(
      { EHOME_AUTO_PROVISION: "false" },
      {
        provisioning: createMemoryProvisioningSource([{ deviceId: "known" }]),
        log: createLogger({ level: "warn", write: (l) => lines.push(l) }),
      },
    );
    h.transport.deliver(registerDatagram({ deviceId: "stranger", sequence: 5 }), DEV, 40010);
    h.transport.deliver(registerDatagram({ deviceId: "stranger", sequence: 6 }), DEV, 40010);

    const r = h.lastResponse(40010);
    expect(r).toMatchObject({ status: 403, whichCommand: COMMANDS.register.command });
    expect(r.header.sequence).toBe(6);
    expect(r.params).toEqual({});
    expect(h.agent.sessions.get("stranger")).toBeUndefined();
    expect(h.agent.metrics().registers_refused).toBe(2);
    expect(h.events).toHaveLength(0);
    // Logged once per source per interval, not once per datagram.
    expect(lines.filter((l) => l.includes("not provisioned"))).toHaveLength(1);

    h.transport.deliver(registerDatagram({ deviceId: "known", sequence: 1 }), DEV, 40011);
    expect(h.lastResponse(40011).status).toBe(200);
  });

  it("auto-provisioning admits unlisted devices but an explicit allowed:false still refuses", async () => {
    h = await startHarness(
      { EHOME_AUTO_PROVISION: "true" },
      { provisioning: createMemoryProvisioningSource([{ deviceId: "banned", allowed: false }]) },
    );
    h.transport.deliver(registerDatagram({ deviceId: "anyone", sequence: 1 }), DEV, 40012);
    h.transport.deliver(registerDatagram({ deviceId: "banned", sequence: 1 }), DEV, 40013);
    expect(h.lastResponse(40012).status).toBe(200);
    expect(h.lastResponse(40013).status).toBe(403);
  });

  it("checks the password when the device sends one: mismatch → 401", async () => {
    h = await startHarness(
      { EHOME_AUTO_PROVISION: "false" },
      { provisioning: createMemoryProvisioningSource([{ deviceId: "cam-p", password: "s3cret" }]) },
    );
    h.transport.deliver(
      registerDatagram({ deviceId: "cam-p", sequence: 1, password: "wrong" }),
      DEV,
      40014,
    );
    expect(h.lastResponse(40014)).toMatchObject({ status: 401 });
    expect(h.agent.sessions.get("cam-p")).toBeUndefined();
    expect(h.agent.metrics().registers_unauthorized).toBe(1);

    h.transport.deliver(
      registerDatagram({ deviceId: "cam-p", sequence: 2, password: "s3cret" }),
      DEV,
      40014,
    );
    expect(h.lastResponse(40014).status).toBe(200);
    // A device with a stored password must send it (EHOME_REQUIRE_PASSWORD, issue 7; the
    // variable set to false accepts it: test/edge-agent/signalling/handlers/security-modes.test.ts).
    h.transport.deliver(registerDatagram({ deviceId: "cam-p", sequence: 3 }), DEV, 40015);
    expect(h.lastResponse(40015)).toMatchObject({ status: 401, description: "Password required" });
  });

  it("lets a hash-only source verify the password asynchronously: mismatch → 401, match → 200", async () => {
    const checked: string[] = [];
    h = await startHarness(
      { EHOME_AUTO_PROVISION: "false" },
      {
        provisioning: {
          lookup: () => ({ allowed: true }),
          verifyPassword: async (deviceId, password) => {
            checked.push(`${deviceId}:${password}`);
            return password === "s3cret";
          },
        },
      },
    );
    h.transport.deliver(
      registerDatagram({ deviceId: "cam-h", sequence: 1, password: "wrong" }),
      DEV,
      40016,
    );
    await new Promise((r) => setImmediate(r));
    expect(h.lastResponse(40016).status).toBe(401);
    expect(h.agent.sessions.get("cam-h")).toBeUndefined();

    h.transport.deliver(
      registerDatagram({ deviceId: "cam-h", sequence: 2, password: "s3cret" }),
      DEV,
      40016,
    );
    await new Promise((r) => setImmediate(r));
    expect(h.lastResponse(40016).status).toBe(200);
    expect(h.agent.sessions.get("cam-h")).toBeDefined();
    expect(checked).toEqual(["cam-h:wrong", "cam-h:s3cret"]);
  });

  it("waits for an asynchronous provisioning source and answers once it decides", async () => {
    let release: (v: { allowed: boolean }) => void = () => {};
    h = await startHarness(
      { EHOME_AUTO_PROVISION: "false" },
      {
        provisioning: {
          lookup: () =>
            new Promise((r) => {
              release = r;
            }),
        },
      },
    );
    const d = registerDatagram({ deviceId: "cam-a", sequence: 9 });
    h.transport.deliver(d, DEV, 40016);
    h.transport.deliver(d, DEV, 40016); // duplicate while the lookup is in flight
    expect(h.sentTo(40016)).toHaveLength(0);
    release({ allowed: true });
    await new Promise((r) => setImmediate(r));
    expect(h.sentTo(40016)).toHaveLength(1);
    expect(h.agent.sessions.get("cam-a")).toBeDefined();
    expect(h.eventsOf("registered")).toHaveLength(1);
  });

  it("a device deprovisioned while online is dropped with reason deprovisioned", async () => {
    const source = createMemoryProvisioningSource([{ deviceId: "cam-x" }]);
    h = await startHarness({ EHOME_AUTO_PROVISION: "false" }, { provisioning: source });
    h.transport.deliver(registerDatagram({ deviceId: "cam-x", sequence: 1 }), DEV, 40017);
    expect(await h.agent.provisioningChanged("cam-x")).toBe(false);
    source.update("cam-x", { allowed: false });
    expect(await h.agent.provisioningChanged("cam-x")).toBe(true);
    expect(h.agent.sessions.get("cam-x")).toBeUndefined();
    expect(h.eventsOf("offline", "cam-x")).toEqual([
      expect.objectContaining({ reason: "deprovisioned" }),
    ]);
  });
});
