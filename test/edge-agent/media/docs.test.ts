import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { createDeframer } from "../../../edge-agent/media/deframer.ts";
import { createPortPool } from "../../../edge-agent/media/port-pool.ts";

async function section(start: string): Promise<string> {
  const doc = await readFile(new URL("../../../docs/media.md", import.meta.url), "utf8");
  const a = doc.indexOf(start);
  expect(a).toBeGreaterThan(-1);
  return doc.slice(a, doc.indexOf("\n\n", a));
}

function listed(text: string): string[] {
  return text
    .slice(text.indexOf(":") + 1)
    .replace(/[`.\n]/g, " ")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
}

describe("docs/media.md lists every counter", () => {
  it("de-framer stats", async () => {
    const keys = Object.keys(createDeframer().stats());
    expect(listed(await section("Stats: `")).sort()).toEqual(keys.sort());
  });

  it("port pool stats", async () => {
    // Nothing is bound until acquire(): the range is never used.
    const pool = createPortPool({ mediaPorts: { min: 40_000, max: 40_001 }, host: "127.0.0.1" });
    const keys = Object.keys(pool.stats());
    await pool.close();
    expect(listed(await section("- `pool.stats()`")).sort()).toEqual(keys.sort());
  });
});
