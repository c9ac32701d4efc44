import type { Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { type MediaRig, startMediaRig, until } from "./helpers/media-rig.ts";

/**
 * A device that goes offline takes its streams with it at once (reason `DEVICE_OFFLINE`), without
 * waiting for its TCP connection to close or the idle timer (30 s here): the agent tells the media
 * manager when a session ends. No BYESTREAM (nothing is there to answer); the device's media
 * connection is closed and the port is back in the pool.
 */

let rig: MediaRig | undefined;
afterEach(async () => {
  await rig?.close(); // checks the pool is full again
  rig = undefined;
});

const live = (streamId: string) => ({
  streamId,
  kind: "live" as const,
  channel: 1,
  streamType: "main" as const,
  transport: "tcp" as const,
});

/** The device connects and then keeps the connection open, sending nothing more. */
const holdOpen = (socket: Socket) => {
  socket.write(Buffer.alloc(0));
};

const closed = (s: Socket) => new Promise<void>((r) => (s.destroyed ? r() : s.once("close", r)));

describe("streams of a device gone offline", { timeout: 15_000 }, () => {
  it("keepalive timeout: every stream of the device stops with DEVICE_OFFLINE and its port is released", async () => {
    // The fake device registers once and never sends a keepalive: offline after 2 s.
    rig = await startMediaRig({
      agentEnv: { EHOME_KEEPALIVE_SECONDS: "1", EHOME_OFFLINE_AFTER_MISSED: "2" },
    });
    const r = rig;
    r.device.scripts.inviteStream = [{ push: holdOpen }];
    const started = await r.manager.startStream(r.device.deviceId, live("st-off-1"));
    expect(started.kind).toBe("ok");
    // A second id shares the device stream.
    expect((await r.manager.startStream(r.device.deviceId, live("st-off-2"))).kind).toBe("ok");
    await until(() => r.eventsOf("st-off-1").some((e) => e.state === "active"));
    expect(r.pool.available()).toBe(r.pool.size - 1);
    const t0 = Date.now();

    await until(() => r.manager.streams().length === 0, 5_000);
    // Well before the 30 s idle timer; the device kept its connection open.
    expect(Date.now() - t0).toBeLessThan(5_000);
    expect(r.agent.sessions.get(r.device.deviceId)).toBeUndefined();
    for (const id of ["st-off-1", "st-off-2"]) {
      const last = r.eventsOf(id).at(-1)!;
      expect(last.state).toBe("stopped");
      expect(last.reason?.code).toBe("DEVICE_OFFLINE");
      expect(last.reason?.message).toContain("keepalive-timeout");
    }
    await until(() => r.pool.available() === r.pool.size);
    await closed(r.device.sockets[0]!);
    expect(r.device.requestsOf("byeStream")).toHaveLength(0);
    // A stop afterwards answers with the final state.
    const again = await r.manager.stopStream("st-off-1");
    expect(again).toMatchObject({ kind: "ok", result: { state: "stopped", byeSent: false } });
  });

  it("deprovisioned (dropDevice): the streams stop at once with DEVICE_OFFLINE naming the reason", async () => {
    rig = await startMediaRig();
    const r = rig;
    r.device.scripts.inviteStream = [{ push: holdOpen }];
    expect((await r.manager.startStream(r.device.deviceId, live("st-drop-1"))).kind).toBe("ok");
    await until(() => r.eventsOf("st-drop-1").some((e) => e.state === "active"));

    expect(r.agent.dropDevice(r.device.deviceId, "deprovisioned")).toBe(true);
    // Synchronously: the final event is out and the stream is gone.
    const last = r.eventsOf("st-drop-1").at(-1)!;
    expect(last).toMatchObject({ state: "stopped", reason: { code: "DEVICE_OFFLINE" } });
    expect(last.reason?.message).toContain("deprovisioned");
    expect(r.manager.streams()).toEqual([]);
    await until(() => r.pool.available() === r.pool.size);
    await closed(r.device.sockets[0]!);
    expect(r.device.requestsOf("byeStream")).toHaveLength(0);
  });
});
