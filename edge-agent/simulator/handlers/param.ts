import { BLOCKS, CONFIG_CMD } from "../../signalling/catalogue.ts";
import {
  buildFields,
  childElement,
  childValue,
  type PlatformRequestMessage,
  readFields,
  type XmlElement,
} from "../../signalling/codec/index.ts";
import { channelName } from "../profile.ts";
import type { CommandHandler, HandlerContext } from "./context.ts";
import { badRequest, ok } from "./status.ts";

/** Stored config bodies per device; beyond this a SET is refused (a runaway test, not a device). */
const MAX_STORED_CONFIGS = 256;

// ehome-2.0 §2.3: ConfigCmd names come in Get/Set pairs (GetPicPara / SetPicPara), so a SET is
// stored under the name without its prefix and the matching GET finds it.
const GET_OR_SET = /^(get|set)/i;

function configBase(configCmd: string): string {
  return configCmd.replace(GET_OR_SET, "").toLowerCase();
}

const SERVER_INFO = configBase(CONFIG_CMD.getServerInfo);
const DEV_ABILITY = configBase(CONFIG_CMD.getDevAbility);
const PIC_PARA = configBase(CONFIG_CMD.getPicPara);

function selector(ctx: HandlerContext, request: PlatformRequestMessage) {
  return readFields(request.params, ctx.view.commands.getDeviceConfig.params);
}

function numberParam(v: string | undefined): string {
  if (v === undefined || v === "") return "0";
  return /^\d+$/.test(v) ? String(Number(v)) : v;
}

/** Key of a stored body: ConfigCmd without Get/Set + ConfigParam1..4 (0 when absent). */
export function configKey(
  configCmd: string,
  p: Partial<Record<"configParam1" | "configParam2" | "configParam3" | "configParam4", string>>,
): string {
  const params = [p.configParam1, p.configParam2, p.configParam3, p.configParam4].map(numberParam);
  return `${configBase(configCmd)}|${params.join(",")}`;
}

function configXml(ctx: HandlerContext, block: string, body: XmlElement): XmlElement {
  return { [ctx.view.commands.getDeviceConfig.reply.configXml!]: { [block]: body } };
}

/** ehome-2.0 §2.3 (A): the SERVERINFO block FE reads serial and channel counts from. */
function serverInfo(ctx: HandlerContext): XmlElement {
  const p = ctx.device.profile;
  const nvr = p.channels > 1;
  const body = buildFields(BLOCKS.serverInfo.fields, {
    channelNumber: p.channels,
    channelAmount: p.channels,
    dvrType: p.devType,
    diskNumber: p.diskNumber,
    serialNumber: p.serialNumber,
    alarmInPortNum: p.alarmInputs,
    alarmInAmount: p.alarmInputs,
    alarmOutPortNum: p.alarmOutputs,
    alarmOutAmount: p.alarmOutputs,
    startChannel: 1,
    audioChanNum: p.audioChannels,
    maxDigitChannelNum: nvr ? p.channels : 0,
    audioEncType: 1,
    smartType: 0,
    startChan: 1,
    startDChan: nvr ? 1 : 0,
  });
  return configXml(ctx, BLOCKS.serverInfo.block, body);
}

/** Provisional capability block (catalogue BLOCKS.devAbility). */
function devAbility(ctx: HandlerContext): XmlElement {
  const p = ctx.device.profile;
  const body = buildFields(BLOCKS.devAbility.fields, {
    channelNumber: p.channels,
    audioChanNum: p.audioChannels,
    alarmInPortNum: p.alarmInputs,
    alarmOutPortNum: p.alarmOutputs,
    diskNumber: p.diskNumber,
    ptz: p.ptz ? "true" : "false",
    preview: "true",
    playback: "true",
    voiceTalk: p.audioChannels > 0 ? "true" : "false",
    linkMode: "TCP,UDP",
  });
  return configXml(ctx, BLOCKS.devAbility.block, body);
}

/** Factory defaults for the channel-name/OSD block (field names: DEMO SetPicPara, §2.3). */
function defaultPicPara(ctx: HandlerContext, channel: number): XmlElement {
  const body = buildFields(BLOCKS.picPara.fields, {
    channelName: channelName(ctx.device.profile, channel),
    isShowChanName: 1,
    channelNameXPos: 512,
    channelNameYPos: 544,
    isShowOsd: 1,
    osdXPos: 0,
    osdYPos: 32,
    osdType: 0,
    osdAttrib: 1,
    isShowWeek: 1,
  });
  return configXml(ctx, BLOCKS.picPara.block, body);
}

export const getDeviceConfig: CommandHandler = (ctx, request) => {
  const sel = selector(ctx, request);
  const cmd = sel.configCmd;
  if (!cmd) return badRequest("ConfigCmd missing");
  const base = configBase(cmd);
  if (base === SERVER_INFO) return ok(serverInfo(ctx));
  if (base === DEV_ABILITY) return ok(devAbility(ctx));
  const stored = ctx.device.config.get(configKey(cmd, sel));
  if (stored) return ok({ [ctx.view.commands.getDeviceConfig.reply.configXml!]: stored });
  if (base === PIC_PARA) {
    const channel = Number(numberParam(sel.configParam1)) || 1;
    if (channel > ctx.device.profile.channels) return badRequest("no such channel");
    return ok(defaultPicPara(ctx, channel));
  }
  return badRequest(`unsupported ConfigCmd ${cmd}`);
};

export const setDeviceConfig: CommandHandler = (ctx, request) => {
  const names = ctx.view.commands.setDeviceConfig.params;
  const sel = readFields(request.params, names);
  const cmd = sel.configCmd;
  if (!cmd) return badRequest("ConfigCmd missing");
  const base = configBase(cmd);
  if (base === SERVER_INFO || base === DEV_ABILITY) return badRequest(`${cmd} is read-only`);
  if (childValue(request.params, names.configXml!) === undefined) {
    return badRequest("ConfigXML missing");
  }
  const body = childElement(request.params, names.configXml!) ?? {};
  const key = configKey(cmd, sel);
  const store = ctx.device.config;
  if (!store.has(key) && store.size >= MAX_STORED_CONFIGS) return badRequest("config store full");
  store.set(key, body);
  return ok();
};
