import { COMMANDS, ENVELOPE } from "../../edge-agent/signalling/catalogue.ts";
import {
  buildFields,
  encode,
  type WireEncoding,
  type XmlElement,
} from "../../edge-agent/signalling/codec/index.ts";
import { createMutantSource, createRng, type Rng } from "../../test/fixtures/datagrams/fuzz.ts";

/**
 * What the live fuzz fires at a running agent (bench/fuzz): the codec fuzzer's mutants of the
 * datagram fixtures (test/fixtures/datagrams/fuzz.ts: bit flips, truncation, splices, bad
 * declarations, deep nesting, oversize, random bytes), plus well-formed hostile messages the
 * mutator rarely produces: REGISTERs and KEEPALIVEs of devices nobody provisioned, spoofed
 * KEEPALIVEs/REGISTERs/ALARMs carrying a legitimate device's DeviceID from another address,
 * responses to nothing, XML entity bombs, wrong encodings and datagrams just under the 64 KiB
 * UDP limit. A share goes to the alarm port (§5.1/§8). Seeded: the same seed gives the same run.
 */

/** Largest UDP payload over IPv4; a bigger datagram cannot be sent at all. */
export const MAX_UDP_PAYLOAD = 65_507;

export const FUZZ_KINDS = [
  "mutant",
  "unprovisioned-register",
  "unknown-keepalive",
  "spoofed-keepalive",
  "spoofed-register",
  "spoofed-alarm",
  "stray-response",
  "xml-bomb",
  "wrong-encoding",
  "oversize",
  "alarm-mutant",
] as const;
export type FuzzKind = (typeof FUZZ_KINDS)[number];

export interface FuzzDatagram {
  bytes: Buffer;
  kind: FuzzKind;
  /** Which of the agent's ports it goes to. */
  port: "signal" | "alarm";
}

export interface FuzzSource {
  next(): FuzzDatagram;
}

/** Shares of each kind, in per mille; the rest of 1000 is `mutant`. */
const SHARES: ReadonlyArray<[Exclude<FuzzKind, "mutant">, number]> = [
  ["unprovisioned-register", 40],
  ["unknown-keepalive", 40],
  ["spoofed-keepalive", 20],
  ["spoofed-register", 5],
  ["spoofed-alarm", 20],
  ["stray-response", 30],
  ["xml-bomb", 30],
  ["wrong-encoding", 30],
  ["oversize", 10],
  ["alarm-mutant", 100],
];

function request(
  command: string,
  sequence: number,
  params: XmlElement,
  encoding: WireEncoding = "GB2312",
): Buffer {
  const r = encode(
    { kind: "request", version: ENVELOPE.deviceVersion, sequence, command, params },
    { encoding, maxBytes: 1 << 20 },
  );
  if (!r.ok) throw new Error(`cannot encode ${command}: ${r.error.code}`);
  return Buffer.from(r.bytes);
}

const register = (rng: Rng, deviceId: string) =>
  request(
    COMMANDS.register.command,
    rng.int(0x7fffffff),
    buildFields(COMMANDS.register.params, {
      netUnitType: "PU",
      deviceId,
      firmwareVersion: "V5.5.0 build 180101",
      devType: "31",
    }),
  );
const keepalive = (rng: Rng, deviceId: string, encoding: WireEncoding = "GB2312") =>
  request(
    COMMANDS.keepalive.command,
    rng.int(0x7fffffff),
    buildFields(COMMANDS.keepalive.params, { deviceId }),
    encoding,
  );
const alarm = (rng: Rng, deviceId: string) =>
  request(
    COMMANDS.alarm.command,
    rng.int(0x7fffffff),
    buildFields(COMMANDS.alarm.params, {
      deviceId,
      alarmType: rng.int(40),
      alarmAction: rng.int(2),
      videoChannel: 1 + rng.int(4),
      alarmTime: "2026-11-24 12:00:00",
      remark: "fuzz",
      retransFlag: 0,
    }),
  );

function randomId(rng: Rng): string {
  const n = 1 + rng.int(rng.chance(0.05) ? 300 : 24);
  let s = "";
  for (let i = 0; i < n; i++) s += String.fromCharCode(0x21 + rng.int(0x5e));
  return s.replace(/[<>&]/g, "x");
}

