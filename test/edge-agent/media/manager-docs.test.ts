import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { createMediaManager } from "../../../edge-agent/media/manager.ts";
import { createPortPool } from "../../../edge-agent/media/port-pool.ts";

describe("docs/media.md lists every manager counter", () => {
  it("Manager counters", async () => {
    const doc = await readFile(new URL("../../../docs/media.md", import.meta.url), "utf8");
    const start = doc.indexOf("Manager counters: `");
    expect(start).toBeGreaterThan(-1);
    const text = doc.slice(start, doc.indexOf("\n\n", start));
    const listed = text
      .slice(text.indexOf(":") + 1)
      .replace(/[`.\n]/g, " ")
      .split(",")
      .map((s) => s.trim())
      .filter(Boolean);
    // Nothing is bound until a stream starts: the range is never used.
    const pool = createPortPool({ mediaPorts: { min: 40_000, max: 40_001 }, host: "127.0.0.1" });
    const manager = createMediaManager(
      {
        agentId: "a",
        publicHost: "127.0.0.1",
        idleSeconds: 30,
        acceptTimeoutMs: 1000,
        maxViewersPerStream: 1,
        maxViewers: 1,
      },
      { pool, send: async () => ({ kind: "offline" }), device: () => undefined },
    );
    expect(listed.sort()).toEqual(Object.keys(manager.counters()).sort());
    await manager.close();
    await pool.close();
  });
});
