import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { MEDIA_ERROR_CODES } from "../../../edge-agent/media/errors.ts";

describe("docs/errors.md, Media section", () => {
  it("lists exactly MEDIA_ERROR_CODES", async () => {
    const doc = await readFile(new URL("../../../docs/errors.md", import.meta.url), "utf8");
    const start = doc.indexOf("## Media");
    expect(start).toBeGreaterThan(-1);
    const next = doc.indexOf("\n## ", start + 1);
    const section = doc.slice(start, next === -1 ? undefined : next);
    const documented = [...section.matchAll(/^\| `([A-Z_]+)` +\|/gm)].map((m) => m[1]);
    expect(documented.sort()).toEqual(Object.keys(MEDIA_ERROR_CODES).sort());
  });
});
