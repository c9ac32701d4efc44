import { afterEach, describe, expect, it } from "vitest";
import { parseRecordedFile, searchRecords } from "../../../edge-agent/media/record-search.ts";
import { COMMANDS } from "../../../edge-agent/signalling/catalogue.ts";
import type { CommandOutcome } from "../../../edge-agent/signalling/command-sender.ts";
import { RecordSearchParams, RecordSearchResult } from "../../../lib/contracts/media.ts";
import { type MediaRig, startMediaRig } from "./helpers/media-rig.ts";

// ehome-2.0 §2.5: QUERYRECORDEDFILES pages (StartIdx += returned until a short page), 7-token
// RecordedFile lines.

const line = (i: number) =>
  `ch0001_${String(i).padStart(17, "0")} 2024-05-01 ${String(i % 24).padStart(2, "0")}:00:00 2024-05-01 ${String(i % 24).padStart(2, "0")}:59:59 ${1000 + i} 0`;

const params = (p: object = {}) =>
  RecordSearchParams.parse({
    channel: 1,
    start: "2024-05-01 00:00:00",
    end: "2024-05-01 23:59:59",
    ...p,
  });

const RECORDED_FILE = COMMANDS.queryRecordedFiles.reply.recordedFile;

/** A device answering pages from `lines`; `fail` answers that page (0-based) with an error. */
function pager(lines: string[], fail?: { page: number; outcome: CommandOutcome }) {
  const calls: Array<Record<string, unknown>> = [];
  const send = async (_id: string, command: string, values?: Record<string, unknown>) => {
    expect(command).toBe("queryRecordedFiles");
    calls.push(values ?? {});
    if (fail && calls.length - 1 === fail.page) return fail.outcome;
    const start = Number(values?.startIdx);
    const page = lines.slice(start, start + Number(values?.chunkSize));
    return {
      kind: "ok",
      status: 200,
      description: "OK",
      params: page.length === 0 ? {} : { [RECORDED_FILE]: page },
    } as CommandOutcome;
  };
  return { send: send as never, calls };
}

describe("record search", { timeout: 20_000 }, () => {
  let rig: MediaRig | undefined;
  afterEach(async () => {
    await rig?.close();
    rig = undefined;
  });

  it("pages over UDP until a short page, StartIdx advancing by what each page returned", async () => {
    rig = await startMediaRig();
    rig.device.records = Array.from({ length: 19 }, (_, i) => line(i));
    const out = await rig.manager.searchRecords(rig.device.deviceId, params({ pageSize: 8 }));
    expect(out.kind).toBe("ok");
    const result = RecordSearchResult.parse((out as { result: unknown }).result);
    expect(result.pages).toBe(3);
    expect(result.truncated).toBe(false);
    expect(result.files.map((f) => f.sizeBytes)).toEqual(
      Array.from({ length: 19 }, (_, i) => 1000 + i),
    );
    expect(result.files[1]).toEqual({
      fileName: "ch0001_00000000000000001",
      start: "2024-05-01 01:00:00",
      end: "2024-05-01 01:59:59",
      sizeBytes: 1001,
      flag: "0",
    });
    const pages = rig.device.requestsOf("queryRecordedFiles").map((r) => r.fields);
    expect(pages.map((p) => [p.startIdx, p.chunkSize])).toEqual([
      ["0", "8"],
      ["8", "8"],
      ["16", "8"],
    ]);
    expect(pages[0]).toMatchObject({
      channel: "1",
      fileType: "255",
      startTime: "2024-05-01 00:00:00",
      stopTime: "2024-05-01 23:59:59",
    });
  });

  it("a full page that ends the listing is followed by an empty one", async () => {
    const p = pager(Array.from({ length: 16 }, (_, i) => line(i)));
    const out = await searchRecords("cam", params({ pageSize: 8 }), { send: p.send });
    expect(out).toMatchObject({ kind: "ok", result: { pages: 3, truncated: false } });
    expect((out as { result: RecordSearchResult }).result.files).toHaveLength(16);
  });

  it("stops at maxFiles (truncated), asking only for what is missing", async () => {
    const p = pager(Array.from({ length: 50 }, (_, i) => line(i)));
    const out = await searchRecords("cam", params({ pageSize: 8, maxFiles: 12 }), {
      send: p.send,
    });
    expect(out).toMatchObject({ kind: "ok", result: { pages: 2, truncated: true } });
    expect((out as { result: RecordSearchResult }).result.files).toHaveLength(12);
    expect(p.calls.map((c) => c.chunkSize)).toEqual([8, 4]);
  });

  it("skips and counts malformed lines", async () => {
    const lines = [
      line(0),
      "garbage",
      "ch1 2024-05-01 00:00:00 2024-05-01 00:59:59 12", // 6 tokens
      "ch1 2024-05-01 00:00:00 2024-05-01 00:59:59 big 0", // size not a number
      "ch/1 2024-05-01 00:00:00 2024-05-01 00:59:59 1 0", // not a record file name
      "ch1 01/05/2024 00:00:00 2024-05-01 00:59:59 1 0", // not device-local time
      `  ${line(1)}  `,
    ];
    const stats = { pages: 0, files: 0, malformedLines: 0 };
    const out = await searchRecords("cam", params({ pageSize: 8 }), {
      send: pager(lines).send,
      stats,
    });
    expect((out as { result: RecordSearchResult }).result.files.map((f) => f.sizeBytes)).toEqual([
      1000, 1001,
    ]);
    expect(stats).toEqual({ pages: 1, files: 2, malformedLines: 5 });
    expect(parseRecordedFile(line(3))?.fileName).toBe("ch0001_00000000000000003");
  });

  it("the first page's failure is the search's; a later one ends it with what was found", async () => {
    const lines = Array.from({ length: 30 }, (_, i) => line(i));
    const first = await searchRecords("cam", params(), {
      send: pager(lines, { page: 0, outcome: { kind: "timeout" } }).send,
    });
    expect(first).toEqual({ kind: "timeout" });
    const later = await searchRecords("cam", params({ pageSize: 8 }), {
      send: pager(lines, {
        page: 1,
        outcome: { kind: "device-error", status: 500, description: "busy", params: {} },
      }).send,
    });
    expect(later).toMatchObject({ kind: "ok", result: { pages: 1, truncated: true } });
    expect((later as { result: RecordSearchResult }).result.files).toHaveLength(8);
  });

  it("a device ignoring StartIdx (full pages for ever) cannot loop: the search stops", async () => {
    const send = async () =>
      ({
        kind: "ok",
        status: 200,
        description: "OK",
        params: { [RECORDED_FILE]: Array.from({ length: 8 }, () => "bad line") },
      }) as CommandOutcome;
    const out = await searchRecords("cam", params({ pageSize: 8, maxFiles: 10 }), {
      send: send as never,
    });
    expect(out).toMatchObject({ kind: "ok", result: { files: [], truncated: true } });
  });
});
