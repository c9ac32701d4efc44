import { createHmac, timingSafeEqual } from "node:crypto";
import { z } from "zod";

/**
 * Firmware upgrades across the edge–cloud line (issue 6, ehome-2.0 §6 and the §8 rows `UPDATE` and
 * `UPGRADESTATUS`):
 *
 * - The engine mints a **firmware download token** per (device, campaign, attempt) with the shared
 *   key (`ENV.FIRMWARE_TOKEN_KEY`) and puts it in a `firmware-update` command (commands.ts). The agent
 *   turns it into the short URL `http://<EHOME_PUBLIC_HOST>:<EHOME_HTTP_PORT>/fw/<token>` (only the
 *   agent knows the address devices reach it on) and sends `UPDATE` with it. Devices never get an S3
 *   presigned URL: it would not fit the 512-byte `URL` nor the 1500-byte message (ehome-2.0 §8).
 * - `GET /fw/<token>` on the agent verifies the token (signature, expiry, and that the token's device
 *   has a session on this agent from the request's source address), then streams
 *   `firmwareObjectKey(firmwareId)` from the media bucket, honouring `Range`.
 * - The agent reports progress on the upgrade-events queue (`UPGRADE_EVENTS_QUEUE`, queues.ts):
 *   bytes served per (device, campaign) and the device's own `UPGRADESTATUS` reports.
 */

// Download token ----------------------------------------------------------------------------------

/** What a download token grants: one device, one campaign, one firmware, until `expiresAt`. */
export interface FirmwareTokenClaims {
  deviceId: string;
  campaignId: string;
  firmwareId: string;
  /** Epoch seconds after which the token is refused. */
  expiresAt: number;
  /** Attempt number of the execution (retries mint a new token). */
  attempt?: number;
}

export type FirmwareTokenError = "expired" | "bad-signature" | "malformed";

export type FirmwareTokenResult =
  | { ok: true; claims: FirmwareTokenClaims }
  | { ok: false; error: FirmwareTokenError };

/** Key material: at least 32 bytes. */
export const FIRMWARE_TOKEN_KEY_MIN_BYTES = 32;
/** Tokens longer than this are refused when minting and when verifying (URL ≤ 512 bytes, §8). */
export const FIRMWARE_TOKEN_MAX_LENGTH = 400;
/** Path prefix on the agent's device HTTP port. */
export const FIRMWARE_PATH_PREFIX = "/fw/";

const MAC_BYTES = 16;
/** Domain separation: a MAC made for anything else with the same key never verifies here. */
const MAC_CONTEXT = "ehome-fw-token-v1.";

const WirePayload = z
  .object({
    d: z.string().min(1).max(256),
    c: z.string().min(1).max(64),
    f: z.string().min(1).max(64),
    e: z.number().int().nonnegative(),
    a: z.number().int().min(0).max(1000).optional(),
  })
  .strict();

/**
 * Parses the key as configured: 64+ hex digits, or base64/base64url of at least 32 bytes.
 * Throws on anything shorter, so a weak or empty key fails at start-up.
 */
export function parseFirmwareTokenKey(text: string): Buffer {
  const t = text.trim();
  const key = /^(?:[0-9a-fA-F]{2})+$/.test(t)
    ? Buffer.from(t, "hex")
    : /^[A-Za-z0-9+/_-]+={0,2}$/.test(t)
      ? Buffer.from(t.replace(/-/g, "+").replace(/_/g, "/"), "base64")
      : Buffer.alloc(0);
  if (key.length < FIRMWARE_TOKEN_KEY_MIN_BYTES) {
    throw new Error(
      `firmware token key must be hex or base64 of at least ${FIRMWARE_TOKEN_KEY_MIN_BYTES} bytes`,
    );
  }
  return key;
}

function mac(key: Uint8Array, payload: string): Buffer {
  return createHmac("sha256", key)
    .update(MAC_CONTEXT + payload)
    .digest()
    .subarray(0, MAC_BYTES);
}

/**
 * `base64url(JSON {d,c,f,e,a?}) "." base64url(HMAC-SHA256(key, context + payload)[0..16])`.
 * A 12-character device id, a UUID campaign and firmware id make a token of about 190 characters.
 */
export function mintFirmwareToken(key: Uint8Array, claims: FirmwareTokenClaims): string {
  const wire = WirePayload.parse({
    d: claims.deviceId,
    c: claims.campaignId,
    f: claims.firmwareId,
    e: claims.expiresAt,
    ...(claims.attempt === undefined ? {} : { a: claims.attempt }),
  });
  const payload = Buffer.from(JSON.stringify(wire)).toString("base64url");
  const token = `${payload}.${mac(key, payload).toString("base64url")}`;
  if (token.length > FIRMWARE_TOKEN_MAX_LENGTH) {
    throw new Error(
      `firmware token is ${token.length} characters, over ${FIRMWARE_TOKEN_MAX_LENGTH}`,
    );
  }
  return token;
}

