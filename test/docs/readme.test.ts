import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { CONFIG_VARIABLES } from "../../edge-agent/config.ts";

const read = (path: string) => readFile(new URL(`../../${path}`, import.meta.url), "utf8");

/** `| \`NAME\` | default |` rows of a Markdown table, as name → default cell. */
function tableRows(markdown: string): Map<string, string> {
  const rows = new Map<string, string>();
  for (const m of markdown.matchAll(/^\| `(EHOME_[A-Z_]+)` +\| ([^|]+?) +\|/gm)) {
    rows.set(m[1]!, m[2]!);
  }
  return rows;
}

describe("README", () => {
  it("lists every agent variable with the default docs/configuration.md gives", async () => {
    const readme = tableRows(await read("README.md"));
    const doc = tableRows(await read("docs/configuration.md"));
    for (const name of CONFIG_VARIABLES) {
      expect(readme.get(name), name).toBe(doc.get(name));
    }
  });

  it("lists every variable the npm start runner reads", async () => {
    const readme = tableRows(await read("README.md"));
    const runner = await read("bin/local.ts");
    const read_ = new Set([...runner.matchAll(/\b(EHOME_[A-Z_]+)\b/g)].map((m) => m[1]!));
    expect(read_.size).toBeGreaterThan(0);
    for (const name of read_) expect(readme.has(name), name).toBe(true);
  });

  it("shows the two commands of the set-up contract", async () => {
    const readme = await read("README.md");
    expect(readme).toContain("npm ci && npm start");
    expect(readme).toContain("npm ci && npm test");
  });
});
