import { afterEach, describe, expect, it, vi } from "vitest";
import { keepaliveDatagram, registerDatagram } from "./helpers/devices.ts";
import { type Harness, startHarness } from "./helpers/harness.ts";

const DEV = "10.1.1.1";
let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
  vi.useRealTimers();
});

describe("device events (issue 2 item 9)", () => {
  it("are stamped with a uuid eventId, the agent id, an ISO time and a per-device strictly increasing version", async () => {
    h = await startHarness({ EHOME_AGENT_ID: "edge-7" });
    for (let i = 0; i < 5; i++) {
      h.transport.deliver(
        registerDatagram({ deviceId: "cam-v", sequence: 10 + i }),
        DEV,
        40001 + (i % 2),
      );
    }
    const events = h.events.filter((e) => e.deviceId === "cam-v");
    expect(events.length).toBeGreaterThan(5);
    for (const e of events) {
      expect(e.agentId).toBe("edge-7");
      expect(e.eventId).toMatch(/^[0-9a-f-]{36}$/);
      expect(Date.parse(e.at)).not.toBeNaN();
    }
    const versions = events.map((e) => e.version);
    for (let i = 1; i < versions.length; i++)
      expect(versions[i]!).toBeGreaterThan(versions[i - 1]!);
    expect(new Set(events.map((e) => e.eventId)).size).toBe(events.length);
    // µs since the epoch: survives a restart as long as the clock does not go backwards.
    expect(versions[0]!).toBeGreaterThanOrEqual(Date.parse(events[0]!.at) * 1000);
  });

  it("emit coalesced last-seen at most once per device per interval, only for devices heard from, never per keepalive", async () => {
    vi.useFakeTimers();
    h = await startHarness({ EHOME_LASTSEEN_FLUSH_SECONDS: "600" });
    h.transport.deliver(registerDatagram({ deviceId: "talker", sequence: 1 }), DEV, 40001);
    h.transport.deliver(registerDatagram({ deviceId: "quiet", sequence: 1 }), DEV, 40002);
    for (let i = 0; i < 40; i++) {
      vi.advanceTimersByTime(15_000); // 600 s in total
      h.transport.deliver(keepaliveDatagram("talker", 2 + i), DEV, 40001);
      h.transport.deliver(keepaliveDatagram("quiet", 2 + i), DEV, 40002);
    }
    // 40 keepalives each, one flush so far.
    expect(h.eventsOf("last-seen", "talker")).toHaveLength(1);
    expect(h.eventsOf("last-seen", "quiet")).toHaveLength(1);
    const seen = h.eventsOf("last-seen", "talker")[0]!;
    expect(seen.type === "last-seen" && Date.parse(seen.lastSeen)).toBe(Date.now() - 15_000);

    // Only talker is heard from in the next interval (quiet falls silent and expires).
    for (let i = 0; i < 40; i++) {
      vi.advanceTimersByTime(15_000);
      h.transport.deliver(keepaliveDatagram("talker", 100 + i), DEV, 40001);
    }
    vi.advanceTimersByTime(1);
    expect(h.eventsOf("last-seen", "talker")).toHaveLength(2);
    expect(h.eventsOf("last-seen", "quiet")).toHaveLength(1);
    expect(h.eventsOf("offline", "quiet")).toHaveLength(1);
  });

  it("a failing event sink is counted and never breaks the signalling path", async () => {
    h = await startHarness(
      {},
      {
        events: {
          emit() {
            throw new Error("sink down");
          },
        },
        reports: { report: () => Promise.reject(new Error("reports down")) },
      },
    );
    h.transport.deliver(registerDatagram({ deviceId: "cam-s", sequence: 1 }), DEV, 40001);
    expect(h.lastResponse(40001).status).toBe(200);
    expect(h.agent.metrics().event_sink_errors).toBe(2); // registered + online
  });
});

describe("agent lifecycle", () => {
  it("close() marks every device offline with agent-shutdown, closes the socket, and is idempotent", async () => {
    h = await startHarness();
    h.transport.deliver(registerDatagram({ deviceId: "a", sequence: 1 }), DEV, 40001);
    h.transport.deliver(registerDatagram({ deviceId: "b", sequence: 1 }), DEV, 40002);
    const first = h.agent.close();
    const second = h.agent.close();
    expect(second).toBe(first);
    await first;
    expect(
      h.eventsOf("offline").map((e) => [e.deviceId, e.type === "offline" && e.reason]),
    ).toEqual([
      ["a", "agent-shutdown"],
      ["b", "agent-shutdown"],
    ]);
    expect(h.agent.sessions.size).toBe(0);
    expect(h.transport.closed).toBe(true);
    // Datagrams after close are ignored.
    h.transport.deliver(keepaliveDatagram("a", 2), DEV, 40001);
    expect(h.agent.metrics().datagrams_in).toBe(2);
  });

  it("close() waits for asynchronous event sinks to finish", async () => {
    let finished = 0;
    h = await startHarness(
      {},
      {
        events: {
          emit: () =>
            new Promise<void>((r) =>
              setTimeout(() => {
                finished++;
                r();
              }, 20),
            ),
        },
      },
    );
    h.transport.deliver(registerDatagram({ deviceId: "a", sequence: 1 }), DEV, 40001);
    await h.agent.close();
    expect(finished).toBe(3); // registered, online, offline
  });

  it("counts send errors, synchronous and asynchronous, and keeps serving", async () => {
    h = await startHarness();
    h.transport.failNextSend();
    h.transport.deliver(registerDatagram({ deviceId: "a", sequence: 1 }), DEV, 40001);
    h.transport.reportSendError(new Error("EHOSTUNREACH"));
    expect(h.agent.metrics().send_errors).toBe(2);
    h.transport.deliver(keepaliveDatagram("a", 2), DEV, 40001);
    expect(h.lastResponse(40001).status).toBe(200);
  });

  it("exposes sessions (get, size, list) and metrics", async () => {
    h = await startHarness();
    h.transport.deliver(registerDatagram({ deviceId: "a", sequence: 1 }), DEV, 40001);
    expect(h.agent.sessions.size).toBe(1);
    expect(h.agent.sessions.list().map((s) => s.deviceId)).toEqual(["a"]);
    expect(h.agent.signalAddress()).toEqual({ host: "127.0.0.1", port: 7660 });
    expect(h.agent.metrics()).toMatchObject({
      sessions: 1,
      registers: 1,
      datagrams_in: 1,
      datagrams_out: 1,
    });
    await expect(h.agent.start()).rejects.toThrow("already started");
  });
});
