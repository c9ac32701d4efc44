import type { ResponseMessage } from "../signalling/codec/index.ts";
import { buildFields } from "../signalling/codec/index.ts";
import type { DeviceEnv, DevicePort } from "./device-env.ts";
import type { TaskHandle } from "./scheduler.ts";

/** The `Data` of unsolicited message `n` of a device: what a test expects to read back. */
export function passthroughReading(deviceId: string, n: number): Buffer {
  return Buffer.from(`${deviceId} serial reading ${n}\r\n`, "utf8");
}

/**
 * Unsolicited TRANSPARENT messages of one device (ehome-2.0 §8 DATA row): every
 * `passthroughIntervalSeconds` a "serial reading" on channel 1, base64 in `Data`. Sent once each;
 * answers are counted (an unanswered one is not resent: passthrough is best effort).
 */
export class PassthroughReporter {
  private timer: TaskHandle | null = null;
  private sent = 0;
  private readonly outstanding = new Set<number>();

  constructor(
    private readonly env: DeviceEnv,
    private readonly device: DevicePort,
    private readonly identity: { id: string },
  ) {}

  private get periodMs(): number {
    return this.env.options.passthroughIntervalSeconds * 1000;
  }

  start(): void {
    if (this.periodMs <= 0) return;
    this.stop();
    this.timer = this.env.scheduler.after(this.periodMs * this.env.random(), () => this.tick());
  }

  stop(): void {
    this.timer?.cancel();
    this.timer = null;
  }

  /** True when the response answered one of our messages. */
  onResponse(m: ResponseMessage): boolean {
    const c = this.env.view.commands.transparent;
    if (m.whichCommand.toUpperCase() !== c.command.toUpperCase()) return false;
    if (!this.outstanding.delete(m.header.sequence)) return false;
    this.device.count("passthroughAnswered");
    return true;
  }

  private tick(): void {
    this.timer = this.env.scheduler.after(this.periodMs, () => this.tick());
    const c = this.env.view.commands.transparent;
    const sequence = this.device.nextSequence();
    const data = passthroughReading(this.identity.id, this.sent++).toString("base64");
    if (this.outstanding.size > 64) this.outstanding.clear();
    this.outstanding.add(sequence);
    this.device.count("passthroughSent");
    this.device.sendRequest(
      c,
      sequence,
      buildFields(c.params, { deviceId: this.identity.id, channel: 1, data }),
    );
  }
}