/**
 * Checks shape, then signature (constant time), then expiry against `nowMs` (epoch ms). Claims of a
 * token with a bad signature are never returned.
 */
export function verifyFirmwareToken(
  key: Uint8Array,
  token: string,
  nowMs: number,
): FirmwareTokenResult {
  if (token.length > FIRMWARE_TOKEN_MAX_LENGTH) return { ok: false, error: "malformed" };
  const m = /^([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]{22})$/.exec(token);
  if (!m) return { ok: false, error: "malformed" };
  const [, payload, sig] = m as unknown as [string, string, string];
  const given = Buffer.from(sig, "base64url");
  if (given.length !== MAC_BYTES || !timingSafeEqual(given, mac(key, payload))) {
    return { ok: false, error: "bad-signature" };
  }
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(payload, "base64url").toString("utf8"));
  } catch {
    return { ok: false, error: "malformed" };
  }
  const parsed = WirePayload.safeParse(json);
  if (!parsed.success) return { ok: false, error: "malformed" };
  const w = parsed.data;
  if (w.e * 1000 <= nowMs) return { ok: false, error: "expired" };
  return {
    ok: true,
    claims: {
      deviceId: w.d,
      campaignId: w.c,
      firmwareId: w.f,
      expiresAt: w.e,
      ...(w.a === undefined ? {} : { attempt: w.a }),
    },
  };
}

/**
 * The claims of a token WITHOUT checking its signature or expiry: only for tokens from a trusted
 * source (the agent's command queue), to tie later device reports to the campaign.
 */
export function peekFirmwareTokenClaims(token: string): FirmwareTokenClaims | undefined {
  const payload = /^([A-Za-z0-9_-]+)\.[A-Za-z0-9_-]{22}$/.exec(token)?.[1];
  if (!payload) return undefined;
  try {
    const w = WirePayload.safeParse(JSON.parse(Buffer.from(payload, "base64url").toString("utf8")));
    if (!w.success) return undefined;
    const { d, c, f, e, a } = w.data;
    return {
      deviceId: d,
      campaignId: c,
      firmwareId: f,
      expiresAt: e,
      ...(a === undefined ? {} : { attempt: a }),
    };
  } catch {
    return undefined;
  }
}

/**
 * The URL a device is given: `http://host:port/fw/<token>`, or `https://` when the device HTTP
 * routes are reached over TLS (ehome-2.0 §8 row UPDATE: http or https, ≤ 512 bytes).
 */
export function firmwareUrl(
  host: string,
  port: number,
  token: string,
  scheme: "http" | "https" = "http",
): string {
  return `${scheme}://${host}:${port}${FIRMWARE_PATH_PREFIX}${token}`;
}

// Progress events (agent → upgrades function) -----------------------------------------------------

/** `Status` values of `UPGRADESTATUS` (ehome-2.0 §8). */
export const DEVICE_UPGRADE_STATUSES = ["DOWNLOADING", "UPGRADING", "FAILED", "SUCCEEDED"] as const;
export const DeviceUpgradeStatus = z.enum(DEVICE_UPGRADE_STATUSES);
export type DeviceUpgradeStatus = z.infer<typeof DeviceUpgradeStatus>;

const progressBase = {
  deviceId: z.string().min(1).max(256),
  campaignId: z.string().min(1).max(64),
  /** The token's attempt, when the agent knows it (bytes-served always; device-status if recorded). */
  attempt: z.number().int().min(0).optional(),
  agentId: z.string().min(1).max(128),
  at: z.iso.datetime(),
};

/**
 * One progress observation. Consumers must treat them as unordered and idempotent: `bytes` is
 * cumulative (take the maximum), and a device-status may arrive after the device re-registered.
 */
export const UpgradeProgressEvent = z.discriminatedUnion("kind", [
  z.object({
    ...progressBase,
    kind: z.literal("bytes-served"),
    /**
     * Distinct bytes of the firmware this agent sent to the device for (campaign, attempt), over all
     * `/fw/` requests: the union of the ranges served, so a resumed download that re-fetches an
     * overlap is not counted twice. Equal to `totalBytes` once every byte went out at least once.
     */
    bytes: z.number().int().nonnegative(),
    /** Size of the firmware object. */
    totalBytes: z.number().int().nonnegative(),
    /** Whether a response reached the object's last byte. */
    reachedEnd: z.boolean(),
  }),
  z.object({
    ...progressBase,
    kind: z.literal("device-status"),
    status: DeviceUpgradeStatus,
    /** 0–100 when the device sent a number. */
    percent: z.number().min(0).max(100).optional(),
    description: z.string().max(256).optional(),
  }),
]);
export type UpgradeProgressEvent = z.infer<typeof UpgradeProgressEvent>;
