import type { COMMANDS, CommandId } from "../../signalling/catalogue.ts";
import type { CommandHandler } from "./context.ts";
import { adjustTime, reboot, update } from "./control.ts";
import { transparent } from "./data.ts";
import {
  byeStream,
  download,
  forceIFrame,
  inviteStream,
  inviteTalk,
  playback,
  playbackControl,
} from "./media.ts";
import { getDeviceConfig, setDeviceConfig } from "./param.ts";
import { manualSnap, uploadPic } from "./picture.ts";
import { ptzControl, ptzPresetControl } from "./ptz.ts";
import { getWorkStatus, queryPictures, queryRecordedFiles } from "./query.ts";

/** Catalogue commands the platform sends to a device. */
export type PlatformCommandId = {
  [K in CommandId]: (typeof COMMANDS)[K]["direction"] extends "platform" ? K : never;
}[CommandId];

/**
 * One handler per platform command, grouped one file per area. The mapped type makes this table
 * exhaustive: a platform command added to the catalogue does not compile until it is answered here.
 */
export const HANDLERS: { readonly [K in PlatformCommandId]: CommandHandler } = {
  getDeviceConfig,
  setDeviceConfig,
  getWorkStatus,
  queryRecordedFiles,
  queryPictures,
  inviteStream,
  byeStream,
  playback,
  playbackControl,
  download,
  forceIFrame,
  inviteTalk,
  reboot,
  ptzControl,
  ptzPresetControl,
  adjustTime,
  manualSnap,
  uploadPic,
  update,
  transparent,
};

export function handlerFor(commandId: string | null): CommandHandler | undefined {
  if (commandId === null || !Object.hasOwn(HANDLERS, commandId)) return undefined;
  return HANDLERS[commandId as PlatformCommandId];
}

export type { CommandHandler, CommandReply, HandlerContext } from "./context.ts";
