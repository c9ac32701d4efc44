import { spawn } from "node:child_process";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { DynamoDbLocalError, startDynamoDbLocal } from "../../../lib/local/dynamodb.ts";
import { eventually } from "../../helpers/local-backends.ts";

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe("DynamoDB Local process", () => {
  it("answers on its endpoint, and close() stops the Java process", async () => {
    const db = await startDynamoDbLocal();
    const pid = db.pid;

    const res = await fetch(db.endpoint, {
      method: "POST",
      headers: {
        "content-type": "application/x-amz-json-1.0",
        "x-amz-target": "DynamoDB_20120810.ListTables",
        authorization:
          "AWS4-HMAC-SHA256 Credential=x/20200101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0",
      },
      body: "{}",
    });
    expect(await res.json()).toEqual({ TableNames: [] });
    expect(pid).toEqual(expect.any(Number));

    await db.close();
    await db.close();

    expect(isAlive(pid!)).toBe(false);
  });

  it("never outlives its parent: SIGKILL of the Node process takes Java down too", async () => {
    const child = spawn(
      process.execPath,
      ["--import", "tsx", fileURLToPath(new URL("./dynamodb-child.ts", import.meta.url))],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    const started = await eventually(
      async () => (output.includes("\n") ? (JSON.parse(output) as { pid: number }) : undefined),
      { timeoutMs: 30_000 },
    );
    expect(isAlive(started.pid)).toBe(true);

    child.kill("SIGKILL");

    await eventually(async () => (isAlive(started.pid) ? undefined : true), { timeoutMs: 10_000 });
  }, 40_000);

  it("fails with a clear error when Java cannot be run", async () => {
    const attempt = startDynamoDbLocal({ java: "/nonexistent/bin/java", port: 1 });

    await expect(attempt).rejects.toBeInstanceOf(DynamoDbLocalError);
    await expect(attempt).rejects.toThrow(/Java/);
  });

  it("refuses a fixed port someone else holds rather than talk to the wrong server", async () => {
    const other = createServer();
    await new Promise<void>((resolve) => other.listen(0, "127.0.0.1", resolve));
    const port = (other.address() as { port: number }).port;

    try {
      await expect(startDynamoDbLocal({ port })).rejects.toThrow(/already in use/);
    } finally {
      await new Promise((resolve) => other.close(resolve));
    }
  });
});
