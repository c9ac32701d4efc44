import { QueryCommand } from "@aws-sdk/lib-dynamodb";
import type { PresenceItem } from "../../../functions/shared/items.ts";
import type { LocalBackends } from "../../../lib/local/backends.ts";
import type { FunctionClients } from "../support.ts";

/** A device's presence history as stored (one strongly consistent Query), newest first by default. */
export async function presenceHistory(
  clients: FunctionClients,
  backends: LocalBackends,
  deviceId: string,
  order: "newest-first" | "oldest-first" = "newest-first",
): Promise<PresenceItem[]> {
  const out = await clients.documentClient.send(
    new QueryCommand({
      TableName: backends.resources.tables.presence,
      KeyConditionExpression: "deviceId = :d",
      ExpressionAttributeValues: { ":d": deviceId },
      ScanIndexForward: order === "oldest-first",
      ConsistentRead: true,
    }),
  );
  return (out.Items ?? []) as PresenceItem[];
}