/** Billion laughs and friends: entity declarations, references, attribute floods, deep trees. */
function xmlBomb(rng: Rng, deviceId: string): Buffer {
  const body = keepalive(rng, deviceId).toString("latin1");
  switch (rng.int(4)) {
    case 0: {
      const decls = ['<!ENTITY a0 "lol">'];
      for (let i = 1; i < 10; i++) decls.push(`<!ENTITY a${i} "${`&a${i - 1};`.repeat(10)}">`);
      const doc = `<?xml version="1.0"?><!DOCTYPE PPVSPMessage [${decls.join("")}]>`;
      return Buffer.from(
        doc + body.replace(/^<\?xml[^>]*\?>/, "").replace(deviceId, "&a9;"),
        "latin1",
      );
    }
    case 1:
      return Buffer.from(
        `<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>${body.replace(deviceId, "&e;")}`,
        "latin1",
      );
    case 2: {
      const attrs = Array.from({ length: 2000 }, (_, i) => ` a${i}="${i}"`).join("");
      return Buffer.from(body.replace("<PPVSPMessage>", `<PPVSPMessage${attrs}>`), "latin1");
    }
    default: {
      const depth = 5000 + rng.int(20_000);
      return Buffer.from(
        body.replace("<Params>", `<Params>${"<a>".repeat(depth)}x${"</a>".repeat(depth)}`),
        "latin1",
      );
    }
  }
}

/** A valid message in an encoding it does not declare, or in one nobody supports. */
function wrongEncoding(rng: Rng, deviceId: string): Buffer {
  const utf8 = keepalive(rng, `${deviceId}-设备`, "UTF-8");
  const text = utf8.toString("utf8");
  switch (rng.int(4)) {
    case 0:
      return Buffer.from(text, "utf16le");
    case 1:
      return Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text, "utf16le")]);
    case 2:
      return Buffer.from(text.replace(/encoding="[^"]*"/, 'encoding="GB2312"'), "utf8");
    default:
      return Buffer.from(text.replace(/encoding="[^"]*"/, 'encoding="EBCDIC-037"'), "utf8");
  }
}

function strayResponse(rng: Rng, deviceId: string): Buffer {
  const entry = rng.pick(Object.values(COMMANDS));
  const r = encode(
    {
      kind: "response",
      version: ENVELOPE.deviceVersion,
      sequence: rng.int(0x100000000),
      method: entry.method,
      whichCommand: entry.command,
      status: rng.pick([200, 400, 401, 500]),
      description: "OK",
      params: buildFields(COMMANDS.keepalive.params, { deviceId }),
    },
    { encoding: "GB2312", maxBytes: 1 << 20 },
  );
  return r.ok ? Buffer.from(r.bytes) : Buffer.alloc(0);
}

export function createFuzzSource(seed: number, legitIds: readonly string[]): FuzzSource {
  const rng = createRng(seed);
  const mutants = createMutantSource(seed ^ 0x9e3779b9);
  const alarmMutants = createMutantSource(seed ^ 0x3c6ef372);
  const legit = () => (legitIds.length > 0 ? rng.pick(legitIds) : randomId(rng));
  const pickKind = (): FuzzKind => {
    let r = rng.int(1000);
    for (const [kind, share] of SHARES) {
      if (r < share) return kind;
      r -= share;
    }
    return "mutant";
  };
  const make = (kind: FuzzKind): FuzzDatagram => {
    switch (kind) {
      case "mutant":
        return { kind, port: "signal", bytes: mutants.next() };
      case "unprovisioned-register":
        return { kind, port: "signal", bytes: register(rng, randomId(rng)) };
      case "unknown-keepalive":
        return { kind, port: "signal", bytes: keepalive(rng, randomId(rng)) };
      case "spoofed-keepalive":
        return { kind, port: "signal", bytes: keepalive(rng, legit()) };
      case "spoofed-register":
        return { kind, port: "signal", bytes: register(rng, legit()) };
      case "spoofed-alarm":
        return { kind, port: rng.chance(0.5) ? "alarm" : "signal", bytes: alarm(rng, legit()) };
      case "stray-response":
        return { kind, port: "signal", bytes: strayResponse(rng, legit()) };
      case "xml-bomb":
        return { kind, port: rng.chance(0.8) ? "signal" : "alarm", bytes: xmlBomb(rng, legit()) };
      case "wrong-encoding":
        return { kind, port: "signal", bytes: wrongEncoding(rng, legit()) };
      case "oversize": {
        const size = 9_000 + rng.int(MAX_UDP_PAYLOAD - 9_000);
        const head = keepalive(rng, legit());
        const bytes = Buffer.alloc(size, 0x20);
        head.copy(bytes, 0, 0, Math.min(head.length, size));
        return { kind, port: rng.chance(0.8) ? "signal" : "alarm", bytes };
      }
      case "alarm-mutant":
        return { kind, port: "alarm", bytes: alarmMutants.next() };
    }
  };
  return {
    next() {
      const d = make(pickKind());
      // Mutants can grow past what UDP carries; cut them to the limit (still oversize for us).
      if (d.bytes.length > MAX_UDP_PAYLOAD) d.bytes = d.bytes.subarray(0, MAX_UDP_PAYLOAD);
      return d;
    },
  };
}
