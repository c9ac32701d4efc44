import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createTraceWriter } from "../../../edge-agent/signalling/trace.ts";
import { keepaliveDatagram, registerDatagram } from "../helpers/devices.ts";
import { startHarness } from "../helpers/harness.ts";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "trace-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const lines = async (file: string) =>
  (await readFile(file, "utf8"))
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);

describe("trace mode (ehome-2.0 §8 rule 4)", () => {
  it("writes every datagram both ways as JSON Lines {time, peer, direction, hex, text}", async () => {
    const file = join(dir, "trace.jsonl");
    const trace = createTraceWriter({ file, maxBytes: 1 << 20 });
    const h = await startHarness({}, { trace });
    const reg = registerDatagram({ deviceId: "cam-1", sequence: 1 });
    h.transport.deliver(reg, "10.1.1.1", 40001);
    h.transport.deliver(keepaliveDatagram("cam-1", 2), "10.1.1.1", 40001);
    h.transport.deliver(Buffer.from([0xff, 0xfe, 0x80]), "10.1.1.1", 40001);
    await h.close(); // flushes and closes the trace

    const records = await lines(file);
    expect(records.map((r) => r.direction)).toEqual(["in", "out", "in", "out", "in"]);
    expect(records[0]).toMatchObject({ peer: "10.1.1.1:40001", hex: reg.toString("hex") });
    expect(records[0]!.text).toContain("cam-1");
    expect(new Date(records[0]!.time as string).toString()).not.toBe("Invalid Date");
    expect(records[1]!.text).toContain("<Status>200</Status>");
    // Bytes that are neither UTF-8 nor GB18030: text is null, hex still there.
    expect(records[4]).toMatchObject({ hex: "fffe80", text: null });
  });

  it("rotates by size: file → file.1 → … keeping a bounded number of files", async () => {
    const file = join(dir, "t.jsonl");
    const trace = createTraceWriter({ file, maxBytes: 2000, keep: 2 });
    const d = keepaliveDatagram("cam-rotate", 1);
    for (let i = 0; i < 40; i++) {
      trace.record("in", "10.0.0.1", 5000, d);
      await trace.flush();
    }
    await trace.close();
    const files = (await readdir(dir)).sort();
    expect(files).toEqual(["t.jsonl", "t.jsonl.1", "t.jsonl.2"]);
    for (const f of files) {
      const size = (await readFile(join(dir, f))).length;
      expect(size).toBeLessThanOrEqual(2000);
    }
    expect(trace.rotations).toBeGreaterThan(2);
    const kept = (await Promise.all(files.map((f) => lines(join(dir, f))))).flat();
    expect(kept.length).toBeGreaterThan(0);
    expect(kept.every((r) => r.peer === "10.0.0.1:5000")).toBe(true);
  });

  it("never blocks: a full queue drops records and counts them", async () => {
    const file = join(dir, "q.jsonl");
    const trace = createTraceWriter({ file, maxBytes: 1 << 20, maxQueue: 2 });
    const d = keepaliveDatagram("cam-q", 1);
    for (let i = 0; i < 10; i++) trace.record("out", "10.0.0.1", 5000, d);
    await trace.close();
    expect(trace.dropped).toBeGreaterThan(0);
    expect(trace.written + trace.dropped).toBe(10);
    expect(await lines(file)).toHaveLength(trace.written);
    trace.record("out", "10.0.0.1", 5000, d); // after close: ignored, no throw
  });

  it("a write failure drops records, counts them and does not throw", async () => {
    const trace = createTraceWriter({ file: join(dir, "missing-dir", "x.jsonl"), maxBytes: 4096 });
    trace.record("in", "10.0.0.1", 5000, Buffer.from("<a/>"));
    await trace.close();
    expect(trace.dropped).toBe(1);
  });
});
