import { afterEach, describe, expect, it, vi } from "vitest";
import { COMMANDS } from "../../../edge-agent/signalling/catalogue.ts";
import {
  childText,
  type PlatformRequestMessage,
} from "../../../edge-agent/signalling/codec/index.ts";
import { keepaliveDatagram, registerDatagram, responseDatagram } from "../helpers/devices.ts";
import { type Harness, startHarness } from "../helpers/harness.ts";

const DEV = "10.1.1.1";
let h: Harness;
afterEach(async () => {
  await h?.close();
  vi.useRealTimers();
});

async function online(deviceId = "cam-1", port = 40001, env: Record<string, string> = {}) {
  h = await startHarness(env);
  h.transport.deliver(registerDatagram({ deviceId, sequence: 1 }), DEV, port);
}

function lastRequest(port = 40001): PlatformRequestMessage {
  const r = h.requestsTo(port).at(-1);
  if (!r) throw new Error("no request sent");
  return r;
}

const flush = () => new Promise((r) => setImmediate(r));

describe("command sender (ehome-2.0 §3.2, §3.3)", () => {
  it("sends the catalogue command with Method and Params, and settles ok on the matching answer", async () => {
    await online();
    const p = h.agent.commands.send("cam-1", "getDeviceConfig", {
      configCmd: "GetServerInfo",
      configParam1: 0,
    });
    const req = lastRequest();
    expect(req).toMatchObject({
      command: COMMANDS.getDeviceConfig.command,
      commandId: "getDeviceConfig",
    });
    expect(req.header.method).toBe(COMMANDS.getDeviceConfig.method);
    expect(req.header.encoding).toBe("GB2312");
    expect(childText(req.params, COMMANDS.getDeviceConfig.params.configCmd)).toBe("GetServerInfo");

    h.transport.deliver(
      responseDatagram(req.header.sequence, COMMANDS.getDeviceConfig.command, 200, { X: "1" }),
      DEV,
      40001,
    );
    await expect(p).resolves.toEqual({
      kind: "ok",
      status: 200,
      description: "OK",
      params: { X: "1" },
    });
    expect(h.agent.metrics().commands_pending).toBe(0);
  });

  it("uses a per-device Sequence counter that advances per request", async () => {
    await online();
    void h.agent.commands.send("cam-1", "reboot");
    const a = lastRequest().header.sequence;
    void h.agent.commands.send("cam-1", "reboot");
    const b = lastRequest().header.sequence;
    expect(b).toBe((a + 1) % 2 ** 31);
    expect(a).toBeLessThan(2 ** 31);
  });

  it("matches only (device at this address, Sequence) with the right WhichCommand", async () => {
    vi.useFakeTimers();
    await online("cam-1", 40001, { EHOME_COMMAND_TIMEOUT_MS: "5000" });
    h.transport.deliver(registerDatagram({ deviceId: "cam-2", sequence: 1 }), DEV, 40002);
    const p = h.agent.commands.send("cam-1", "reboot");
    const seq = lastRequest().header.sequence;
    let settled = false;
    void p.then(() => {
      settled = true;
    });

    // Right Sequence, wrong WhichCommand.
    h.transport.deliver(responseDatagram(seq, COMMANDS.adjustTime.command), DEV, 40001);
    // Right Sequence and command, but from another device's address.
    h.transport.deliver(responseDatagram(seq, COMMANDS.reboot.command), DEV, 40002);
    // Right everything but from an address that is no device.
    h.transport.deliver(responseDatagram(seq, COMMANDS.reboot.command), "10.9.9.9", 40001);
    // Wrong Sequence.
    h.transport.deliver(responseDatagram(seq + 1, COMMANDS.reboot.command), DEV, 40001);
    await vi.advanceTimersByTimeAsync(0);
    expect(settled).toBe(false);
    expect(h.agent.metrics()).toMatchObject({ responses_mismatched: 1, responses_unmatched: 3 });

    // The genuine answer, case-insensitively on WhichCommand.
    h.transport.deliver(responseDatagram(seq, COMMANDS.reboot.command.toLowerCase()), DEV, 40001);
    await expect(p).resolves.toMatchObject({ kind: "ok" });
  });

  it("a non-200 answer settles device-error with Status and Description (ehome-2.0 §3.4)", async () => {
    await online();
    const p = h.agent.commands.send("cam-1", "ptzControl", {
      channel: 1,
      ptzCmd: "UP",
      action: "Start",
      speed: 4,
    });
    const seq = lastRequest().header.sequence;
    h.transport.deliver(responseDatagram(seq, COMMANDS.ptzControl.command, 401), DEV, 40001);
    await expect(p).resolves.toMatchObject({
      kind: "device-error",
      status: 401,
      description: "System Oper Faild.",
    });
  });

  it("resends identical bytes after 1.5 s, at most 3 sends, and times out at 5 s", async () => {
    vi.useFakeTimers();
    await online();
    const before = h.transport.sent.length;
    const p = h.agent.commands.send("cam-1", "getWorkStatus");
    const sends = () => h.transport.sent.slice(before);
    expect(sends()).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1499);
    expect(sends()).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(sends()).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(1500);
    expect(sends()).toHaveLength(3);
    await vi.advanceTimersByTimeAsync(1500); // 4.5 s: no fourth send
    expect(sends()).toHaveLength(3);
    const bytes = sends().map((d) => d.bytes.toString("hex"));
    expect(new Set(bytes).size).toBe(1);
    await vi.advanceTimersByTimeAsync(499);
    let done = false;
    void p.then(() => {
      done = true;
    });
    await vi.advanceTimersByTimeAsync(0);
    expect(done).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    await expect(p).resolves.toEqual({ kind: "timeout" });
    expect(h.agent.metrics()).toMatchObject({ command_resends: 2, commands_timeout: 1 });
  });

  it("an answer to a resent copy settles the request and stops further resends", async () => {
    vi.useFakeTimers();
    await online();
    const p = h.agent.commands.send("cam-1", "reboot");
    const seq = lastRequest().header.sequence;
    await vi.advanceTimersByTimeAsync(1500);
    h.transport.deliver(responseDatagram(seq, COMMANDS.reboot.command), DEV, 40001);
    await expect(p).resolves.toMatchObject({ kind: "ok" });
    const n = h.transport.sent.length;
    await vi.advanceTimersByTimeAsync(10_000);
    expect(h.transport.sent.length).toBe(n);
  });

  it("resend and timeout follow EHOME_COMMAND_* settings", async () => {
    vi.useFakeTimers();
    await online("cam-1", 40001, {
      EHOME_COMMAND_RESEND_MS: "100",
      EHOME_COMMAND_MAX_SENDS: "5",
      EHOME_COMMAND_TIMEOUT_MS: "1000",
    });
    const before = h.transport.sent.length;
    const p = h.agent.commands.send("cam-1", "reboot");
    await vi.advanceTimersByTimeAsync(1000);
    await expect(p).resolves.toEqual({ kind: "timeout" });
    expect(h.transport.sent.length - before).toBe(5);
  });

  it("PTZ start/stop goes out three times back to back with the same bytes and is not resent (§2.8)", async () => {
    vi.useFakeTimers();
    await online();
    const before = h.transport.sent.length;
    const p = h.agent.commands.send("cam-1", "ptzControl", {
      channel: 1,
      ptzCmd: "LEFT",
      action: "Stop",
      speed: 4,
    });
    const burst = h.transport.sent.slice(before);
    expect(burst).toHaveLength(3);
    expect(new Set(burst.map((d) => d.bytes.toString("hex"))).size).toBe(1);
    await vi.advanceTimersByTimeAsync(4000);
    expect(h.transport.sent.length - before).toBe(3);
    h.transport.deliver(
      responseDatagram(lastRequest().header.sequence, COMMANDS.ptzControl.command),
      DEV,
      40001,
    );
    await expect(p).resolves.toMatchObject({ kind: "ok" });
  });

  it("a device that goes offline settles its pending requests as offline", async () => {
    vi.useFakeTimers();
    await online("cam-1", 40001, {
      EHOME_KEEPALIVE_SECONDS: "1",
      EHOME_OFFLINE_AFTER_MISSED: "2",
      EHOME_COMMAND_TIMEOUT_MS: "60000",
      EHOME_COMMAND_RESEND_MS: "30000",
    });
    const p = h.agent.commands.send("cam-1", "getWorkStatus");
    // Expiry runs on a wheel of timeout/10 ticks: due within two ticks of the deadline.
    await vi.advanceTimersByTimeAsync(2400);
    await expect(p).resolves.toEqual({ kind: "offline" });
    // And a device not online here is offline at once.
    await expect(h.agent.commands.send("cam-1", "reboot")).resolves.toEqual({ kind: "offline" });
  });

  it("dropDevice settles pending requests as offline", async () => {
    await online();
    const p = h.agent.commands.send("cam-1", "reboot");
    expect(h.agent.dropDevice("cam-1", "re-registered-elsewhere")).toBe(true);
    await expect(p).resolves.toEqual({ kind: "offline" });
    expect(h.eventsOf("offline", "cam-1")).toEqual([
      expect.objectContaining({ reason: "re-registered-elsewhere" }),
    ]);
    expect(h.agent.dropDevice("cam-1", "deprovisioned")).toBe(false);
  });

  it("close() settles everything pending and refuses new sends", async () => {
    await online();
    h.transport.deliver(registerDatagram({ deviceId: "cam-2", sequence: 1 }), DEV, 40002);
    const a = h.agent.commands.send("cam-1", "reboot");
    const b = h.agent.commands.send("cam-2", "getWorkStatus");
    await h.agent.close();
    await expect(Promise.all([a, b])).resolves.toEqual([{ kind: "offline" }, { kind: "offline" }]);
    await expect(h.agent.commands.send("cam-1", "reboot")).resolves.toEqual({ kind: "offline" });
    expect(h.agent.metrics().commands_pending).toBe(0);
  });

  it("follows the device to its new address for resends after a NAT rebinding", async () => {
    vi.useFakeTimers();
    await online();
    const p = h.agent.commands.send("cam-1", "reboot");
    const seq = lastRequest().header.sequence;
    h.transport.deliver(keepaliveDatagram("cam-1", 2), DEV, 40777);
    await vi.advanceTimersByTimeAsync(1500);
    expect(h.requestsTo(40777).map((r) => r.header.sequence)).toEqual([seq]);
    h.transport.deliver(responseDatagram(seq, COMMANDS.reboot.command), DEV, 40777);
    await expect(p).resolves.toMatchObject({ kind: "ok" });
  });

  it("refuses to send a request larger than EHOME_MAX_OUTBOUND_BYTES", async () => {
    await online("cam-1", 40001, { EHOME_MAX_OUTBOUND_BYTES: "1024" });
    await expect(
      h.agent.commands.send("cam-1", "setDeviceConfig", {
        configCmd: "SetPicPara",
        configXml: { A: "x".repeat(1100) },
      }),
    ).rejects.toMatchObject({ code: "COMMAND_UNENCODABLE" });
    expect(h.agent.metrics()).toMatchObject({ outbound_too_large: 1, commands_pending: 0 });
    await flush();
  });
});
