import { z } from "zod";

/**
 * Pictures stored on a device (ehome-2.0 §8 rows QUERYPICTURES and UPLOADPIC): the params the API
 * puts in `picture-search` and `picture-fetch` commands, and what the agent answers. Times are the
 * device's local time, `YYYY-MM-DD HH:MM:SS`, as the device writes and reads them (the cloud does
 * not know a device's zone).
 */

/** ehome-2.0 §2.5: `ChunkSize` of at most 8 files per round trip (UDP size). */
export const PICTURE_PAGE_SIZE = 8;
/** Most pictures one `picture-search` returns (the agent asks `ceil(limit / 8)` pages at most). */
export const MAX_PICTURE_SEARCH_LIMIT = 200;

/** Device-local time as EHOME writes it. */
export const SearchTime = z
  .string()
  .regex(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/, "YYYY-MM-DD HH:MM:SS (device local time)");

/**
 * A stored picture's file name as a device lists it (e.g. `ch01_00000251000300`): it goes back to
 * the device in `Filename`, so only short printable names without spaces or markup are accepted.
 */
export const PICTURE_FILE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
export const PictureFileName = z
  .string()
  .regex(PICTURE_FILE_NAME, "a file name from GET /devices/{deviceId}/pictures");

const channel = z.number().int().min(1).max(512);

export const PictureSearchParams = z
  .object({
    channel,
    startTime: SearchTime,
    stopTime: SearchTime,
    /** `StartIdx` of the first page (0-based; a later page of the API resumes here). */
    startIdx: z.number().int().min(0).max(1_000_000).default(0),
    limit: z.number().int().min(1).max(MAX_PICTURE_SEARCH_LIMIT).default(50),
    /** `PicType`; 255 = all. */
    picType: z.number().int().min(0).max(255).default(255),
  })
  .strict();
export type PictureSearchParams = z.infer<typeof PictureSearchParams>;

/** One `PictureFile` line: `<fileName> <date> <time> <sizeBytes>` (ehome-2.0 §8). */
export const StoredPicture = z.object({
  fileName: z.string(),
  /** Device local time. */
  time: z.string(),
  size: z.number().int().nonnegative(),
});
export type StoredPicture = z.infer<typeof StoredPicture>;

export const PictureSearchResult = z.object({
  pictures: z.array(StoredPicture),
  /** `StartIdx` to continue from when `limit` was reached before a short page; absent at the end. */
  nextIdx: z.number().int().nonnegative().optional(),
  /** QUERYPICTURES round trips made. */
  pages: z.number().int().nonnegative(),
  /** `PictureFile` lines that did not have four tokens (skipped). */
  unparsed: z.number().int().nonnegative(),
});
export type PictureSearchResult = z.infer<typeof PictureSearchResult>;

export const PictureFetchParams = z
  .object({
    channel,
    fileName: PictureFileName,
    /** Platform-chosen picture id (the capture id), echoed by the device's upload as `PicID`. */
    picId: z
      .string()
      .min(1)
      .max(64)
      .regex(/^[A-Za-z0-9_-]+$/),
  })
  .strict();
export type PictureFetchParams = z.infer<typeof PictureFetchParams>;

/** Parses one `PictureFile` text node; undefined when it is not `<name> <date> <time> <size>`. */
export function parsePictureFile(line: string): StoredPicture | undefined {
  const tokens = line.trim().split(/\s+/);
  if (tokens.length !== 4) return undefined;
  const [fileName, date, time, size] = tokens as [string, string, string, string];
  if (!/^\d{4}-\d{2}-\d{2}$/.test(date) || !/^\d{2}:\d{2}:\d{2}$/.test(time)) return undefined;
  if (!/^\d{1,15}$/.test(size)) return undefined;
  return { fileName, time: `${date} ${time}`, size: Number(size) };
}
