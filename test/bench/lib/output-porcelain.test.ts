import { describe, expect, it } from "vitest";
import { porcelainPaths } from "../../../bench/lib/output.ts";

describe("porcelainPaths", () => {
  it("keeps the first letter of a path whose status column starts with a space", () => {
    // `git status --porcelain` prints " M path" for a change not staged: trimming the whole output
    // used to eat that space and then the path's first letter ("dge-agent/...").
    expect(porcelainPaths(" M edge-agent/media/manager.ts\nM  bench/run-all.ts")).toEqual([
      "edge-agent/media/manager.ts",
      "bench/run-all.ts",
    ]);
  });

  it("returns nothing for a clean tree", () => {
    expect(porcelainPaths("")).toEqual([]);
  });
});
