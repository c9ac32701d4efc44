import { describe, expect, it } from "vitest";
import {
  createSimulator,
  SimulatorClosedError,
  SimulatorOptionsError,
  SimulatorTimeoutError,
} from "../../../edge-agent/simulator/index.ts";
import { FakePlatform } from "./fake-platform.ts";

function handles(kind: string): number {
  return process.getActiveResourcesInfo().filter((r) => r === kind).length;
}

async function settle(): Promise<void> {
  // Closed UDP handles leave the active list one turn after their close callback.
  await new Promise((r) => setTimeout(r, 20));
}

describe("simulator lifecycle", () => {
  it("close() releases every socket and timer, is idempotent, and rejects pending waits", async () => {
    const platform = await FakePlatform.start({ keepAliveSeconds: "0.05" });
    await settle();
    const udpBefore = handles("UDPWrap");
    const timersBefore = handles("Timeout");
    const sim = await createSimulator({
      agent: platform.agent,
      devices: 25,
      registerSpreadMs: 30,
      gpsIntervalSeconds: 0.05,
      latencyMs: 5,
    });
    expect(handles("UDPWrap")).toBe(udpBefore + 25);
    await sim.start();
    await sim.waitFor("all-online", 2000);
    const pending = sim.waitFor(() => false, 60_000);
    const first = sim.close();
    expect(sim.close()).toBe(first);
    await first;
    await expect(pending).rejects.toBeInstanceOf(SimulatorClosedError);
    await expect(sim.waitFor("all-online")).rejects.toBeInstanceOf(SimulatorClosedError);
    expect(sim.devices.every((d) => d.state === "stopped")).toBe(true);
    expect(sim.stats().states.stopped).toBe(25);
    await platform.close();
    await settle();
    expect(handles("UDPWrap")).toBe(udpBefore - 1);
    expect(handles("Timeout")).toBeLessThanOrEqual(timersBefore);
  });

  it("close() during registration stops everything", async () => {
    const platform = await FakePlatform.start();
    platform.answering = false;
    const sim = await createSimulator({
      agent: platform.agent,
      devices: 5,
      registerSpreadMs: 0,
      registerRetryMs: 20,
    });
    await sim.start();
    await platform.waitFor(() => platform.messages("register").length >= 5);
    await sim.close();
    const count = platform.received.length;
    await new Promise((r) => setTimeout(r, 80));
    expect(platform.received.length).toBe(count);
    await platform.close();
  });

  it("waitFor times out with the stats attached", async () => {
    const platform = await FakePlatform.start();
    platform.answering = false;
    const sim = await createSimulator({ agent: platform.agent, devices: 2, registerSpreadMs: 0 });
    await sim.start();
    const err = await sim.waitFor("all-online", 50).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SimulatorTimeoutError);
    expect((err as SimulatorTimeoutError).stats.states.registering).toBe(2);
    await sim.close();
    await platform.close();
  });

  it("a throwing event listener does not stop the device from answering", async () => {
    const platform = await FakePlatform.start();
    const errors: unknown[] = [];
    const sim = await createSimulator(
      { agent: platform.agent, devices: 1, registerSpreadMs: 0 },
      { onError: (e) => errors.push(e) },
    );
    sim.on("state", () => {
      throw new Error("listener bug");
    });
    await sim.start();
    await sim.waitFor("all-online", 2000);
    expect(errors.length).toBeGreaterThan(0);
    await sim.close();
    await platform.close();
  });

  it("sim.device(id) finds a device and refuses unknown ids", async () => {
    const platform = await FakePlatform.start();
    const sim = await createSimulator({ agent: platform.agent, devices: 3 });
    expect(sim.device("sim-00002").index).toBe(2);
    expect(() => sim.device("nope")).toThrow(/no simulated device/);
    await sim.close();
    await platform.close();
  });

  it("invalid options are refused with the option named", async () => {
    const agent = { host: "127.0.0.1", port: 7660 };
    await expect(createSimulator({ agent, devices: 0 })).rejects.toThrow(SimulatorOptionsError);
    await expect(createSimulator({ agent, devices: 1, loss: 2 })).rejects.toThrow(/^loss:/);
    await expect(
      createSimulator({ agent, devices: 1, encoding: "latin1" as never }),
    ).rejects.toThrow(/^encoding:/);
    await expect(createSimulator({ agent, devices: 1, channels: 65 })).rejects.toThrow(
      /^channels:/,
    );
    await expect(createSimulator({ agent, devices: 100, idWidth: 2 })).rejects.toThrow(/^idWidth:/);
  });
});
