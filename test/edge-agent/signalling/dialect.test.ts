import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { COMMANDS, DEFAULT_VIEW } from "../../../edge-agent/signalling/catalogue.ts";
import { childText } from "../../../edge-agent/signalling/codec/index.ts";
import { loadDialectFile, parseDialect } from "../../../edge-agent/signalling/dialect.ts";
import { keepaliveDatagram, registerDatagram } from "../helpers/devices.ts";
import { type Harness, startHarness } from "../helpers/harness.ts";

const DEV = "10.1.1.1";
let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const doc = {
  profiles: [
    { match: { devType: "31" }, commands: { reboot: { command: "RESTART", method: "PARAM" } } },
    {
      match: { devType: "31", firmwarePrefix: "V5.4" },
      commands: {
        reboot: { command: "REBOOTDEVICE" },
        keepalive: { command: "HEARTBEAT" },
        ptzControl: { params: { ptzCmd: "PTZCommand" } },
      },
    },
  ],
};

describe("dialect file (ehome-2.0 §8 rule 2)", () => {
  it("refuses unknown catalogue ids and field keys, naming the path", () => {
    expect(() =>
      parseDialect({ profiles: [{ match: {}, commands: { nope: {} } }] }, "d.json"),
    ).toThrow("d.json: profiles[0].commands.nope: unknown catalogue command id");
    expect(() =>
      parseDialect(
        { profiles: [{ match: {}, commands: { ptzControl: { params: { bogus: "X" } } } }] },
        "d.json",
      ),
    ).toThrow("d.json: profiles[0].commands.ptzControl.params.bogus: unknown field key");
    expect(() =>
      parseDialect(
        { profiles: [{ match: {}, commands: { reboot: { command: "<bad>" } } }] },
        "d.json",
      ),
    ).toThrow(/d\.json: profiles\[0\]\.commands\.reboot\.command: /);
    expect(() =>
      parseDialect({ profiles: [{ match: { model: "x" }, commands: {} }] }, "d.json"),
    ).toThrow(/d\.json: profiles\[0\]\.match: /);
  });

  it("resolves views per DevType and firmware prefix, later profiles winning, cached per match set", () => {
    const d = parseDialect(doc, "d.json");
    expect(d.viewFor("99", "V5.4.1")).toBe(DEFAULT_VIEW);
    const v31 = d.viewFor("31", "V5.5.0");
    expect(v31.commands.reboot).toMatchObject({ command: "RESTART", method: "PARAM" });
    expect(v31.commands.keepalive.command).toBe(COMMANDS.keepalive.command);
    const v54 = d.viewFor("31", "V5.4.5 build 170302");
    expect(v54.commands.reboot).toMatchObject({ command: "REBOOTDEVICE", method: "PARAM" });
    expect(v54.commands.ptzControl.params).toMatchObject({
      ptzCmd: "PTZCommand",
      channel: "Channel",
    });
    expect(v54.byWireName.get("HEARTBEAT")).toBe("keepalive");
    expect(d.viewFor("31", "V5.4.9")).toBe(v54);
    // The catalogue itself is untouched.
    expect(COMMANDS.reboot.command).toBe("REBOOT");
  });

  it("loads from a file and reports unreadable or invalid JSON with the file name", async () => {
    const dir = await mkdtemp(join(tmpdir(), "dialect-"));
    try {
      const file = join(dir, "dialect.json");
      await writeFile(file, JSON.stringify(doc));
      expect((await loadDialectFile(file)).profiles).toHaveLength(2);
      await writeFile(file, "{ nope");
      await expect(loadDialectFile(file)).rejects.toThrow(`${file}: not JSON`);
      await expect(loadDialectFile(join(dir, "missing.json"))).rejects.toThrow("cannot read");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("the agent applies each device's dialect to commands it sends and messages it receives", async () => {
    h = await startHarness({}, { dialect: parseDialect(doc, "d.json") });
    h.transport.deliver(
      registerDatagram({ deviceId: "old", sequence: 1, devType: "31", firmwareVersion: "V5.4.5" }),
      DEV,
      40001,
    );
    h.transport.deliver(
      registerDatagram({ deviceId: "new", sequence: 1, devType: "31", firmwareVersion: "V5.6.0" }),
      DEV,
      40002,
    );
    h.transport.deliver(
      registerDatagram({ deviceId: "other", sequence: 1, devType: "12" }),
      DEV,
      40003,
    );

    void h.agent.commands.send("old", "reboot");
    void h.agent.commands.send("new", "reboot");
    void h.agent.commands.send("other", "reboot");
    void h.agent.commands.send("old", "ptzControl", {
      channel: 1,
      ptzCmd: "UP",
      action: "Start",
      speed: 1,
    });
    expect(h.requestsTo(40001)[0]).toMatchObject({ command: "REBOOTDEVICE" });
    expect(h.requestsTo(40001)[0]!.header.method).toBe("PARAM");
    expect(h.requestsTo(40002)[0]).toMatchObject({ command: "RESTART" });
    expect(h.requestsTo(40003)[0]).toMatchObject({ command: COMMANDS.reboot.command });
    expect(childText(h.requestsTo(40001).at(-1)!.params, "PTZCommand")).toBe("UP");

    // The renamed keepalive of the V5.4 device is understood (and answered under its name).
    h.transport.deliver(keepaliveDatagram("old", 2, "GB2312", "HEARTBEAT"), DEV, 40001);
    expect(h.lastResponse(40001)).toMatchObject({ status: 200, whichCommand: "HEARTBEAT" });
    expect(h.agent.metrics().keepalives).toBe(1);
    // ... even from a new address (NAT rebinding), found through its DeviceID.
    h.transport.deliver(keepaliveDatagram("old", 3, "GB2312", "HEARTBEAT"), DEV, 40009);
    expect(h.lastResponse(40009)).toMatchObject({ status: 200, whichCommand: "HEARTBEAT" });
    expect(h.agent.sessions.get("old")?.port).toBe(40009);
  });
});
