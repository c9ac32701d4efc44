/**
 * Reading a few attributes of an item in DynamoDB's wire form (`{S: "…"}`, `{N: "…"}`). The
 * document client unmarshals results, but not the item a `ConditionalCheckFailedException`
 * carries with `ReturnValuesOnConditionCheckFailure: ALL_OLD`; that item tells us why a
 * conditional write failed without a second read (and without read permission).
 */

export type RawItem = Record<string, unknown>;

/** The item attached to a conditional-check failure, if the request asked for it. */
export function conditionFailureItem(error: unknown): RawItem | undefined {
  const item = (error as { Item?: unknown }).Item;
  return typeof item === "object" && item !== null ? (item as RawItem) : undefined;
}

export function rawString(item: RawItem, name: string): string | undefined {
  const value = (item[name] as { S?: unknown } | undefined)?.S;
  return typeof value === "string" ? value : undefined;
}

export function rawNumber(item: RawItem, name: string): number | undefined {
  const value = (item[name] as { N?: unknown } | undefined)?.N;
  if (typeof value !== "string") return undefined;
  const number = Number(value);
  return Number.isFinite(number) ? number : undefined;
}
