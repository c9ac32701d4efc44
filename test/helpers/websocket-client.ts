import { randomBytes } from "node:crypto";

/**
 * The client half of RFC 6455 that tests need against the agent's WebSocket server (talk), and the
 * 8 kHz 16-bit PCM helpers the talk tests check audio with.
 */

/** A client frame, masked (§5.3); binary and final by default. */
export function clientFrame(payload: Buffer, opcode = 0x2, fin = true): Buffer {
  const mask = randomBytes(4);
  const n = payload.length;
  const head = n < 126 ? 2 : n < 0x10000 ? 4 : 10;
  const out = Buffer.alloc(head + 4 + n);
  out[0] = (fin ? 0x80 : 0) | opcode;
  if (n < 126) out[1] = 0x80 | n;
  else if (n < 0x10000) {
    out[1] = 0x80 | 126;
    out.writeUInt16BE(n, 2);
  } else {
    out[1] = 0x80 | 127;
    out.writeBigUInt64BE(BigInt(n), 2);
  }
  mask.copy(out, head);
  for (let i = 0; i < n; i++) out[head + 4 + i] = payload[i]! ^ mask[i & 3]!;
  return out;
}

/** Payloads of the server's (unmasked) binary frames, up to the last whole one. */
export function serverPayloads(bytes: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let i = 0;
  while (i + 2 <= bytes.length) {
    let n = bytes[i + 1]! & 0x7f;
    let at = i + 2;
    if (n === 126) {
      if (i + 4 > bytes.length) break;
      n = bytes.readUInt16BE(i + 2);
      at = i + 4;
    }
    if (at + n > bytes.length) break;
    if ((bytes[i]! & 0x0f) === 2) out.push(bytes.subarray(at, at + n));
    i = at + n;
  }
  return out;
}

/** `samples` of a sine at `hz`, 8 kHz 16-bit little-endian PCM. */
export function tone(samples: number, hz: number, amplitude = 10_000): Buffer {
  const pcm = Buffer.alloc(samples * 2);
  for (let i = 0; i < samples; i++) {
    pcm.writeInt16LE(Math.round(amplitude * Math.sin((2 * Math.PI * hz * i) / 8000)), i * 2);
  }
  return pcm;
}

/** Sign changes in 16-bit little-endian PCM (a tone of f Hz makes about 2f per second). */
export function zeroCrossings(pcm: Buffer): number {
  let n = 0;
  for (let i = 2; i + 1 < pcm.length; i += 2) {
    const a = pcm.readInt16LE(i - 2);
    const b = pcm.readInt16LE(i);
    if ((a < 0 && b >= 0) || (a >= 0 && b < 0)) n++;
  }
  return n;
}
