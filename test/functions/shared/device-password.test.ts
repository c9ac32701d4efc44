import { describe, expect, it } from "vitest";
import {
  hashDevicePassword,
  verifyDevicePassword,
} from "../../../functions/shared/device-password.ts";

// Cheap parameters keep the suite fast; one test uses the defaults.
const FAST = { logN: 10, r: 8, p: 1 };

describe("device passwords: only a scrypt hash is stored", () => {
  it("verifies the clear password a device sends in REGISTER against the stored hash", async () => {
    const stored = await hashDevicePassword("12345abc", FAST);
    expect(stored).toMatch(/^scrypt\$ln=10,r=8,p=1\$/);
    expect(stored).not.toContain("12345abc");
    await expect(verifyDevicePassword("12345abc", stored)).resolves.toBe(true);
    await expect(verifyDevicePassword("12345abd", stored)).resolves.toBe(false);
  });

  it("salts every hash", async () => {
    const [a, b] = await Promise.all([
      hashDevicePassword("same", FAST),
      hashDevicePassword("same", FAST),
    ]);
    expect(a).not.toBe(b);
  });

  it("uses the default parameters when none are given", async () => {
    const stored = await hashDevicePassword("pw");
    expect(stored).toMatch(/^scrypt\$ln=14,r=8,p=1\$/);
    await expect(verifyDevicePassword("pw", stored)).resolves.toBe(true);
  });

  it("refuses malformed or oversized stored hashes instead of throwing", async () => {
    await expect(verifyDevicePassword("pw", "plain-text")).resolves.toBe(false);
    await expect(
      verifyDevicePassword("pw", "scrypt$ln=30,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA==$AAAA"),
    ).resolves.toBe(false);
  });
});
