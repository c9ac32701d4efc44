import { connect, createServer, type Server, Socket } from "node:net";
import { afterEach, describe, expect, it, vi } from "vitest";
import { MediaPortsExhaustedError } from "../../../edge-agent/media/errors.ts";
import {
  createPortPool,
  normaliseAddress,
  type PortPool,
} from "../../../edge-agent/media/port-pool.ts";
import { ERROR_CODES } from "../../../lib/contracts/errors.ts";
import { freePortRange } from "./helpers/port-range.ts";

const DEVICE = "127.0.0.1";
/** Another local address (Linux routes all of 127/8 to loopback): an intruder. */
const OTHER = "127.0.0.2";

let pool: PortPool | undefined;
const clients: Socket[] = [];
const servers: Server[] = [];

async function newPool(n: number, acceptTimeoutMs = 5_000): Promise<PortPool> {
  pool = createPortPool({ mediaPorts: await freePortRange(n), host: "127.0.0.1", acceptTimeoutMs });
  return pool;
}

/** Connects from `from`; resolves with the socket once connected or the error if refused. */
function dial(port: number, from = DEVICE): Promise<Socket | Error> {
  return new Promise((resolve) => {
    const s = connect({ port, host: "127.0.0.1", localAddress: from });
    clients.push(s);
    s.once("connect", () => resolve(s));
    s.once("error", (err) => resolve(err));
  });
}

/** Resolves when the peer closes or resets the connection. */
function closedByPeer(s: Socket): Promise<void> {
  return new Promise((resolve) => {
    if (s.destroyed) return resolve();
    s.on("error", () => {});
    s.once("close", () => resolve());
    s.resume();
  });
}

afterEach(async () => {
  vi.useRealTimers();
  for (const c of clients.splice(0)) c.destroy();
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
  if (pool) {
    const p = pool;
    pool = undefined;
    await p.close();
    // Every test, failure paths included, ends with the whole pool free.
    expect(p.available()).toBe(p.size);
  }
});

