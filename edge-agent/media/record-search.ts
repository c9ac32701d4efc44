import {
  LocalDateTime,
  type RecordFile,
  RecordFileName,
  type RecordSearchParams,
  type RecordSearchResult,
} from "../../lib/contracts/media.ts";
import { type CatalogueView, DEFAULT_VIEW } from "../signalling/catalogue.ts";
import { childTexts } from "../signalling/codec/index.ts";
import type { MediaOutcome, MediaSend } from "./media-commands.ts";

/**
 * Record search (issue 4 item 4): `QUERYRECORDEDFILES` pages until the device runs out.
 *
 * ehome-2.0 §2.5 (C): `StartIdx += returned` until a page comes back with fewer entries than
 * `ChunkSize`, without any `RecordedFile`, or with a Status other than 200; here also once
 * `maxFiles` files are listed. Each `RecordedFile` is 7 space-separated tokens
 * `<fileName> <startDate> <startTime> <endDate> <endTime> <sizeBytes> <flag>` (A); a line that is
 * not is skipped and counted.
 */

export interface RecordSearchStats {
  pages: number;
  files: number;
  malformedLines: number;
}

/** One `RecordedFile` text node; undefined when it is not 7 well-formed tokens. */
export function parseRecordedFile(line: string): RecordFile | undefined {
  const t = line.trim().split(/\s+/);
  if (t.length !== 7) return undefined;
  const [fileName, sd, st, ed, et, size, flag] = t as [
    string,
    string,
    string,
    string,
    string,
    string,
    string,
  ];
  const start = `${sd} ${st}`;
  const end = `${ed} ${et}`;
  if (!RecordFileName.safeParse(fileName).success) return undefined;
  if (!LocalDateTime.safeParse(start).success || !LocalDateTime.safeParse(end).success) {
    return undefined;
  }
  if (!/^\d{1,15}$/.test(size)) return undefined;
  return { fileName, start, end, sizeBytes: Number(size), flag };
}

/**
 * Runs the search. The first page's failure is the command's (device error, timeout, offline);
 * a later page's failure ends the listing with what was found and `truncated: true`.
 */
export async function searchRecords(
  deviceId: string,
  params: RecordSearchParams,
  deps: { send: MediaSend; view?: CatalogueView; stats?: RecordSearchStats },
): Promise<MediaOutcome> {
  const recordedFile = (deps.view ?? DEFAULT_VIEW).commands.queryRecordedFiles.reply.recordedFile!;
  // A device that ignores StartIdx and keeps sending full pages must not loop for ever.
  const maxPages = params.maxFiles + 8;
  const files: RecordFile[] = [];
  let pages = 0;
  let truncated = false;
  let startIdx = 0;
  for (;;) {
    const chunkSize = Math.min(params.pageSize, params.maxFiles - files.length);
    const outcome = await deps.send(deviceId, "queryRecordedFiles", {
      channel: params.channel,
      fileType: params.fileType,
      startTime: params.start,
      stopTime: params.end,
      chunkSize,
      startIdx,
    });
    if (outcome.kind !== "ok") {
      if (pages === 0) return outcome;
      truncated = true;
      break;
    }
    pages++;
    if (deps.stats) deps.stats.pages++;
    const lines = childTexts(outcome.params, recordedFile);
    for (const line of lines) {
      const f = parseRecordedFile(line);
      if (f) files.push(f);
      else if (deps.stats) deps.stats.malformedLines++;
    }
    if (lines.length === 0 || lines.length < chunkSize) break;
    if (files.length >= params.maxFiles || pages >= maxPages) {
      // A full last page: the device may have more.
      truncated = true;
      break;
    }
    startIdx += lines.length;
  }
  const listed = files.slice(0, params.maxFiles);
  if (deps.stats) deps.stats.files += listed.length;
  const result: RecordSearchResult = { files: listed, truncated, pages };
  return { kind: "ok", result };
}
