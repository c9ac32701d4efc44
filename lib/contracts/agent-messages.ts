import { z } from "zod";
import { AgentCommand } from "./commands.ts";

/**
 * Messages on an agent's own command queue (one queue per agent instance; architecture §2): device
 * commands, and provisioning changes so a device deprovisioned in the API is refused at its next
 * REGISTER (and dropped now if it is online on that agent).
 */
export const ProvisioningChanged = z.object({
  kind: z.literal("provisioning-changed"),
  deviceId: z.string().min(1).max(256),
});
export type ProvisioningChanged = z.infer<typeof ProvisioningChanged>;

export const AgentQueueMessage = z.discriminatedUnion("kind", [
  AgentCommand.extend({ kind: z.literal("command") }),
  ProvisioningChanged,
]);
export type AgentQueueMessage = z.infer<typeof AgentQueueMessage>;

/** An agent's heartbeat record in the agents table. */
export const AgentRecord = z.object({
  agentId: z.string().min(1).max(128),
  commandQueueUrl: z.string().url(),
  publicHost: z.string().min(1).max(255),
  /** Port of the agent's viewer HTTP server (stream URLs, media.ts); absent on older agents. */
  viewerPort: z.number().int().min(1).max(65535).optional(),
  startedAt: z.iso.datetime(),
  heartbeatAt: z.iso.datetime(),
  /** Epoch seconds; DynamoDB TTL removes records of agents that stopped heartbeating. */
  expiresAt: z.number().int(),
});
export type AgentRecord = z.infer<typeof AgentRecord>;
