import dgram from "node:dgram";
import {
  type CommandId,
  DEFAULT_VIEW,
  ENVELOPE,
} from "../../../edge-agent/signalling/catalogue.ts";
import {
  buildFields,
  decode,
  encode,
  type Message,
  type ResponseMessage,
  type WireEncoding,
  type XmlElement,
} from "../../../edge-agent/signalling/codec/index.ts";

/**
 * A minimal platform for simulator tests: one loopback UDP socket that answers REGISTER, KEEPALIVE
 * and GPS with the codec, remembers who registered from where, and sends platform requests. It is
 * deliberately not the agent (that has its own tests); it only speaks the protocol.
 */

export interface Received {
  at: number;
  from: { address: string; port: number };
  bytes: Buffer;
  /** null when the codec refused the datagram. */
  message: Message | null;
}

export interface Session {
  address: string;
  port: number;
  encoding: WireEncoding;
  firmwareVersion: string | undefined;
}

export interface FakePlatformOptions {
  keepAliveSeconds?: number | string;
  /** Status for REGISTER (default 200). */
  registerStatus?: (deviceId: string) => number;
  /** Answer GPS reports (default true). */
  answerGps?: boolean;
}

const c = DEFAULT_VIEW.commands;

export class FakePlatform {
  readonly received: Received[] = [];
  readonly sessions = new Map<string, Session>();
  keepAliveSeconds: number | string;
  registerStatus: (deviceId: string) => number;
  answerGps: boolean;
  /** While false, REGISTER/KEEPALIVE/GPS are received but not answered. */
  answering = true;
  private nextSequence = 5000;
  private readonly waiting = new Map<string, (m: ResponseMessage) => void>();

  private constructor(
    private readonly socket: dgram.Socket,
    options: FakePlatformOptions,
  ) {
    this.keepAliveSeconds = options.keepAliveSeconds ?? 15;
    this.registerStatus = options.registerStatus ?? (() => 200);
    this.answerGps = options.answerGps ?? true;
    socket.on("message", (bytes, rinfo) => this.onMessage(bytes, rinfo));
  }

  static async start(options: FakePlatformOptions = {}): Promise<FakePlatform> {
    const socket = dgram.createSocket("udp4");
    await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", () => resolve()));
    return new FakePlatform(socket, options);
  }

  get port(): number {
    return this.socket.address().port;
  }

  get agent(): { host: string; port: number } {
    return { host: "127.0.0.1", port: this.port };
  }

  /** Messages of one kind (decoded), optionally from one device. */
  messages<K extends Message["kind"]>(
    kind: K,
    deviceId?: string,
  ): Array<Extract<Message, { kind: K }> & { at: number; bytes: Buffer }> {
    const out: Array<Extract<Message, { kind: K }> & { at: number; bytes: Buffer }> = [];
    for (const r of this.received) {
      const m = r.message;
      if (!m || m.kind !== kind) continue;
      if (deviceId !== undefined && "deviceId" in m && m.deviceId !== deviceId) continue;
      out.push({ ...(m as Extract<Message, { kind: K }>), at: r.at, bytes: r.bytes });
    }
    return out;
  }

  /** Forgets a device, so its next KEEPALIVE is answered 403 (ehome-2.0 §2.2). */
  forget(deviceId: string): void {
    this.sessions.delete(deviceId);
  }