describe("media port pool (issue 4 item 1)", () => {
  it("leases a listening port from the range and hands over the device's connection", async () => {
    const p = await newPool(3);
    const lease = await p.acquire({ host: DEVICE });
    expect(lease.port).toBeGreaterThanOrEqual(20_000);
    expect(p.available()).toBe(2);
    const client = (await dial(lease.port)) as Socket;
    const server = await lease.connection;
    const got = new Promise<string>((r) => server.once("data", (d) => r(String(d))));
    client.write("$media");
    expect(await got).toBe("$media");
    lease.release();
    await closedByPeer(client);
    expect(await lease.done).toBe("released");
    expect(p.available()).toBe(3);
  });

  it("refuses and counts connections from any other address, then accepts the device", async () => {
    const p = await newPool(2);
    const lease = await p.acquire({ host: DEVICE });
    const intruder = await dial(lease.port, OTHER);
    if (intruder instanceof Socket) await closedByPeer(intruder);
    await vi.waitFor(() => expect(lease.refused).toBe(1));
    expect(p.stats().refused).toBe(1);
    await dial(lease.port);
    const s = await lease.connection;
    expect(normaliseAddress(s.remoteAddress)).toBe(DEVICE);
    lease.release();
    await lease.done;
  });

  it("accepts one connection per session: the listener closes once the device is in", async () => {
    const p = await newPool(2);
    const lease = await p.acquire({ host: DEVICE });
    await dial(lease.port);
    await lease.connection;
    const second = await dial(lease.port);
    if (second instanceof Socket) await closedByPeer(second);
    else expect((second as NodeJS.ErrnoException).code).toBe("ECONNREFUSED");
    expect(p.available()).toBe(1);
    lease.release();
    await lease.done;
  });

  it("releases the port when the device never connects (accept timeout)", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    const p = await newPool(2, 10_000);
    const lease = await p.acquire({ host: DEVICE });
    const rejected = expect(lease.connection).rejects.toMatchObject({
      code: "MEDIA_ACCEPT_TIMEOUT",
    });
    await vi.advanceTimersByTimeAsync(9_999);
    expect(lease.released).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    await rejected;
    vi.useRealTimers();
    expect(await lease.done).toBe("accept-timeout");
    expect(p.available()).toBe(2);
    expect(p.stats().acceptTimeouts).toBe(1);
  });

  it("releases the port when the device closes the connection (end of a download)", async () => {
    const p = await newPool(1);
    const lease = await p.acquire({ host: DEVICE });
    const client = (await dial(lease.port)) as Socket;
    await lease.connection;
    client.end();
    expect(await lease.done).toBe("socket-closed");
    expect(p.available()).toBe(1);
  });

  it("releases the port on a socket error (the device resets)", async () => {
    const p = await newPool(1);
    const lease = await p.acquire({ host: DEVICE });
    const client = (await dial(lease.port)) as Socket;
    const server = await lease.connection;
    server.write(Buffer.alloc(1024));
    client.resetAndDestroy();
    const reason = await lease.done;
    expect(["socket-error", "socket-closed"]).toContain(reason);
    expect(p.available()).toBe(1);
  });

  it("release() before the device connects rejects the connection; release is idempotent", async () => {
    const p = await newPool(2);
    const lease = await p.acquire({ host: DEVICE });
    lease.release();
    lease.release();
    await expect(lease.connection).rejects.toMatchObject({ code: "MEDIA_LEASE_RELEASED" });
    expect(await lease.done).toBe("released");
    lease.release();
    expect(p.available()).toBe(2);
    expect(p.stats().acquired).toBe(1);
  });

  it("fails fast with MEDIA_PORTS_EXHAUSTED (503) when every port is leased", async () => {
    const p = await newPool(2);
    const a = await p.acquire({ host: DEVICE });
    const b = await p.acquire({ host: DEVICE });
    expect(a.port).not.toBe(b.port);
    const err = await p.acquire({ host: DEVICE }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MediaPortsExhaustedError);
    expect(err).toMatchObject({ code: "MEDIA_PORTS_EXHAUSTED", status: 503 });
    expect(ERROR_CODES.MEDIA_PORTS_EXHAUSTED.status).toBe(503);
    expect(p.stats().exhausted).toBe(1);
    a.release();
    await a.done;
    const c = await p.acquire({ host: DEVICE });
    expect(c.port).toBe(a.port);
    b.release();
    c.release();
    await Promise.all([b.done, c.done]);
  });

  it("gives concurrent acquires distinct ports", async () => {
    const p = await newPool(4);
    const leases = await Promise.all([1, 2, 3, 4].map(() => p.acquire({ host: DEVICE })));
    expect(new Set(leases.map((l) => l.port)).size).toBe(4);
    expect(p.available()).toBe(0);
    for (const l of leases) l.release();
    await Promise.all(leases.map((l) => l.done));
  });

  it("skips a port another process holds (EADDRINUSE) and counts it", async () => {
    const p = await newPool(3);
    const first = await p.acquire({ host: DEVICE });
    first.release();
    await first.done;
    // Occupy the port the rotating cursor tries next.
    const squatter = createServer();
    servers.push(squatter);
    await new Promise<void>((r) => squatter.listen(first.port + 1, "127.0.0.1", () => r()));
    const a = await p.acquire({ host: DEVICE });
    expect(a.port).toBe(first.port + 2);
    expect(p.stats().bindFailures).toBe(1);
    const b = await p.acquire({ host: DEVICE });
    expect(b.port).toBe(first.port);
    const err = await p.acquire({ host: DEVICE }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "MEDIA_PORTS_EXHAUSTED", details: { bindFailures: 1 } });
    a.release();
    b.release();
    await Promise.all([a.done, b.done]);
  });

  it("close() ends every lease (waiting and connected) and refuses new ones; idempotent", async () => {
    const p = await newPool(3);
    const waiting = await p.acquire({ host: DEVICE });
    const connected = await p.acquire({ host: DEVICE });
    const client = (await dial(connected.port)) as Socket;
    await connected.connection;
    await Promise.all([p.close(), p.close()]);
    await closedByPeer(client);
    await expect(waiting.connection).rejects.toMatchObject({ code: "MEDIA_POOL_CLOSED" });
    expect(await waiting.done).toBe("pool-closed");
    expect(await connected.done).toBe("pool-closed");
    expect(p.available()).toBe(3);
    await expect(p.acquire({ host: DEVICE })).rejects.toMatchObject({ code: "MEDIA_POOL_CLOSED" });
  });

  it("close() waits for an acquire in progress and leaves the pool full", async () => {
    const p = await newPool(2);
    const pending = p.acquire({ host: DEVICE });
    const closing = p.close();
    const result = await pending.then(
      (l) => ({ lease: l }),
      (e: unknown) => ({ error: e }),
    );
    await closing;
    if ("lease" in result) expect(await result.lease.done).toBe("pool-closed");
    else expect(result.error).toMatchObject({ code: "MEDIA_POOL_CLOSED" });
    expect(p.available()).toBe(2);
  });

  it("compares IPv4-mapped IPv6 peer addresses as IPv4", () => {
    expect(normaliseAddress("::ffff:10.0.0.7")).toBe("10.0.0.7");
    expect(normaliseAddress("FE80::1")).toBe("fe80::1");
    expect(normaliseAddress(undefined)).toBe("");
  });
});
