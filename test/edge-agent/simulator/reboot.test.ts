import { describe, expect, it } from "vitest";
import { DEFAULT_VIEW } from "../../../edge-agent/signalling/catalogue.ts";
import { sleep, useHarness } from "./harness.ts";

const c = DEFAULT_VIEW.commands;

describe("simulator reboot and upgrade (ehome-2.0 §8 REBOOT, UPDATE; §6 completion signal)", () => {
  const harness = useHarness();

  it("answers REBOOT 200, goes silent for rebootMs, then registers again", async () => {
    const { platform, sim } = await harness(
      { devices: 1, rebootMs: 300 },
      { keepAliveSeconds: "0.05" },
    );
    const states: string[] = [];
    sim.on("state", (e) => states.push(e.to));
    await sim.start();
    await sim.waitFor("all-online", 2000);
    const d = sim.devices[0]!;
    const r = await platform.request(d.id, "reboot");
    expect(r.status).toBe(200);
    expect(r.whichCommand).toBe(c.reboot.command);
    expect(d.state).toBe("rebooting");
    const silentFrom = platform.received.length;
    // A request during the reboot is not answered.
    await expect(platform.request(d.id, "getWorkStatus", {}, { timeoutMs: 150 })).rejects.toThrow();
    expect(platform.received.length).toBe(silentFrom);
    await sim.waitFor("all-online", 2000);
    const registers = platform.messages("register");
    expect(registers).toHaveLength(2);
    expect(registers[1]!.at - registers[0]!.at).toBeGreaterThanOrEqual(300);
    expect(states).toEqual(["registering", "online", "rebooting", "registering", "online"]);
    expect(sim.stats().reboots).toBe(1);
  });

  it("a REBOOT copy is answered once and reboots once", async () => {
    const { platform, sim } = await harness({ devices: 1, rebootMs: 100 });
    await sim.start();
    await sim.waitFor("all-online", 2000);
    const d = sim.devices[0]!;
    await platform.request(d.id, "reboot", {}, { copies: 3 });
    await sim.waitFor("all-online", 2000);
    expect(d.counters.reboots).toBe(1);
  });

  it("UPDATE is answered 200; after upgradeMs the device reboots and registers with the new FirmwareVersion", async () => {
    const { platform, sim } = await harness({
      devices: 1,
      upgradeMs: 100,
      rebootMs: 100,
      firmwareVersion: "V5.5.0 build 180101",
    });
    await sim.start();
    await sim.waitFor("all-online", 2000);
    const d = sim.devices[0]!;
    const r = await platform.request(d.id, "update", {
      url: "http://127.0.0.1:8080/fw/token",
      fileSize: 1234,
      version: "V5.6.0 build 200101",
    });
    expect(r.status).toBe(200);
    expect(d.firmwareVersion).toBe("V5.5.0 build 180101");
    await sim.waitFor(() => d.counters.registrations === 2, 3000);
    expect(d.firmwareVersion).toBe("V5.6.0 build 200101");
    expect(platform.messages("register").map((m) => m.firmwareVersion)).toEqual([
      "V5.5.0 build 180101",
      "V5.6.0 build 200101",
    ]);
    expect(sim.stats().firmwareChanges).toBe(1);
  });

  it("with upgradeMs -1 the new firmware waits for a REBOOT command", async () => {
    const { platform, sim } = await harness({ devices: 1, upgradeMs: -1, rebootMs: 50 });
    await sim.start();
    await sim.waitFor("all-online", 2000);
    const d = sim.devices[0]!;
    await platform.request(d.id, "update", { url: "http://x/fw/1", version: "V9" });
    await sleep(150);
    expect(d.state).toBe("online");
    await platform.request(d.id, "reboot");
    await sim.waitFor(() => d.counters.registrations === 2, 2000);
    expect(platform.sessions.get(d.id)?.firmwareVersion).toBe("V9");
  });

  it("UPDATE without a URL is refused", async () => {
    const { platform, sim } = await harness({ devices: 1 });
    await sim.start();
    await sim.waitFor("all-online", 2000);
    const r = await platform.request(sim.devices[0]!.id, "update", { version: "V9" });
    expect(r.status).toBe(400);
  });
});