  async waitFor(check: () => boolean, timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!check()) {
      if (Date.now() > deadline) throw new Error("fake platform: timed out waiting");
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  /** Sends raw bytes to a registered device's observed address. */
  sendRaw(deviceId: string, bytes: Uint8Array): void {
    const s = this.sessions.get(deviceId);
    if (!s) throw new Error(`${deviceId} is not registered`);
    this.socket.send(bytes, s.port, s.address);
  }

  /** Encodes a platform REQUEST for a device (in the encoding it registered with). */
  encodeRequest(
    deviceId: string,
    command: CommandId | string,
    params: XmlElement,
    sequence: number,
  ): Uint8Array {
    const s = this.sessions.get(deviceId);
    if (!s) throw new Error(`${deviceId} is not registered`);
    const entry = command in c ? c[command as CommandId] : null;
    const r = encode(
      {
        kind: "request",
        version: ENVELOPE.platformVersion,
        sequence,
        method: entry?.method ?? null,
        command: entry?.command ?? command,
        params,
      },
      { encoding: s.encoding, maxBytes: 8192 },
    );
    if (!r.ok) throw new Error(r.error.message);
    return r.bytes;
  }

  /**
   * Sends a platform request (a catalogue id, or any wire name) `copies` times back to back and
   * resolves with the first matching response (Sequence and WhichCommand).
   */
  async request(
    deviceId: string,
    command: CommandId | string,
    fields: Record<string, unknown> = {},
    opts: { copies?: number; timeoutMs?: number; sequence?: number; resendMs?: number } = {},
  ): Promise<ResponseMessage> {
    const entry = command in c ? c[command as CommandId] : null;
    const params = entry
      ? buildFields(entry.params, fields as Record<string, string>)
      : (fields as XmlElement);
    const sequence = opts.sequence ?? this.nextSequence++;
    const bytes = this.encodeRequest(deviceId, command, params, sequence);
    const which = (entry?.command ?? command).toUpperCase();
    const key = `${deviceId}|${sequence}`;
    const response = new Promise<ResponseMessage>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(key);
        clearInterval(resend);
        reject(new Error(`no answer to ${which} from ${deviceId}`));
      }, opts.timeoutMs ?? 3000);
      const resend = setInterval(() => this.sendRaw(deviceId, bytes), opts.resendMs ?? 60_000);
      this.waiting.set(key, (m) => {
        if (m.whichCommand.toUpperCase() !== which) return;
        clearTimeout(timer);
        clearInterval(resend);
        this.waiting.delete(key);
        resolve(m);
      });
    });
    for (let i = 0; i < (opts.copies ?? 1); i++) this.sendRaw(deviceId, bytes);
    return response;
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }

  private onMessage(bytes: Buffer, rinfo: dgram.RemoteInfo): void {
    const decoded = decode(bytes, { role: "platform" });
    const message = decoded.ok ? decoded.message : null;
    const from = { address: rinfo.address, port: rinfo.port };
    this.received.push({ at: performance.now(), from, bytes, message });
    if (!message) return;
    switch (message.kind) {
      case "register": {
        if (!this.answering) return;
        const status = this.registerStatus(message.deviceId);
        if (status === 200) {
          this.sessions.set(message.deviceId, {
            ...from,
            encoding: message.header.encoding,
            firmwareVersion: message.firmwareVersion,
          });
        }
        const params =
          status === 200
            ? buildFields(c.register.reply, {
                keepAliveSeconds: this.keepAliveSeconds,
                alarmServerIp: "127.0.0.1",
                alarmServerPort: 7332,
                alarmServerType: 0,
                pictureServer: "127.0.0.1",
                pictureServerPort: 10002,
                pictureServerType: 2,
              })
            : undefined;
        this.reply(rinfo, message.header.sequence, message.header.encoding, c.register.command, {
          method: c.register.method,
          status,
          ...(params ? { params } : {}),
        });
        return;
      }
      case "keepalive": {
        if (!this.answering) return;
        const known = this.sessions.has(message.deviceId);
        // ehome-2.0 §2.2: an unknown device gets 403 with Method REGISTER.
        this.reply(rinfo, message.header.sequence, message.header.encoding, c.keepalive.command, {
          method: known ? c.keepalive.method : c.register.method,
          status: known ? 200 : 403,
        });
        return;
      }
      case "gps": {
        if (!this.answering || !this.answerGps) return;
        this.reply(rinfo, message.header.sequence, message.header.encoding, c.gps.command, {
          status: 200,
          params: buildFields(c.gps.reply, { retransFlag: message.retransFlag }),
        });
        return;
      }
      case "response": {
        for (const [id, s] of this.sessions) {
          if (s.address === rinfo.address && s.port === rinfo.port) {
            this.waiting.get(`${id}|${message.header.sequence}`)?.(message);
          }
        }
        return;
      }
      default:
        return;
    }
  }

  private reply(
    to: dgram.RemoteInfo,
    sequence: number,
    encoding: WireEncoding,
    whichCommand: string,
    r: { method?: string | null; status: number; params?: XmlElement },
  ): void {
    const encoded = encode(
      {
        kind: "response",
        version: ENVELOPE.platformVersion,
        sequence,
        method: r.method ?? null,
        whichCommand,
        status: r.status,
        description: "OK",
        ...(r.params ? { params: r.params } : {}),
      },
      { encoding },
    );
    if (encoded.ok) this.socket.send(encoded.bytes, to.port, to.address);
  }
}
