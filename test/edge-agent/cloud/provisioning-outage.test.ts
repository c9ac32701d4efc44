import { describe, expect, it } from "vitest";
import type { DynamoSender } from "../../../edge-agent/cloud/aws.ts";
import { createDynamoProvisioningSource } from "../../../edge-agent/cloud/dynamo-provisioning.ts";

/**
 * Provisioning while DynamoDB is unreachable (issue 7): a device whose decision expired keeps its
 * last known decision (stale-if-error) instead of being left unanswered; a device never seen
 * still fails (no guess), and the next successful read replaces the stale answer.
 */

function switchableDynamo() {
  const state = { up: true, reads: 0, item: { provisioned: { BOOL: true } } as object | undefined };
  const sender = {
    async send() {
      state.reads++;
      if (!state.up)
        throw Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" });
      return { Item: state.item };
    },
  } as unknown as DynamoSender;
  return { sender, state };
}

describe("provisioning through a DynamoDB outage", () => {
  it("serves an expired decision again when the read fails, and a fresh one once it succeeds", async () => {
    const db = switchableDynamo();
    let t = 1_000_000;
    const p = createDynamoProvisioningSource(
      { devicesTable: "Devices", positiveTtlMs: 1_000, negativeTtlMs: 1_000 },
      { dynamodb: () => db.sender, now: () => t },
    );
    expect(await p.lookup("cam-1")).toEqual({ allowed: true });
    db.state.up = false;
    t += 5_000; // expired
    expect(await p.lookup("cam-1")).toEqual({ allowed: true });
    expect(p.counters()).toMatchObject({ staleServed: 1, readErrors: 1 });
    // Never seen: no stale answer to give, the lookup fails (the REGISTER stays unanswered).
    await expect(Promise.resolve(p.lookup("cam-new"))).rejects.toThrow(/ECONNREFUSED/);
    // Back: the table's answer replaces the stale one.
    db.state.up = true;
    db.state.item = { provisioned: { BOOL: false } };
    expect(await p.lookup("cam-1")).toEqual({ allowed: false });
    p.close();
  });
});
