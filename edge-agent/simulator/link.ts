import type { Random } from "./random.ts";
import type { Scheduler } from "./scheduler.ts";
import type { CounterName } from "./stats.ts";

/** The part of a connected UDP socket a link needs (one socket per device). */
export interface DatagramPort {
  send(bytes: Uint8Array, callback: (err: Error | null) => void): void;
}

export interface Impairments {
  /** Drop probability, each direction. */
  loss: number;
  /** One-way delay, each direction, ms. */
  latencyMs: number;
  /** ± uniform jitter on the delay, ms. */
  jitterMs: number;
  /** Probability that an outbound datagram is sent twice. */
  duplicate: number;
  /** Probability that an outbound reply is corrupted. */
  malformed: number;
}

export interface LinkDeps {
  port: DatagramPort;
  impairments: Impairments;
  random: Random;
  scheduler: Scheduler;
  count: (name: CounterName, n?: number) => void;
}

export interface Link {
  /** Sends a datagram through the impairments. `reply` marks answers to platform requests. */
  send(bytes: Uint8Array, reply: boolean): void;
  /** Passes an inbound datagram through loss and delay, then to `deliver`. */
  receive(bytes: Uint8Array, deliver: (bytes: Uint8Array) => void): void;
}

/**
 * A corrupted reply: cut at 30–80 % of its length, so the root element is never closed and any
 * decoder refuses it (the agent must treat it as lost and resend).
 */
export function corrupt(bytes: Uint8Array, random: Random): Uint8Array {
  const keep = Math.max(1, Math.floor(bytes.length * (0.3 + 0.5 * random())));
  return bytes.subarray(0, Math.min(keep, bytes.length - 1));
}

/** Network impairments between one simulated device and the agent (the knobs of issue 2 item 8). */
export function createLink(deps: LinkDeps): Link {
  const { port, impairments: imp, random, scheduler, count } = deps;

  const delay = (): number => {
    if (imp.latencyMs === 0 && imp.jitterMs === 0) return 0;
    return Math.max(0, imp.latencyMs + (random() * 2 - 1) * imp.jitterMs);
  };

  const transmit = (bytes: Uint8Array): void => {
    if (imp.loss > 0 && random() < imp.loss) {
      count("droppedOutbound");
      return;
    }
    const write = () => {
      count("datagramsSent");
      count("bytesSent", bytes.length);
      port.send(bytes, (err) => {
        if (err) count("sendErrors");
      });
    };
    const d = delay();
    if (d === 0) write();
    else scheduler.after(d, write);
  };

  return {
    send(bytes, reply) {
      let out = bytes;
      if (reply && imp.malformed > 0 && random() < imp.malformed) {
        count("malformedSent");
        out = corrupt(bytes, random);
      }
      transmit(out);
      if (imp.duplicate > 0 && random() < imp.duplicate) {
        count("duplicatesSent");
        transmit(out);
      }
    },
    receive(bytes, deliver) {
      if (imp.loss > 0 && random() < imp.loss) {
        count("droppedInbound");
        return;
      }
      const d = delay();
      if (d === 0) deliver(bytes);
      else scheduler.after(d, () => deliver(bytes));
    },
  };
}
