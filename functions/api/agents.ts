import { AgentRecord } from "../../lib/contracts/agent-messages.ts";

/**
 * Agent liveness, as the API sees it. An agent is live while its heartbeat record's `expiresAt`
 * (set by the agent at every heartbeat) is in the future. DynamoDB TTL deletes expired records
 * lazily, possibly days later, so the clock comparison is what counts.
 */
export function isAgentLive(agent: AgentRecord, nowMs: number): boolean {
  return agent.expiresAt * 1000 > nowMs;
}

/** Parses a stored agent item; `undefined` when it does not match the contract. */
export function parseAgentRecord(item: unknown): AgentRecord | undefined {
  const parsed = AgentRecord.safeParse(item);
  return parsed.success ? parsed.data : undefined;
}

/**
 * The API's IAM role may send only to queues under the agent-queue prefix; checking it here too
 * turns a bad heartbeat record into a clear log line instead of an AccessDenied.
 */
export function queueUrlAllowed(queueUrl: string, prefix: string | undefined): boolean {
  if (prefix === undefined) return true;
  let name: string;
  try {
    name = new URL(queueUrl).pathname.split("/").filter(Boolean).at(-1) ?? "";
  } catch {
    return false;
  }
  return name.startsWith(prefix);
}
