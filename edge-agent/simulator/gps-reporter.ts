import type { ResponseMessage, XmlElement } from "../signalling/codec/index.ts";
import { buildFields } from "../signalling/codec/index.ts";
import type { DeviceEnv, DevicePort } from "./device-env.ts";
import { advance, fixOf, type GpsTrack, startPathTrack, startTrack } from "./gps.ts";
import type { TaskHandle } from "./scheduler.ts";

interface Pending {
  sequence: number;
  params: XmlElement;
}

/**
 * Periodic GPS reports of one device (ehome-2.0 §2.9). A report asks for an answer (NeedsResponse 1)
 * and is resent with RetransFlag 1 and the same Sequence until answered (C); the next position is
 * only reported once the previous one was answered. With `gpsPath` the device drives along the
 * waypoints; `gpsAnswerLossRate` makes it ignore some answers (so the platform sees resent copies);
 * `gpsMaxReports` ends its reporting.
 */
export class GpsReporter {
  private pending: Pending | null = null;
  private track: GpsTrack | null = null;
  private timer: TaskHandle | null = null;
  private resendTimer: TaskHandle | null = null;
  private reports = 0;

  constructor(
    private readonly env: DeviceEnv,
    private readonly device: DevicePort,
    private readonly identity: { index: number; id: string },
    private readonly clock: { deviceTime(): string; timeZone(): string },
  ) {}

  private get periodMs(): number {
    return this.env.options.gpsIntervalSeconds * 1000;
  }

  /** Device online: the first report lands somewhere in the first period (spreads a fleet). */
  start(): void {
    if (this.periodMs <= 0) return;
    this.stop();
    this.timer = this.env.scheduler.after(this.periodMs * this.env.random(), () => this.tick());
    if (this.pending) this.scheduleResend();
  }

  /** Device offline or silent: timers stop, an unanswered report is kept for later. */
  stop(): void {
    this.timer?.cancel();
    this.resendTimer?.cancel();
    this.timer = null;
    this.resendTimer = null;
  }

  /** Device rebooted: the unanswered report is lost with the device's memory. */
  reset(): void {
    this.stop();
    this.pending = null;
  }

  /** True when the response answered the pending report. */
  onResponse(m: ResponseMessage): boolean {
    const gps = this.env.view.commands.gps;
    if (!this.pending || m.header.sequence !== this.pending.sequence) return false;
    if (m.whichCommand.toUpperCase() !== gps.command.toUpperCase()) return false;
    // Played loss of the answer: the report stays pending and is resent (RetransFlag 1).
    const loss = this.env.options.gpsAnswerLossRate;
    if (loss > 0 && this.env.random() < loss) return true;
    this.device.count("gpsAnswered");
    this.pending = null;
    this.resendTimer?.cancel();
    this.resendTimer = null;
    return true;
  }

  private tick(): void {
    const max = this.env.options.gpsMaxReports;
    if (max > 0 && this.reports >= max) return;
    this.timer = this.env.scheduler.after(this.periodMs, () => this.tick());
    const random = this.env.random;
    const path = this.env.options.gpsPath;
    if (this.track === null) {
      this.track = path ? startPathTrack(path, random) : startTrack(this.identity.index, random);
    } else advance(this.track, this.periodMs / 1000, random);
    if (this.pending) return;
    this.reports++;
    const c = this.env.view.commands.gps;
    const sequence = this.device.nextSequence();
    const params = buildFields(c.params, {
      deviceId: this.identity.id,
      time: this.clock.deviceTime(),
      ...fixOf(this.track, random),
      retransFlag: 0,
      needsResponse: 1,
      timeZone: this.clock.timeZone(),
    });
    this.pending = { sequence, params };
    this.device.count("gpsSent");
    this.device.sendRequest(c, sequence, params);
    this.scheduleResend();
  }

  private scheduleResend(): void {
    this.resendTimer?.cancel();
    this.resendTimer = this.env.scheduler.after(this.env.options.gpsRetryMs, () => {
      this.resendTimer = null;
      const pending = this.pending;
      if (!pending) return;
      const c = this.env.view.commands.gps;
      pending.params[c.params.retransFlag!] = "1";
      this.device.count("gpsResent");
      this.device.sendRequest(c, pending.sequence, pending.params);
      this.scheduleResend();
    });
  }
}
