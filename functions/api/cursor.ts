import { ApiError } from "../shared/errors.ts";

/**
 * Opaque pagination cursors: base64url of `{s: scope, k: key}`, where `key` is the DynamoDB key
 * to continue after and `scope` names the listing and its filters, so a cursor from one listing
 * is refused by another instead of silently skipping items. Not a security boundary: a client
 * can forge one, but it can only name a position in a listing it may already read.
 */

export type CursorKey = Record<string, string | number>;

export function encodeCursor(scope: string, key: CursorKey): string {
  return Buffer.from(JSON.stringify({ s: scope, k: key }), "utf8").toString("base64url");
}

function invalid(message: string): ApiError {
  return new ApiError("VALIDATION_FAILED", "the request is not valid", [
    { in: "query", path: "cursor", message },
  ]);
}

/** The key of a cursor made by `encodeCursor(scope, …)` with exactly `keyNames`. */
export function decodeCursor(
  scope: string,
  cursor: string,
  keyNames: readonly string[],
): CursorKey {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
  } catch {
    throw invalid("not a cursor returned by this API");
  }
  if (typeof parsed !== "object" || parsed === null)
    throw invalid("not a cursor returned by this API");
  const { s, k } = parsed as { s?: unknown; k?: unknown };
  if (s !== scope) throw invalid("cursor belongs to a different listing or filter");
  if (typeof k !== "object" || k === null) throw invalid("not a cursor returned by this API");
  const key = k as Record<string, unknown>;
  const names = Object.keys(key).sort();
  if (names.join(",") !== [...keyNames].sort().join(","))
    throw invalid("not a cursor returned by this API");
  for (const name of names) {
    const value = key[name];
    if (typeof value !== "string" && typeof value !== "number") {
      throw invalid("not a cursor returned by this API");
    }
  }
  return key as CursorKey;
}
