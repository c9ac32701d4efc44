import type { WireEncoding } from "../signalling/codec/index.ts";
import { encodingFor, ptzFor, type ResolvedOptions } from "./options.ts";

/** What a simulated device is: fixed at creation, except the firmware (changed by an upgrade). */
export interface DeviceProfile {
  readonly id: string;
  readonly index: number;
  readonly encoding: WireEncoding;
  readonly devType: string;
  firmwareVersion: string;
  readonly channels: number;
  readonly ptz: boolean;
  readonly serialNumber: string;
  readonly model: string;
  readonly diskNumber: number;
  readonly diskCapacityMb: number;
  readonly alarmInputs: number;
  readonly alarmOutputs: number;
  readonly audioChannels: number;
  readonly password: string | undefined;
}

export function deviceId(options: ResolvedOptions, index: number): string {
  return options.idPrefix + String(index).padStart(options.idWidth, "0");
}

/**
 * A Hikvision-looking profile: one channel plays a camera (PTZ dome or fixed bullet, SD card), more
 * channels play an NVR (one disk, IP channels). The serial follows the model + date + "CCWR" + 9
 * digits pattern printed on Hikvision labels.
 */
export function createProfile(options: ResolvedOptions, index: number): DeviceProfile {
  const ptz = ptzFor(options.ptz, index);
  const nvr = options.channels > 1;
  const model = nvr ? "DS-7608NI-K2" : ptz ? "DS-2DE4425IW-DE" : "DS-2CD2T45FWD-I8";
  return {
    id: deviceId(options, index),
    index,
    encoding: encodingFor(options.encoding, index),
    devType: options.devType,
    firmwareVersion: options.firmwareVersion,
    channels: options.channels,
    ptz,
    model,
    serialNumber: `${model}20180101CCWR${String(index % 1e9).padStart(9, "0")}`,
    diskNumber: 1,
    diskCapacityMb: nvr ? 3_815_447 : 61_035,
    alarmInputs: nvr ? 4 : 1,
    alarmOutputs: nvr ? 1 : 1,
    audioChannels: 1,
    password: options.password,
  };
}

/**
 * Channel names as the device's OSD shows them. GB2312 firmware ships Chinese defaults ("通道01",
 * "channel 01"), which is the text that makes the encoding matter (ehome-2.0 §1.3).
 */
export function channelName(profile: DeviceProfile, channel: number): string {
  const n = String(channel).padStart(2, "0");
  return profile.encoding === "UTF-8" ? `Camera ${n}` : `通道${n}`;
}
