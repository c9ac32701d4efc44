import { BatchGetCommand, type DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { StorageError } from "./errors.ts";

/** Runs one storage call, translating SDK errors into a `StorageError` naming the operation. */
export async function storageCall<T>(operation: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    throw new StorageError(operation, error);
  }
}

/**
 * Whole items for `keys` (indexes that project only a few attributes are read this way), in
 * chunks of 100, retrying unprocessed keys with backoff. Items missing from the table are absent.
 */
export async function batchGetItems<T>(
  db: DynamoDBDocumentClient,
  table: { name: string; label: string },
  keys: readonly Record<string, unknown>[],
): Promise<T[]> {
  const out: T[] = [];
  for (let i = 0; i < keys.length; i += 100) {
    let pending: Record<string, unknown>[] | undefined = keys.slice(i, i + 100);
    for (let attempt = 0; pending && pending.length > 0; attempt++) {
      if (attempt > 8)
        throw new StorageError(`${table.label}.BatchGetItem`, "unprocessed keys remain");
      if (attempt > 0) await new Promise((r) => setTimeout(r, Math.min(1000, 50 * 2 ** attempt)));
      const keysNow = pending;
      const res = await storageCall(`${table.label}.BatchGetItem`, () =>
        db.send(new BatchGetCommand({ RequestItems: { [table.name]: { Keys: keysNow } } })),
      );
      out.push(...((res.Responses?.[table.name] ?? []) as T[]));
      pending = res.UnprocessedKeys?.[table.name]?.Keys as Record<string, unknown>[] | undefined;
    }
  }
  return out;
}
