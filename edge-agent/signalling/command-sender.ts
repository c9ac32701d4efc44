import type { AgentMetrics } from "../metrics.ts";
import {
  type CommandParams as CatalogueCommandParams,
  type CommandId,
  ENVELOPE,
  SEND_THREE_TIMES,
} from "./catalogue.ts";
import {
  buildFields,
  encode,
  type FieldValue,
  type ResponseMessage,
  type XmlElement,
} from "./codec/index.ts";
import { type SessionStore, takeSequence } from "./sessions.ts";

/**
 * Platform → device requests with correlation and retransmission (mediasoup-style channel: a
 * pending map, a timer per request, everything pending settled on close).
 *
 * ehome-2.0 §3.2: pending requests are keyed by (deviceId, Sequence); a RESPONSE matches only when
 * its `WhichCommand` is the command sent and it came from the device's current address.
 * ehome-2.0 §3.3: send once, resend identical bytes after 1.5 s, at most 3 sends, timeout at 5 s;
 * PTZ start/stop goes out three times back to back so a lost Stop cannot leave a camera moving.
 */

export type CommandOutcome =
  | { kind: "ok"; status: number; description: string; params: XmlElement }
  | { kind: "device-error"; status: number; description: string; params: XmlElement }
  | { kind: "timeout" }
  | { kind: "offline" };

export type CommandValues<C extends CommandId> = Partial<
  Record<CatalogueCommandParams<C> & string, FieldValue>
>;

/** A request that cannot be put on the wire (too large for the outbound cap, unencodable text). */
export class CommandEncodeError extends Error {
  readonly code = "COMMAND_UNENCODABLE";
  constructor(message: string) {
    super(message);
    this.name = "CommandEncodeError";
  }
}

export interface CommandSenderConfig {
  commandResendMs: number;
  commandMaxSends: number;
  commandTimeoutMs: number;
  maxOutboundBytes: number;
}

export interface CommandSenderDeps {
  sessions: Pick<SessionStore, "get" | "byAddress">;
  /** The agent's one socket-write function. */
  write(bytes: Uint8Array, host: string, port: number): void;
  metrics: AgentMetrics;
}

export interface SendOptions {
  /** Overrides the configured timeout for this request. */
  timeoutMs?: number;
}

export interface CommandSender {
  /**
   * Sends a catalogue command with field values (by catalogue field key) and settles with the
   * device's answer. Rejects only with CommandEncodeError; every other outcome is a result.
   */
  send<C extends CommandId>(
    deviceId: string,
    commandId: C,
    values?: CommandValues<C>,
    options?: SendOptions,
  ): Promise<CommandOutcome>;
  /** Offers a RESPONSE from host:port; true when it settled a pending request. */
  handleResponse(message: ResponseMessage, host: string, port: number): boolean;
  /** The device went offline: its pending requests settle `offline`. */
  deviceGone(deviceId: string): void;
  /** Number of requests in flight. */
  readonly pending: number;
  /** Idempotent: settles everything pending as `offline` and refuses new sends the same way. */
  close(): void;
}

interface Pending {
  deviceId: string;
  sequence: number;
  /** Upper-cased wire name the answer must carry in WhichCommand. */
  whichCommand: string;
  bytes: Uint8Array;
  sends: number;
  resend: NodeJS.Timeout | undefined;
  timeout: NodeJS.Timeout;
  resolve: (outcome: CommandOutcome) => void;
}

const OFFLINE: CommandOutcome = Object.freeze({ kind: "offline" });
const TIMEOUT: CommandOutcome = Object.freeze({ kind: "timeout" });

