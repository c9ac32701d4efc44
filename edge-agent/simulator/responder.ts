import { type CommandId, ENVELOPE } from "../signalling/catalogue.ts";
import { encode, type PlatformRequestMessage, type XmlElement } from "../signalling/codec/index.ts";
import type { DeviceEnv, DevicePort } from "./device-env.ts";
import type { CommandReply, HandlerContext } from "./handlers/context.ts";
import { handlerFor } from "./handlers/index.ts";
import { badRequest } from "./handlers/status.ts";
import type { Link } from "./link.ts";
import type { ReceivedCommand, SimulatedDevice } from "./types.ts";

/** Replies remembered for answering retransmitted platform requests (§3.3 triple send). */
const DEDUPE_WINDOW = 16;

interface CachedReply {
  bytes: Uint8Array;
  status: number;
  description: string;
}

/**
 * Answers the platform's requests for one device: dispatches to handlers/, encodes the reply in the
 * device's encoding, and de-duplicates on Sequence (answer every copy, act once; ehome-2.0 §3.3).
 */
export class CommandResponder {
  private readonly dedupe = new Map<string, CachedReply>();

  constructor(
    private readonly env: DeviceEnv,
    private readonly device: DevicePort,
    private readonly self: SimulatedDevice,
    private readonly ctx: HandlerContext,
    private readonly link: Link,
    private readonly log: ReceivedCommand[],
  ) {}

  /** Forgets answered Sequences (a rebooted device has no memory of them). */
  clear(): void {
    this.dedupe.clear();
  }

  handle(m: PlatformRequestMessage): void {
    this.device.count("commandsReceived");
    const key = `${m.header.sequence}|${m.command.toUpperCase()}`;
    const cached = this.dedupe.get(key);
    if (cached) {
      this.device.count("commandDuplicates");
      this.send(cached);
      this.record(m, true, cached);
      return;
    }
    const reply = this.run(m);
    // Known commands are answered with the catalogue's spelling, unknown ones echoed as received.
    const whichCommand = m.commandId
      ? this.env.view.commands[m.commandId as CommandId].command
      : m.command;
    const encoded = this.encode(m.header.sequence, whichCommand, reply);
    if (this.dedupe.size >= DEDUPE_WINDOW) {
      const oldest = this.dedupe.keys().next().value;
      if (oldest !== undefined) this.dedupe.delete(oldest);
    }
    this.dedupe.set(key, encoded);
    this.send(encoded);
    this.record(m, false, encoded);
    if (encoded.status === reply.status) reply.afterReply?.();
  }

  private run(m: PlatformRequestMessage): CommandReply {
    const handler = handlerFor(m.commandId);
    if (!handler) {
      this.device.count("unknownCommands");
      return badRequest(`unknown command ${m.command}`);
    }
    try {
      return handler(this.ctx, m);
    } catch (err) {
      this.env.onError(err);
      return { status: 500, description: "internal error" };
    }
  }

  private encode(
    sequence: number,
    whichCommand: string,
    reply: { status: number; description: string; params?: XmlElement },
  ): CachedReply {
    // Device responses: Version 2.0, no Method (ehome-2.0 §1.2), in the device's encoding (§1.3).
    const message = {
      kind: "response" as const,
      version: ENVELOPE.deviceVersion,
      sequence,
      whichCommand,
      status: reply.status,
      description: reply.description,
      params: reply.params ?? {},
    };
    const opts = { encoding: this.self.encoding, maxBytes: this.env.options.maxReplyBytes };
    const encoded = encode(message, opts);
    if (encoded.ok) {
      return { bytes: encoded.bytes, status: reply.status, description: reply.description };
    }
    // E.g. a stored config holding characters GB2312 lacks: still answer, as a failure.
    this.device.count("encodeErrors");
    const fallback = { ...message, status: 500, description: "reply not encodable", params: {} };
    const again = encode(fallback, opts);
    return {
      bytes: again.ok ? again.bytes : new Uint8Array(0),
      status: fallback.status,
      description: fallback.description,
    };
  }

  private send(reply: CachedReply): void {
    this.device.count("commandsAnswered");
    if (reply.status !== 200) this.device.count("commandsRefused");
    if (reply.bytes.length > 0) this.link.send(reply.bytes, true);
  }

  private record(m: PlatformRequestMessage, duplicate: boolean, reply: CachedReply): void {
    const size = this.env.options.commandLogSize;
    const listening = this.env.events.has("command");
    if (size === 0 && !listening) return;
    const entry: ReceivedCommand = {
      at: this.env.wallClock(),
      sequence: m.header.sequence,
      command: m.command,
      commandId: m.commandId,
      params: m.params,
      duplicate,
      status: reply.status,
      description: reply.description,
    };
    if (size > 0) {
      this.log.push(entry);
      if (this.log.length > size) this.log.shift();
    }
    if (listening) this.env.events.emit("command", { device: this.self, command: entry });
  }
}
