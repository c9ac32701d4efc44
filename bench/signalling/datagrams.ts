import { COMMANDS, ENVELOPE } from "../../edge-agent/signalling/catalogue.ts";
import { buildFields, encode, type XmlElement } from "../../edge-agent/signalling/codec/index.ts";

/**
 * Device datagrams for the load generator, encoded once with the real codec and catalogue and then
 * patched in place: a KEEPALIVE differs from the next one of the same device only in its Sequence,
 * so the generator writes ten ASCII digits instead of running the encoder per datagram (the
 * generator must stay cheaper than what it measures). Sequences live in [1e9, 2^31) so they always
 * have ten digits, below the §3.2 wrap.
 */

export const SEQUENCE_BASE = 1_000_000_000;
const SEQUENCE_DIGITS = 10;
/** Sequences stay below 2^31 (ehome-2.0 §3.2). */
export const SEQUENCE_SPAN = 2 ** 31 - SEQUENCE_BASE;

function request(command: string, sequence: number, params: XmlElement): Buffer {
  const r = encode(
    { kind: "request", version: ENVELOPE.deviceVersion, sequence, command, params },
    { encoding: "GB2312", maxBytes: 1500 },
  );
  if (!r.ok) throw new Error(`cannot encode a benchmark datagram: ${r.error.message}`);
  return Buffer.from(r.bytes);
}

/** Device ids the generator plays: contiguous, fixed width, distinct across generators. */
export function deviceIdOf(prefix: string, index: number): string {
  return `${prefix}${String(index).padStart(7, "0")}`;
}

/**
 * Every device gets its own loopback source address (127.0.0.0/8 is all local on Linux), as devices
 * behind different NATs have different public addresses. It also lifts the ceiling of one address:
 * the ephemeral port range (net.ipv4.ip_local_port_range, ~28k ports) is per address, so 100k
 * sockets on 127.0.0.1 alone cannot bind.
 */
export function sourceAddressOf(index: number): string {
  const host = index % 254;
  const net = Math.floor(index / 254);
  return `127.${10 + (net >> 8)}.${net & 255}.${host + 1}`;
}

/** ehome-2.0 §2.1 REGISTER of a typical camera (the same fields the simulator sends). */
export function registerDatagram(deviceId: string, sequence: number): Buffer {
  const spec = COMMANDS.register;
  return request(
    spec.command,
    sequence,
    buildFields(spec.params, {
      netUnitType: "PU",
      deviceId,
      firmwareVersion: "V5.5.0 build 180101",
      localIp: "10.0.0.20",
      localPort: 40000,
      devType: "31",
      manufacture: 0,
    }),
  );
}

export interface PatchableDatagram {
  bytes: Buffer;
  /** Offset of the ten Sequence digits. */
  sequenceOffset: number;
}

/** ehome-2.0 §2.2 KEEPALIVE with a patchable ten-digit Sequence. */
export function keepaliveTemplate(deviceId: string): PatchableDatagram {
  const spec = COMMANDS.keepalive;
  const bytes = request(spec.command, SEQUENCE_BASE, buildFields(spec.params, { deviceId }));
  const open = Buffer.from(`<${ENVELOPE.sequence}>`, "latin1");
  const at = bytes.indexOf(open);
  if (at < 0) throw new Error("encoded KEEPALIVE has no Sequence element");
  const sequenceOffset = at + open.length;
  if (
    bytes.toString("latin1", sequenceOffset, sequenceOffset + SEQUENCE_DIGITS) !==
    String(SEQUENCE_BASE)
  ) {
    throw new Error("encoded KEEPALIVE Sequence is not where expected");
  }
  return { bytes, sequenceOffset };
}

/** Writes `sequence` (ten digits) at `offset`. */
export function writeSequence(bytes: Buffer, offset: number, sequence: number): void {
  let v = sequence;
  for (let i = SEQUENCE_DIGITS - 1; i >= 0; i--) {
    bytes[offset + i] = 0x30 + (v % 10);
    v = Math.floor(v / 10);
  }
}

const SEQUENCE_OPEN = Buffer.from(`<${ENVELOPE.sequence}>`, "latin1");
const STATUS_OPEN = Buffer.from(`<${ENVELOPE.status}>`, "latin1");

function readNumberAfter(bytes: Buffer, open: Buffer): number {
  const at = bytes.indexOf(open);
  if (at < 0) return -1;
  let v = 0;
  let digits = 0;
  for (let i = at + open.length; i < bytes.length && digits < 12; i++, digits++) {
    const b = bytes[i]!;
    if (b < 0x30 || b > 0x39) break;
    v = v * 10 + (b - 0x30);
  }
  return digits === 0 ? -1 : v;
}

/**
 * The Sequence of a reply without a full decode: the agent echoes the device's Sequence (§3.1), and
 * the raw echo returns our own datagram, so both are read the same way. -1 when absent.
 */
export function readSequence(bytes: Buffer): number {
  return readNumberAfter(bytes, SEQUENCE_OPEN);
}

/** The Status of a reply; -1 when absent (the raw echo's replies have none). */
export function readStatus(bytes: Buffer): number {
  return readNumberAfter(bytes, STATUS_OPEN);
}
