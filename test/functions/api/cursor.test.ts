import { describe, expect, it } from "vitest";
import { decodeCursor, encodeCursor } from "../../../functions/api/cursor.ts";

describe("pagination cursors", () => {
  it("round-trips a key within the same listing", () => {
    const cursor = encodeCursor("devices?x", { deviceId: "a", status: "online" });
    expect(cursor).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(decodeCursor("devices?x", cursor, ["status", "deviceId"])).toEqual({
      deviceId: "a",
      status: "online",
    });
  });

  it("refuses a cursor from another listing or filter with a 422 naming the cursor", () => {
    const cursor = encodeCursor("devices?a", { deviceId: "a" });
    expect(() => decodeCursor("devices?b", cursor, ["deviceId"])).toThrow(
      expect.objectContaining({
        code: "VALIDATION_FAILED",
        details: [expect.objectContaining({ path: "cursor" })],
      }),
    );
  });

  it("refuses garbage and keys with unexpected attributes", () => {
    expect(() => decodeCursor("s", "%%%", ["deviceId"])).toThrow(
      expect.objectContaining({ status: 422 }),
    );
    const extra = encodeCursor("s", { deviceId: "a", passwordHash: "x" });
    expect(() => decodeCursor("s", extra, ["deviceId"])).toThrow(
      expect.objectContaining({ status: 422 }),
    );
  });
});
