import { randomBytes, scrypt, timingSafeEqual } from "node:crypto";

/**
 * Device passwords (provisioning). EHOME 2.0 devices send `Password` in clear text inside
 * REGISTER (ehome-2.0 §2.1, register fields; ≤ 32 bytes), so the agent holds the clear password
 * of every REGISTER it verifies. It therefore never needs the stored one: it hashes what the
 * device sent with the stored salt and parameters and compares. We store only this scrypt hash
 * (PHC-style string, attribute `passwordHash`), never the password, encrypted or not.
 *
 * Trade-off: a plain or KMS-encrypted copy would let the agent compare in microseconds; the hash
 * costs ~0.1 s of CPU and 16 MiB per verification. In exchange a read of the devices table
 * (a backup, a mis-scoped IAM role, the agent's own credentials) yields no device password. The
 * agent should cache a successful verification per session (deviceId + hash + a digest of the
 * password) so a REGISTER storm after an agent restart costs one scrypt per device, not per
 * retransmission.
 *
 * The agent imports `verifyDevicePassword` from here (the only spelling of the format).
 */

const ALGORITHM = "scrypt";
/**
 * log2(N) = 14, r = 8, p = 1 (16 MiB, ~0.1 s on one core): the scrypt paper's interactive-login
 * setting. Higher would slow the agent's REGISTER storm after a restart more than it protects
 * a secret that devices send in clear text over UDP anyway.
 */
const DEFAULT_PARAMS = { logN: 14, r: 8, p: 1 } as const;
const SALT_BYTES = 16;
const KEY_BYTES = 32;
/** Parameter caps for verification, so a corrupted stored hash cannot exhaust memory. */
const MAX_LOG_N = 20;
const MAX_R = 16;
const MAX_P = 4;

export interface ScryptParams {
  readonly logN: number;
  readonly r: number;
  readonly p: number;
}

function derive(password: string, salt: Buffer, params: ScryptParams): Promise<Buffer> {
  const N = 2 ** params.logN;
  return new Promise((resolve, reject) => {
    scrypt(
      Buffer.from(password, "utf8"),
      salt,
      KEY_BYTES,
      { N, r: params.r, p: params.p, maxmem: 256 * N * params.r + 1024 * 1024 },
      (error, key) => (error ? reject(error) : resolve(key)),
    );
  });
}

/** `scrypt$ln=14,r=8,p=1$<salt base64>$<key base64>`. */
export async function hashDevicePassword(
  password: string,
  params: ScryptParams = DEFAULT_PARAMS,
): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  const key = await derive(password, salt, params);
  return `${ALGORITHM}$ln=${params.logN},r=${params.r},p=${params.p}$${salt.toString("base64")}$${key.toString("base64")}`;
}

interface ParsedHash {
  params: ScryptParams;
  salt: Buffer;
  key: Buffer;
}

function parseHash(stored: string): ParsedHash | undefined {
  const match =
    /^scrypt\$ln=(\d{1,2}),r=(\d{1,2}),p=(\d{1,2})\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)$/.exec(
      stored,
    );
  if (!match) return undefined;
  const params = { logN: Number(match[1]), r: Number(match[2]), p: Number(match[3]) };
  if (params.logN < 1 || params.logN > MAX_LOG_N) return undefined;
  if (params.r < 1 || params.r > MAX_R || params.p < 1 || params.p > MAX_P) return undefined;
  const salt = Buffer.from(match[4]!, "base64");
  const key = Buffer.from(match[5]!, "base64");
  if (salt.length < 8 || key.length !== KEY_BYTES) return undefined;
  return { params, salt, key };
}

/** True when `password` (as the device sent it) matches `stored`; false for a malformed hash. */
export async function verifyDevicePassword(password: string, stored: string): Promise<boolean> {
  const parsed = parseHash(stored);
  if (!parsed) return false;
  const key = await derive(password, parsed.salt, parsed.params);
  return timingSafeEqual(key, parsed.key);
}
