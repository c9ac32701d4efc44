import { SendMessageCommand, type SQSClient } from "@aws-sdk/client-sqs";
import { type DynamoDBDocumentClient, GetCommand, ScanCommand } from "@aws-sdk/lib-dynamodb";
import type { AgentRecord } from "../../lib/contracts/agent-messages.ts";
import { agentKey } from "../../lib/contracts/tables.ts";
import { QueueSendError, StorageError } from "../shared/errors.ts";
import type { Logger } from "../shared/logger.ts";
import { parseAgentRecord } from "./agents.ts";
import type { AgentQueue, AgentsRepository } from "./ports.ts";

export function createAgentsRepository(
  config: { readonly agentsTable: string },
  deps: { documentClient: DynamoDBDocumentClient; logger: Logger },
): AgentsRepository {
  const db = deps.documentClient;
  const TableName = config.agentsTable;
  const parse = (item: unknown): AgentRecord | undefined => {
    const record = parseAgentRecord(item);
    if (item !== undefined && !record) deps.logger.warn("malformed agent record ignored", { item });
    return record;
  };
  return {
    async get(agentId) {
      try {
        const out = await db.send(new GetCommand({ TableName, Key: agentKey(agentId) }));
        return parse(out.Item);
      } catch (error) {
        throw new StorageError("agents.GetItem", error);
      }
    },

    async list() {
      const records: AgentRecord[] = [];
      let startKey: Record<string, unknown> | undefined;
      try {
        do {
          const out = await db.send(
            new ScanCommand({ TableName, ...(startKey ? { ExclusiveStartKey: startKey } : {}) }),
          );
          for (const item of out.Items ?? []) {
            const record = parse(item);
            if (record) records.push(record);
          }
          startKey = out.LastEvaluatedKey;
        } while (startKey);
      } catch (error) {
        throw new StorageError("agents.Scan", error);
      }
      return records;
    },
  };
}

export function createAgentQueue(deps: { sqs: SQSClient }): AgentQueue {
  return {
    async send(queueUrl, message) {
      try {
        await deps.sqs.send(
          new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: JSON.stringify(message) }),
        );
      } catch (error) {
        throw new QueueSendError(queueUrl, error);
      }
    },
  };
}
