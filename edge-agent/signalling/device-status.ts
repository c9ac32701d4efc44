import { BLOCKS, type CatalogueView } from "./catalogue.ts";
import { childElement, childText, childTexts, readFields, type XmlElement } from "./codec/index.ts";

/**
 * Parsers for what the agent learns from a device: the `GetServerInfo` block (ehome-2.0 §2.3) and
 * the `GETDEVICEWORKSTATUS` answer (§2.4). Both are lenient: a missing or non-numeric field is
 * left out rather than failing the whole answer.
 */

export interface ServerInfo {
  serialNumber?: string;
  channelCount?: number;
  alarmInCount?: number;
  alarmOutCount?: number;
  diskCount?: number;
  /** The SERVERINFO fields as sent, by catalogue field key. */
  raw: Record<string, string>;
}

export interface WorkStatusDisk {
  disk: number;
  capacityMb?: number;
  freeMb?: number;
  /** 0 active, 1 sleeping, 2 abnormal. */
  state?: number;
}

export interface WorkStatusChannel {
  channel: number;
  recording?: boolean;
  signalLost?: boolean;
  encoderError?: boolean;
  bitrateKbps?: number;
  clientCount?: number;
  /** NVR firmware appends `-linked-online` (ehome-2.0 §2.4). */
  linked?: boolean;
  online?: boolean;
}

export interface WorkStatus {
  /** 0 normal, 1 CPU above 85 %, 2 hardware error. */
  run?: number;
  cpu?: number;
  mem?: number;
  disks: WorkStatusDisk[];
  channels: WorkStatusChannel[];
}

/** Channels beyond this are dropped (the device-info event carries at most 512). */
export const MAX_CHANNELS = 512;

function num(s: string | undefined): number | undefined {
  if (s === undefined || !/^\d{1,10}$/.test(s.trim())) return undefined;
  return Number(s.trim());
}

function flag(s: string | undefined): boolean | undefined {
  const n = num(s);
  return n === undefined ? undefined : n !== 0;
}

function setIfDefined<T extends object, K extends keyof T>(o: T, k: K, v: T[K] | undefined): void {
  if (v !== undefined) o[k] = v;
}

/** The `ConfigXML` element of a GETDEVICECONFIG answer (its content is the config object). */
export function configXmlOf(params: XmlElement, view: CatalogueView): XmlElement | undefined {
  return childElement(params, view.commands.getDeviceConfig.reply.configXml ?? BLOCKS.configXml);
}

/** Params of a `GetServerInfo` answer → ServerInfo; undefined when the block is absent. */
export function parseServerInfo(params: XmlElement, view: CatalogueView): ServerInfo | undefined {
  const block = childElement(configXmlOf(params, view), BLOCKS.serverInfo.block);
  if (!block) return undefined;
  const f = readFields(block, BLOCKS.serverInfo.fields);
  const info: ServerInfo = { raw: f as Record<string, string> };
  if (f.serialNumber) info.serialNumber = f.serialNumber;
  // ChannelAmount counts analogue and IP channels on NVRs; ChannelNumber is the analogue count
  // (C: inferred from FE field use). Prefer the larger meaning when present.
  const amount = num(f.channelAmount);
  setIfDefined(info, "channelCount", amount && amount > 0 ? amount : num(f.channelNumber));
  setIfDefined(info, "alarmInCount", num(f.alarmInPortNum) ?? num(f.alarmInAmount));
  setIfDefined(info, "alarmOutCount", num(f.alarmOutPortNum) ?? num(f.alarmOutAmount));
  setIfDefined(info, "diskCount", num(f.diskNumber));
  return info;
}

/** One `CH` entry `channel-recording-signalLost-encoderError-bitrateKbps-clientCount[-linked-online]`. */
export function parseChannel(entry: string): WorkStatusChannel | undefined {
  const parts = entry.trim().split("-");
  const channel = num(parts[0]);
  if (channel === undefined) return undefined;
  const ch: WorkStatusChannel = { channel };
  setIfDefined(ch, "recording", flag(parts[1]));
  setIfDefined(ch, "signalLost", flag(parts[2]));
  setIfDefined(ch, "encoderError", flag(parts[3]));
  setIfDefined(ch, "bitrateKbps", num(parts[4]));
  setIfDefined(ch, "clientCount", num(parts[5]));
  setIfDefined(ch, "linked", flag(parts[6]));
  setIfDefined(ch, "online", flag(parts[7]));
  return ch;
}

/** One `DSK` entry `disk-capacityMB-freeMB-state`. */
export function parseDisk(entry: string): WorkStatusDisk | undefined {
  const parts = entry.trim().split("-");
  const disk = num(parts[0]);
  if (disk === undefined) return undefined;
  const d: WorkStatusDisk = { disk };
  setIfDefined(d, "capacityMb", num(parts[1]));
  setIfDefined(d, "freeMb", num(parts[2]));
  setIfDefined(d, "state", num(parts[3]));
  return d;
}

/** Params of a GETDEVICEWORKSTATUS answer → WorkStatus; undefined when the block is absent. */
export function parseWorkStatus(params: XmlElement, view: CatalogueView): WorkStatus | undefined {
  const f = BLOCKS.workStatus.fields;
  const block =
    childElement(params, view.commands.getWorkStatus.reply.deviceStatusXml ?? "") ??
    childElement(params, BLOCKS.workStatus.block);
  if (!block) return undefined;
  const status: WorkStatus = { disks: [], channels: [] };
  setIfDefined(status, "run", num(childText(block, f.run)));
  setIfDefined(status, "cpu", num(childText(block, f.cpu)));
  setIfDefined(status, "mem", num(childText(block, f.mem)));
  for (const d of childTexts(childElement(block, f.diskStatus), f.disk)) {
    const disk = parseDisk(d);
    if (disk) status.disks.push(disk);
  }
  for (const c of childTexts(childElement(block, f.channelStatus), f.channel)) {
    if (status.channels.length >= MAX_CHANNELS) break;
    const ch = parseChannel(c);
    if (ch) status.channels.push(ch);
  }
  return status;
}
