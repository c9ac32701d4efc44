import { Transform, type TransformCallback } from "node:stream";

/**
 * A streaming `multipart/form-data` reader that passes on the bytes of the first file part (a
 * part whose Content-Disposition names a `filename`) and nothing else (ehome-2.0 §8 upload row).
 * It holds at most one chunk plus the delimiter length; the file is never buffered whole. Bytes
 * after the first file part are read and discarded. A body that ends before a complete file part
 * fails with a `MultipartError`.
 */

export class MultipartError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "MultipartError";
  }
}

/** The boundary of a `multipart/form-data` content type, or undefined when it is not one. */
export function multipartBoundary(contentType: string | undefined): string | undefined {
  if (!contentType || !/^multipart\/form-data\b/i.test(contentType.trim())) return undefined;
  const m = /;\s*boundary=(?:"([^"]{1,70})"|([^\s;]{1,70}))/i.exec(contentType);
  return m ? (m[1] ?? m[2]) : undefined;
}

const CRLF = Buffer.from("\r\n");
const HEADER_END = Buffer.from("\r\n\r\n");
const MAX_HEADER_BYTES = 8 * 1024;
const MAX_PREAMBLE_BYTES = 64 * 1024;

type State = "preamble" | "headers" | "file" | "skip" | "done";

export interface FilePartInfo {
  contentType?: string;
  filename?: string;
}

export function createFirstFilePartStream(
  boundary: string,
  onPart?: (info: FilePartInfo) => void,
): Transform {
  // The first delimiter may come without the leading CRLF (no preamble).
  const first = Buffer.from(`--${boundary}`);
  const delimiter = Buffer.from(`\r\n--${boundary}`);
  let state: State = "preamble";
  let carry: Buffer = Buffer.alloc(0);
  let consumed = 0;

  /** Processes `carry`; pushes file bytes; returns an error or undefined. */
  const step = (push: (b: Buffer) => void, final: boolean): Error | undefined => {
    for (;;) {
      switch (state) {
        case "preamble": {
          const at = carry.indexOf(first);
          if (at < 0) {
            consumed += carry.length;
            if (consumed > MAX_PREAMBLE_BYTES) return new MultipartError("no multipart boundary");
            // Keep what could be the start of the boundary.
            carry = carry.subarray(Math.max(0, carry.length - first.length));
            return undefined;
          }
          // Need the CRLF after the boundary.
          if (carry.length < at + first.length + 2) return undefined;
          carry = carry.subarray(at + first.length);
          if (carry.subarray(0, 2).equals(CRLF)) {
            carry = carry.subarray(2);
            state = "headers";
            continue;
          }
          return new MultipartError("multipart body has no parts");
        }
        case "headers": {
          const end = carry.indexOf(HEADER_END);
          if (end < 0) {
            if (carry.length > MAX_HEADER_BYTES)
              return new MultipartError("part headers too large");
            return undefined;
          }
          const headers = carry.subarray(0, end).toString("latin1").split("\r\n");
          carry = carry.subarray(end + HEADER_END.length);
          const info: FilePartInfo = {};
          let isFile = false;
          for (const line of headers) {
            const colon = line.indexOf(":");
            if (colon < 0) continue;
            const name = line.slice(0, colon).trim().toLowerCase();
            const value = line.slice(colon + 1).trim();
            if (name === "content-disposition") {
              const fm = /\bfilename="([^"]*)"|\bfilename=([^;\s]+)/i.exec(value);
              if (fm) {
                isFile = true;
                info.filename = fm[1] ?? fm[2];
              }
            } else if (name === "content-type") {
              info.contentType = value;
            }
          }
          if (isFile) onPart?.(info);
          state = isFile ? "file" : "skip";
          continue;
        }
        case "file":
        case "skip": {
          const at = carry.indexOf(delimiter);
          if (at < 0) {
            // Everything but a possible partial delimiter at the end is part data.
            const safe = Math.max(0, carry.length - (delimiter.length - 1));
            if (state === "file" && safe > 0) push(Buffer.from(carry.subarray(0, safe)));
            carry = carry.subarray(safe);
            if (final) return new MultipartError("multipart body ended inside a part");
            return undefined;
          }
          if (state === "file") {
            if (at > 0) push(Buffer.from(carry.subarray(0, at)));
            state = "done";
            carry = Buffer.alloc(0);
            return undefined;
          }
          // A skipped part ended: next comes CRLF (another part) or `--` (the end).
          if (carry.length < at + delimiter.length + 2) return undefined;
          const after = carry.subarray(at + delimiter.length, at + delimiter.length + 2);
          carry = carry.subarray(at + delimiter.length + 2);
          if (after.equals(CRLF)) {
            state = "headers";
            continue;
          }
          return new MultipartError("multipart body has no file part");
        }
        case "done":
          carry = Buffer.alloc(0);
          return undefined;
      }
    }
  };

  return new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      if (state === "done") return cb();
      carry = carry.length === 0 ? chunk : Buffer.concat([carry, chunk]);
      cb(step((b) => this.push(b), false));
    },
    flush(cb: TransformCallback) {
      if (state === "done") return cb();
      const err = step((b) => this.push(b), true);
      if (err) return cb(err);
      if ((state as State) !== "done") {
        return cb(new MultipartError("multipart body has no complete file part"));
      }
      cb();
    },
  });
}
