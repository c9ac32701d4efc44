import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { openSpillFile } from "../../../edge-agent/cloud/spill-file.ts";

/**
 * The spill file's offsets (issue 7): lines read back with their end offsets, the acknowledged
 * prefix persisted, truncation once all is acknowledged, and compaction of a file that never
 * fully drains (offsets stay valid across it; a restart resumes after the acknowledged prefix).
 */

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "ehome-spillfile-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const line = (i: number) => JSON.stringify({ deviceId: "cam-1", type: "alarm", n: i });

describe("spill file", () => {
  it("creates nothing until a line is written", () => {
    const s = openSpillFile({ dir: join(dir, "sub"), name: "x", maxBytes: 1 << 20 });
    expect(s.pending).toBe(false);
    expect(s.read()).toEqual([]);
    s.close();
    expect(() => statSync(join(dir, "sub"))).toThrow();
  });

  it("compacts the acknowledged prefix; offsets stay valid; a restart resumes after it", () => {
    const s = openSpillFile({ dir, name: "x", maxBytes: 1 << 20, compactAfterBytes: 100 });
    for (let i = 0; i < 10; i++) expect(s.append(line(i))).toBe(true);
    const read = s.read();
    expect(read.map((r) => JSON.parse(r.line).n)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const full = statSync(join(dir, "x.jsonl")).size;
    s.commit(read[7]!.end); // 8 acknowledged, over 100 bytes: compacted to the last two
    const compacted = statSync(join(dir, "x.jsonl")).size;
    expect(compacted).toBe(full - read[7]!.end);
    expect(s.bytes).toBe(compacted);
    // More lines after the compaction read back with offsets that still commit correctly.
    s.append(line(10));
    const more = s.read();
    expect(more.map((r) => JSON.parse(r.line).n)).toEqual([10]);
    s.commit(read[9]!.end);
    s.close();

    // Restart: only what was not acknowledged comes back.
    const again = openSpillFile({ dir, name: "x", maxBytes: 1 << 20 });
    expect(again.read().map((r) => JSON.parse(r.line).n)).toEqual([10]);
    again.close();
  });

  it("truncates once everything is acknowledged, and refuses lines beyond maxBytes", () => {
    const s = openSpillFile({ dir, name: "y", maxBytes: 3 * (line(0).length + 1) });
    expect([0, 1, 2, 3].map((i) => s.append(line(i)))).toEqual([true, true, true, false]);
    const read = s.read();
    s.commit(read[2]!.end);
    expect(statSync(join(dir, "y.jsonl")).size).toBe(0);
    expect(s.pending).toBe(false);
    expect(s.append(line(4))).toBe(true);
    s.close();
  });
});