export function createCommandSender(
  config: CommandSenderConfig,
  deps: CommandSenderDeps,
): CommandSender {
  const { sessions, write } = deps;
  const c = deps.metrics.c;
  const byDevice = new Map<string, Map<number, Pending>>();
  let count = 0;
  let closed = false;

  const settle = (p: Pending, outcome: CommandOutcome): void => {
    const forDevice = byDevice.get(p.deviceId);
    if (forDevice?.get(p.sequence) !== p) return;
    forDevice.delete(p.sequence);
    if (forDevice.size === 0) byDevice.delete(p.deviceId);
    count--;
    if (p.resend) clearTimeout(p.resend);
    clearTimeout(p.timeout);
    switch (outcome.kind) {
      case "ok":
        c.commands_ok++;
        break;
      case "device-error":
        c.commands_device_error++;
        break;
      case "timeout":
        c.commands_timeout++;
        break;
      case "offline":
        c.commands_offline++;
        break;
    }
    p.resolve(outcome);
  };

  const resendLater = (p: Pending): void => {
    p.resend = setTimeout(() => {
      p.resend = undefined;
      const session = sessions.get(p.deviceId);
      if (!session) {
        settle(p, OFFLINE);
        return;
      }
      p.sends++;
      c.command_resends++;
      // Identical bytes, same Sequence (ehome-2.0 §3.3), to the device's current address.
      write(p.bytes, session.host, session.port);
      if (p.sends < config.commandMaxSends) resendLater(p);
    }, config.commandResendMs);
  };

  return {
    send(deviceId, commandId, values, options) {
      const session = closed ? undefined : sessions.get(deviceId);
      if (!session) {
        c.commands_offline++;
        return Promise.resolve(OFFLINE);
      }
      const entry = session.view.commands[commandId];
      const sequence = takeSequence(session);
      const params = buildFields<string>(
        entry.params,
        (values ?? {}) as Partial<Record<string, FieldValue>>,
      );
      const encoded = encode(
        {
          kind: "request",
          version: ENVELOPE.platformVersion,
          sequence,
          method: entry.method,
          command: entry.command,
          params,
        },
        { encoding: session.encoding, maxBytes: config.maxOutboundBytes },
      );
      if (!encoded.ok) {
        c.commands_unencodable++;
        if (encoded.error.code === "MESSAGE_TOO_LARGE") c.outbound_too_large++;
        return Promise.reject(
          new CommandEncodeError(`${entry.command} for ${deviceId}: ${encoded.error.message}`),
        );
      }
      return new Promise<CommandOutcome>((resolve) => {
        const p: Pending = {
          deviceId,
          sequence,
          whichCommand: entry.command.toUpperCase(),
          bytes: encoded.bytes,
          sends: 0,
          resend: undefined,
          timeout: setTimeout(
            () => settle(p, TIMEOUT),
            options?.timeoutMs ?? config.commandTimeoutMs,
          ),
          resolve,
        };
        let forDevice = byDevice.get(deviceId);
        if (!forDevice) {
          forDevice = new Map();
          byDevice.set(deviceId, forDevice);
        }
        // A wrapped counter meeting a request still in flight: the old one can no longer be
        // told apart, so it times out now rather than taking the new one's answer.
        const clash = forDevice.get(sequence);
        if (clash) settle(clash, TIMEOUT);
        forDevice.set(sequence, p);
        count++;
        c.commands_sent++;
        if (SEND_THREE_TIMES.has(commandId)) {
          // ehome-2.0 §2.8, §3.3: three times back to back; the device answers once.
          for (let i = 0; i < 3; i++) write(p.bytes, session.host, session.port);
          p.sends = 3;
        } else {
          write(p.bytes, session.host, session.port);
          p.sends = 1;
          if (config.commandMaxSends > 1) resendLater(p);
        }
      });
    },

    handleResponse(message, host, port) {
      const session = sessions.byAddress(host, port);
      const p = session && byDevice.get(session.deviceId)?.get(message.header.sequence);
      if (!p) {
        c.responses_unmatched++;
        return false;
      }
      if (message.whichCommand.toUpperCase() !== p.whichCommand) {
        c.responses_mismatched++;
        return false;
      }
      c.responses_matched++;
      const { status, description, params } = message;
      settle(
        p,
        status === 200
          ? { kind: "ok", status, description, params }
          : { kind: "device-error", status, description, params },
      );
      return true;
    },

    deviceGone(deviceId) {
      const forDevice = byDevice.get(deviceId);
      if (!forDevice) return;
      for (const p of [...forDevice.values()]) settle(p, OFFLINE);
    },

    get pending() {
      return count;
    },

    close() {
      closed = true;
      for (const forDevice of [...byDevice.values()]) {
        for (const p of [...forDevice.values()]) settle(p, OFFLINE);
      }
    },
  };
}
