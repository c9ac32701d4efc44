import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { CommandParams } from "../../../lib/contracts/commands.ts";
import { firmwareObjectKey } from "../../../lib/contracts/storage.ts";
import {
  FIRMWARE_TOKEN_MAX_LENGTH,
  type FirmwareTokenClaims,
  firmwareUrl,
  mintFirmwareToken,
  parseFirmwareTokenKey,
  peekFirmwareTokenClaims,
  UpgradeProgressEvent,
  verifyFirmwareToken,
} from "../../../lib/contracts/upgrades.ts";

const key = randomBytes(32);
const now = Date.UTC(2026, 10, 24, 6, 0, 0);
const claims: FirmwareTokenClaims = {
  deviceId: "DEV-0001",
  campaignId: "8d3f0c52-6a4e-4a3b-9d0a-0e6c2f9f3a11",
  firmwareId: "0f4b5a2e-1c7d-4e8f-9a6b-3c2d1e0f9a8b",
  expiresAt: now / 1000 + 3600,
  attempt: 2,
};

describe("firmware download token", () => {
  it("verifies what was minted and returns its claims", () => {
    const token = mintFirmwareToken(key, claims);
    expect(verifyFirmwareToken(key, token, now)).toEqual({ ok: true, claims });
  });

  it("keeps the device URL far below the 512 bytes of UPDATE's URL (ehome-2.0 §8)", () => {
    const token = mintFirmwareToken(key, claims);
    const url = firmwareUrl("203.0.113.250", 8080, token);
    expect(url.startsWith("http://203.0.113.250:8080/fw/")).toBe(true);
    expect(Buffer.byteLength(url)).toBeLessThan(256);
    expect(token).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{22}$/);
  });

  it("is refused as expired at and after its expiry second", () => {
    const token = mintFirmwareToken(key, claims);
    expect(verifyFirmwareToken(key, token, claims.expiresAt * 1000 - 1).ok).toBe(true);
    expect(verifyFirmwareToken(key, token, claims.expiresAt * 1000)).toEqual({
      ok: false,
      error: "expired",
    });
  });

  it("is refused as bad-signature when the payload or MAC is changed, or under another key", () => {
    const token = mintFirmwareToken(key, claims);
    const [payload, mac] = token.split(".") as [string, string];
    const other = mintFirmwareToken(key, { ...claims, deviceId: "DEV-0002" });
    const swapped = `${other.split(".")[0]}.${mac}`;
    expect(verifyFirmwareToken(key, swapped, now)).toEqual({ ok: false, error: "bad-signature" });
    const flipped = `${payload}.${mac[0] === "A" ? "B" : "A"}${mac.slice(1)}`;
    expect(verifyFirmwareToken(key, flipped, now)).toEqual({ ok: false, error: "bad-signature" });
    expect(verifyFirmwareToken(randomBytes(32), token, now)).toEqual({
      ok: false,
      error: "bad-signature",
    });
  });

  it("is refused as malformed when it is not payload.mac or too long", () => {
    for (const bad of ["", "abc", "a.b", "a b.cccccccccccccccccccccc", "x".repeat(500)]) {
      expect(verifyFirmwareToken(key, bad, now), bad).toEqual({ ok: false, error: "malformed" });
    }
    expect(() => mintFirmwareToken(key, { ...claims, deviceId: "D".repeat(256) })).toThrow(
      new RegExp(`over ${FIRMWARE_TOKEN_MAX_LENGTH}`),
    );
  });

  it("is readable unverified for trusted sources", () => {
    expect(peekFirmwareTokenClaims(mintFirmwareToken(key, claims))).toEqual(claims);
    expect(peekFirmwareTokenClaims("nope")).toBeUndefined();
  });

  it("keys are hex or base64 of at least 32 bytes", () => {
    const raw = randomBytes(32);
    expect(parseFirmwareTokenKey(raw.toString("hex"))).toEqual(raw);
    expect(parseFirmwareTokenKey(raw.toString("base64"))).toEqual(raw);
    expect(parseFirmwareTokenKey(raw.toString("base64url"))).toEqual(raw);
    expect(() => parseFirmwareTokenKey("abcd")).toThrow(/at least 32 bytes/);
    expect(() => parseFirmwareTokenKey("")).toThrow(/at least 32 bytes/);
  });
});

describe("firmware contracts", () => {
  it("firmware objects live under the media bucket's firmware/ prefix", () => {
    expect(firmwareObjectKey("fw_1")).toBe("firmware/fw_1.bin");
    expect(() => firmwareObjectKey("../x")).toThrow(/firmware id/);
  });

  it("firmware-update params need a token, size and version; md5 is lower-case hex", () => {
    const p = CommandParams["firmware-update"];
    expect(p.safeParse({ token: "a.b", fileSize: 10, version: "V5.5.0" }).success).toBe(true);
    expect(p.safeParse({ token: "a.b", fileSize: 0, version: "V5.5.0" }).success).toBe(false);
    expect(p.safeParse({ token: "a.b", fileSize: 1, version: "v", md5: "ABC" }).success).toBe(
      false,
    );
  });

  it("progress events are bytes-served or device-status", () => {
    const base = {
      deviceId: "D1",
      campaignId: "c1",
      agentId: "a1",
      at: new Date(now).toISOString(),
    };
    expect(
      UpgradeProgressEvent.safeParse({
        ...base,
        kind: "bytes-served",
        bytes: 10,
        totalBytes: 20,
        reachedEnd: false,
      }).success,
    ).toBe(true);
    expect(
      UpgradeProgressEvent.safeParse({
        ...base,
        kind: "device-status",
        status: "UPGRADING",
        percent: 50,
      }).success,
    ).toBe(true);
    expect(
      UpgradeProgressEvent.safeParse({ ...base, kind: "device-status", status: "DONE" }).success,
    ).toBe(false);
  });
});
