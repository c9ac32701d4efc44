import { describe, expect, it } from "vitest";
import { commandOutcome, isOverdue } from "../../../functions/api/commands-service.ts";
import type { CommandItem } from "../../../functions/shared/items.ts";

const item = (patch: Partial<CommandItem>): CommandItem => ({
  commandId: "c1",
  deviceId: "d1",
  type: "reboot",
  params: {},
  state: "sent",
  createdAt: "2025-01-01T00:00:00.000Z",
  updatedAt: "2025-01-01T00:00:00.000Z",
  deadline: Date.parse("2025-01-01T00:00:30.000Z"),
  expiresAt: 0,
  ...patch,
});

describe("command outcomes", () => {
  it("maps each state to its HTTP answer", () => {
    expect(commandOutcome(item({ state: "succeeded" }))).toEqual({ status: 200 });
    expect(commandOutcome(item({ state: "pending" }))).toEqual({ status: 202 });
    expect(commandOutcome(item({ state: "sent" }))).toEqual({ status: 202 });
    expect(
      commandOutcome(
        item({ state: "failed", error: { code: "DEVICE", message: "Status 401", status: 401 } }),
      ),
    ).toMatchObject({ code: "DEVICE_ERROR", status: 502, message: "Status 401" });
    expect(commandOutcome(item({ state: "timed-out" }))).toMatchObject({ status: 504 });
    expect(commandOutcome(item({ state: "device-offline" }))).toMatchObject({
      status: 409,
      details: { command: expect.objectContaining({ commandId: "c1" }) },
    });
  });

  it("a command is overdue only after deadline + grace, and only while open", () => {
    const deadline = Date.parse("2025-01-01T00:00:30.000Z");
    expect(isOverdue(item({}), deadline + 30_000, 30)).toBe(false);
    expect(isOverdue(item({}), deadline + 30_001, 30)).toBe(true);
    expect(isOverdue(item({ state: "succeeded" }), deadline + 999_999, 30)).toBe(false);
  });
});
