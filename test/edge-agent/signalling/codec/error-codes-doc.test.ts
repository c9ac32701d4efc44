/**
 * Every codec error code is documented (style rule 6): the `## Codec (agent-internal)` section of
 * docs/errors.md lists exactly CODEC_ERROR_CODES, each with a meaning.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { CODEC_ERROR_CODES } from "../../../../edge-agent/signalling/codec/index.ts";

function documentedCodecCodes(): Map<string, string> {
  const text = readFileSync(new URL("../../../../docs/errors.md", import.meta.url), "utf8");
  const section = /^## Codec \(agent-internal\)\n([\s\S]*?)(?=^## |(?![\s\S]))/m.exec(text)?.[1];
  if (section === undefined) throw new Error("docs/errors.md has no '## Codec (agent-internal)'");
  const rows = new Map<string, string>();
  for (const m of section.matchAll(/^\|\s*`([A-Z_]+)`\s*\|\s*([a-z]+)\s*\|\s*(.*?)\s*\|\s*$/gm)) {
    rows.set(m[1]!, m[3]!);
  }
  return rows;
}

describe("docs/errors.md lists every codec error code", () => {
  it("documents exactly the codes of CODEC_ERROR_CODES, each with a meaning", () => {
    const documented = documentedCodecCodes();
    expect([...documented.keys()].sort()).toEqual([...CODEC_ERROR_CODES].sort());
    for (const [code, meaning] of documented) expect(meaning.length, code).toBeGreaterThan(20);
  });
});
