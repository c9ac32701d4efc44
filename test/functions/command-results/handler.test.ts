import { GetCommand, PutCommand } from "@aws-sdk/lib-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type CommandResultsHandler,
  createCommandResultsHandler,
} from "../../../functions/command-results/handler.ts";
import { createCommandResultsRepository } from "../../../functions/command-results/repository.ts";
import { createCommandResultsService } from "../../../functions/command-results/service.ts";
import { systemClock } from "../../../functions/shared/clock.ts";
import type { CommandItem } from "../../../functions/shared/items.ts";
import type { CommandResult } from "../../../lib/contracts/commands.ts";
import { useLocalBackends } from "../../helpers/local-backends.ts";
import { type FunctionClients, functionClients, recordingLogger, sqsEvent } from "../support.ts";

const backends = useLocalBackends();
let clients: FunctionClients;
let handler: CommandResultsHandler;
const log = recordingLogger();

beforeAll(() => {
  clients = functionClients(backends());
  const repository = createCommandResultsRepository(
    { commandsTable: backends().resources.tables.commands },
    { documentClient: clients.documentClient },
  );
  const service = createCommandResultsService({
    repository,
    clock: systemClock,
    logger: log.logger,
  });
  handler = createCommandResultsHandler({ service, logger: log.logger });
});
afterAll(() => clients?.close());

let counter = 0;
async function storedCommand(state: CommandItem["state"]): Promise<CommandItem> {
  const item: CommandItem = {
    commandId: `cmd-${++counter}`,
    deviceId: "dev-1",
    type: "work-status",
    params: {},
    state,
    createdAt: "2025-01-01T00:00:00.000Z",
    updatedAt: "2025-01-01T00:00:00.000Z",
    deadline: Date.parse("2025-01-01T00:00:30.000Z"),
    expiresAt: 1_900_000_000,
  };
  await clients.documentClient.send(
    new PutCommand({ TableName: backends().resources.tables.commands, Item: item }),
  );
  return item;
}

async function read(commandId: string): Promise<CommandItem> {
  const out = await clients.documentClient.send(
    new GetCommand({
      TableName: backends().resources.tables.commands,
      Key: { commandId },
      ConsistentRead: true,
    }),
  );
  return out.Item as CommandItem;
}

const result = (commandId: string, patch: Partial<CommandResult> = {}): CommandResult => ({
  commandId,
  deviceId: "dev-1",
  agentId: "agent-a",
  state: "succeeded",
  result: { channels: [{ channel: 1, recording: true }] },
  at: "2025-01-01T00:00:05.000Z",
  ...patch,
});

describe("command-results handler on DynamoDB Local", () => {
  it("moves a sent command to its final state with the result", async () => {
    const command = await storedCommand("sent");
    const response = await handler(sqsEvent(result(command.commandId)));
    expect(response.batchItemFailures).toEqual([]);
    expect(await read(command.commandId)).toMatchObject({
      state: "succeeded",
      result: { channels: [{ channel: 1, recording: true }] },
      completedAt: "2025-01-01T00:00:05.000Z",
      agentId: "agent-a",
    });
  });

  it("accepts a result that overtook the API's pending → sent write", async () => {
    const command = await storedCommand("pending");
    await handler(
      sqsEvent(
        result(command.commandId, {
          state: "failed",
          result: undefined,
          error: { code: "DEVICE_STATUS", message: "Status 400: bad parameter", status: 400 },
        }),
      ),
    );
    expect(await read(command.commandId)).toMatchObject({
      state: "failed",
      error: { code: "DEVICE_STATUS", status: 400 },
    });
  });

  it("treats a duplicate or late result as a no-op, not an error", async () => {
    const command = await storedCommand("sent");
    await handler(sqsEvent(result(command.commandId)));
    const once = await read(command.commandId);
    const timedOut = await storedCommand("timed-out");
    const response = await handler(
      sqsEvent(
        result(command.commandId, { state: "failed", error: { code: "X", message: "late" } }),
        result(timedOut.commandId),
        result("no-such-command"),
      ),
    );
    expect(response.batchItemFailures).toEqual([]);
    expect(await read(command.commandId)).toEqual(once);
    expect((await read(timedOut.commandId)).state).toBe("timed-out");
    const reasons = log
      .lines()
      .filter((l) => l.message === "command result ignored")
      .map((l) => l.reason);
    expect(reasons).toEqual(expect.arrayContaining(["already-final", "unknown-command"]));
  });

  it("ignores a result naming another device than the command's", async () => {
    const command = await storedCommand("sent");
    await handler(sqsEvent(result(command.commandId, { deviceId: "dev-2" })));
    expect((await read(command.commandId)).state).toBe("sent");
  });

  it("reports a malformed result as a batch item failure (poison → DLQ)", async () => {
    const batch = sqsEvent({ commandId: "c", state: "exploded" });
    expect((await handler(batch)).batchItemFailures).toEqual([
      { itemIdentifier: batch.Records[0]!.messageId },
    ]);
  });
});
