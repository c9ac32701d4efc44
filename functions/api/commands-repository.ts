import type { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { TABLES } from "../../lib/contracts/tables.ts";
import type { CommandItem } from "../shared/items.ts";
import { createStateRecords } from "../shared/state-records.ts";
import type { CommandsRepository } from "./ports.ts";

export function createCommandsRepository(
  config: { readonly commandsTable: string },
  deps: { documentClient: DynamoDBDocumentClient },
): CommandsRepository {
  const records = createStateRecords<CommandItem>(
    {
      tableName: config.commandsTable,
      idAttribute: TABLES.commands.partitionKey.name,
      label: "commands",
    },
    deps,
  );
  return {
    create: (item) => records.create(item),
    get: (commandId) => records.get(commandId),
    transition: (commandId, from, changes) => records.transition(commandId, from, changes),
  };
}
