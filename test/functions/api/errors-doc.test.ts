import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { ERROR_CODES } from "../../../lib/contracts/errors.ts";

/** The `## API` section of docs/errors.md, as `code → status` (tables may be padded by biome). */
function documentedApiCodes(): Map<string, number> {
  const text = readFileSync(new URL("../../../docs/errors.md", import.meta.url), "utf8");
  const section = /^## API\n([\s\S]*?)(?=^## |(?![\s\S]))/m.exec(text)?.[1];
  if (section === undefined) throw new Error("docs/errors.md has no '## API' section");
  const rows = new Map<string, number>();
  for (const match of section.matchAll(/^\|\s*`([A-Z_]+)`\s*\|\s*(\d{3})\s*\|/gm)) {
    rows.set(match[1]!, Number(match[2]));
  }
  return rows;
}

describe("docs/errors.md lists every API error code with its status", () => {
  it("documents exactly the codes of ERROR_CODES, each with the same HTTP status", () => {
    const documented = documentedApiCodes();
    const defined = new Map(
      Object.entries(ERROR_CODES).map(([code, e]) => [code, e.status as number]),
    );
    expect([...documented.keys()].sort()).toEqual([...defined.keys()].sort());
    for (const [code, status] of defined) expect(documented.get(code), code).toBe(status);
  });
});
