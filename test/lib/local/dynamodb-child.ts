// Run by dynamodb.test.ts as a separate process: starts DynamoDB Local, prints the Java pid,
// then idles until it is killed.
import { startDynamoDbLocal } from "../../../lib/local/dynamodb.ts";

const db = await startDynamoDbLocal();
process.stdout.write(`${JSON.stringify({ pid: db.pid, endpoint: db.endpoint })}\n`);
setInterval(() => {}, 60_000);
