import { connect, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { createDeframer } from "../../../edge-agent/media/deframer.ts";
import { createFramer, privateHeader } from "../../../edge-agent/media/framer.ts";
import { createPortPool, type PortPool } from "../../../edge-agent/media/port-pool.ts";
import { scanPs } from "../../../edge-agent/media/ps.ts";
import { seededRandom } from "../../../edge-agent/simulator/random.ts";
import { freePortRange } from "./helpers/port-range.ts";
import { syntheticPs } from "./helpers/synthetic-ps.ts";

const SESSION = 679647373;
let pool: PortPool | undefined;
let device: Socket | undefined;

afterEach(async () => {
  device?.destroy();
  if (pool) {
    await pool.close();
    expect(pool.available()).toBe(pool.size);
    pool = undefined;
  }
});

/** What the media session of issue 4 will do: lease a port, accept the device, de-frame. */
async function receive(wire: Buffer, expectedSsrc?: number) {
  pool = createPortPool({ mediaPorts: await freePortRange(2), host: "127.0.0.1" });
  const lease = await pool.acquire({ host: "127.0.0.1" });
  const d = createDeframer(expectedSsrc === undefined ? {} : { expectedSsrc });
  const out: Buffer[] = [];
  const finished = lease.connection.then(
    (s) =>
      new Promise<void>((resolve) => {
        s.on("data", (chunk: Buffer) => out.push(...d.push(chunk)));
        s.once("close", () => {
          d.end();
          resolve();
        });
      }),
  );
  device = connect({ port: lease.port, host: "127.0.0.1" });
  // A device writes record by record; TCP delivers them in reads of its own choosing.
  for (let i = 0; i < wire.length; i += 1_000) device.write(wire.subarray(i, i + 1_000));
  device.end();
  await finished;
  expect(await lease.done).toBe("socket-closed");
  expect(pool.available()).toBe(pool.size);
  return { ps: Buffer.concat(out), stats: d.stats() };
}

describe("media link over loopback: port pool lease + de-framer", () => {
  const src = syntheticPs(seededRandom(11), { frames: 75, keyEvery: 25 });

  it("a live main-stream push (header, 0x0d and 0x1c) arrives as the exact PS", async () => {
    const framer = createFramer({ ssrc: SESSION });
    const wire = Buffer.concat([
      privateHeader({ session: SESSION }),
      ...src.units.flatMap((u, i) => framer.frame(u, { timestamp: i * 3600 })),
    ]);
    const { ps, stats } = await receive(wire, SESSION);
    expect(ps.equals(src.ps)).toBe(true);
    expect(stats.headerBytes).toBe(256);
    expect(stats.fragments).toBeGreaterThan(0);
    expect(scanPs(ps).packs).toBe(75);
  });

  it("a download push of raw PS arrives unchanged", async () => {
    const { ps, stats } = await receive(src.ps);
    expect(ps.equals(src.ps)).toBe(true);
    expect(stats.mode).toBe("ps");
  });
});
