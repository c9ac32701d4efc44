/**
 * The command catalogue: the one table of EHOME 2.0 command names, Method values and element names
 * (ehome-2.0 §8 rule 1). No other file spells an element name; code refers to entries by their
 * canonical id and field keys, and a dialect file (./dialect.ts) can rename any of them per device
 * model or firmware without a release (§8 rule 2).
 */

export type EntryStatus = "verified" | "provisional";

/** Who sends the REQUEST. */
export type Direction = "device" | "platform";

export interface CommandEntry {
  /** Wire name in `Command` / `WhichCommand`. */
  command: string;
  /** `Method` on platform requests; null when the element is omitted. */
  method: string | null;
  direction: Direction;
  status: EntryStatus;
  /** One-line source note (protocol doc section and where it was seen). */
  source: string;
  /** Request Params: field key → element name. */
  params: Record<string, string>;
  /** Response Params: field key → element name. */
  reply: Record<string, string>;
}

/** Envelope element names and values. ehome-2.0 §1.2 (A). */
export const ENVELOPE = {
  root: "PPVSPMessage",
  version: "Version",
  sequence: "Sequence",
  commandType: "CommandType",
  method: "Method",
  command: "Command",
  whichCommand: "WhichCommand",
  status: "Status",
  description: "Description",
  params: "Params",
  request: "REQUEST",
  response: "RESPONSE",
  /** Version string the platform writes (devices accept 2.5; ehome-2.0 §1.2). */
  platformVersion: "2.5",
  /** Version string a 2.0 device writes. */
  deviceVersion: "2.0",
} as const;

/** Nested blocks inside Params that carry their own element names. */
export const BLOCKS = {
  /** GETDEVICECONFIG wraps its data in ConfigXML/<BLOCK>. ehome-2.0 §2.3 (A) */
  configXml: "ConfigXML",
  /** GetServerInfo answer block and fields. ehome-2.0 §2.3 (A, BLOG capture). */
  serverInfo: {
    block: "SERVERINFO",
    fields: {
      channelNumber: "ChannelNumber",
      channelAmount: "ChannelAmount",
      dvrType: "DVRType",
      diskNumber: "DiskNumber",
      serialNumber: "SerialNumber",
      alarmInPortNum: "AlarmInPortNum",
      alarmInAmount: "AlarmInAmount",
      alarmOutPortNum: "AlarmOutPortNum",
      alarmOutAmount: "AlarmOutAmount",
      startChannel: "StartChannel",
      audioChanNum: "AudioChanNum",
      maxDigitChannelNum: "MaxDigitChannelNum",
      audioEncType: "AudioEncType",
      smartType: "SmartType",
      startChan: "StartChan",
      startDChan: "StartDChan",
    },
  },
  /** GETDEVICEWORKSTATUS answer. ehome-2.0 §2.4 (A, HIKISUP logs). */
  workStatus: {
    block: "DeviceStatusXML",
    fields: {
      run: "Run",
      cpu: "CPU",
      mem: "Mem",
      diskStatus: "DSKStatus",
      disk: "DSK",
      channelStatus: "CHStatus",
      channel: "CH",
      alarmInStatus: "AlarmInStatus",
      alarmOutStatus: "AlarmOutStatus",
      localDisplayStatus: "LocalDisplayStatus",
      remark: "Remark",
    },
  },
  /**
   * `GetPicPara`/`SetPicPara` body (channel name and OSD). Field names: ehome-2.0 §2.3 (B, DEMO
   * SetPicPara template); the block name is provisional (SERVERINFO pattern, §8).
   */
  picPara: {
    block: "PICPARA",
    fields: {
      channelName: "ChannelName",
      isShowChanName: "IsShowChanName",
      channelNameXPos: "ChannelNameXPos",
      channelNameYPos: "ChannelNameYPos",
      isShowOsd: "IsShowOSD",
      osdXPos: "OSDXPos",
      osdYPos: "OSDYPos",
      osdType: "OSDType",
      osdAttrib: "OSDAttrib",
      isShowWeek: "IsShowWeek",
    },
  },
  /**
   * `GetDevAbility` body: the real layout is not public (ehome-2.0 §2.3, §8 capability set), so this
   * block and its fields are provisional, written by the simulator and read leniently.
   */
  devAbility: {
    block: "DEVABILITY",
    fields: {
      channelNumber: "ChannelNumber",
      audioChanNum: "AudioChanNum",
      alarmInPortNum: "AlarmInPortNum",
      alarmOutPortNum: "AlarmOutPortNum",
      diskNumber: "DiskNumber",
      ptz: "PTZ",
      preview: "Preview",
      playback: "Playback",
      voiceTalk: "VoiceTalk",
      linkMode: "LinkMode",
    },
  },
} as const;

/** `ConfigCmd` values the agent itself uses. ehome-2.0 §2.3 (B, DEMO). */
export const CONFIG_CMD = {
  getServerInfo: "GetServerInfo",
  getDevAbility: "GetDevAbility",
  /** Channel name and OSD (ehome-2.0 §2.3, B); Set counterpart `SetPicPara`. */
  getPicPara: "GetPicPara",
  setPicPara: "SetPicPara",
} as const;

/** Element names that may repeat and must always decode as arrays. */
export const REPEATABLE_ELEMENTS = [
  "PicID",
  "VideoId",
  "RecordedFile",
  "PictureFile",
  "CH",
  "DSK",
] as const;

const CONFIG_PARAMS = {
  configCmd: "ConfigCmd",
  configParam1: "ConfigParam1",
  configParam2: "ConfigParam2",
  configParam3: "ConfigParam3",
  configParam4: "ConfigParam4",
} as const;

export const COMMANDS = {
  // ---- device → platform ----
  register: {
    command: "REGISTER",
    method: "REGISTER",
    direction: "device",
    status: "verified",
    source:
      "ehome-2.0 §2.1: BLOG capture (A); response fields FE ResRegister (B); 4.0 fields (B/C)",
    params: {
      netUnitType: "NetUnitType",
      deviceId: "DeviceID",
      firmwareVersion: "FirmwareVersion",
      localIp: "LocalIP",
      localPort: "LocalPort",
      devType: "DevType",
      manufacture: "Manufacture",
      password: "Password",
      serialNumber: "SerialNumber",
    },
    reply: {
      keepAliveSeconds: "KeepAliveSeconds",
      alarmServerIp: "AlarmServerIP",
      alarmServerPort: "AlarmServerPort",
      alarmServerType: "AlarmServerType",
      ntpServerIp: "NTPServerIP",
      ntpServerPort: "NTPServerPort",
      ntpInterval: "NTPInterval",
      pictureServer: "PictureServer",
      pictureServerPort: "PictureServerPort",
      pictureServerType: "PictureServerType",
      blackListAddr: "BlackListAddr",
      blackListName: "BlackListName",
      blackListPort: "BlackListPort",
      blackListUser: "BlackListUser",
      blackListPassword: "BlackListPassword",
      registerServerIp: "RegisterServerIP",
      registerServerPort: "RegisterServerPort",
    },
  },
  keepalive: {
    command: "KEEPALIVE",
    // FE answers KEEPALIVE with Method CONTROL (ehome-2.0 §2.2, B).
    method: "CONTROL",
    direction: "device",
    status: "verified",
    source: "ehome-2.0 §2.2: BLOG capture (A); response FE ResKeepalive (B)",
    params: { deviceId: "DeviceID" },
    reply: {},
  },
  gps: {
    command: "GPS",
    method: null,
    direction: "device",
    status: "verified",
    source: "ehome-2.0 §2.9: device capture in FE doc (A)",
    params: {
      deviceId: "DeviceID",
      time: "Time",
      divisionEw: "DivisionEW",
      longitude: "Longitude",
      divisionNs: "DivisionNS",
      latitude: "Latitude",
      direction: "Direction",
      speed: "Speed",
      satellites: "Satellites",
      precision: "Precision",
      height: "Height",
      retransFlag: "RetransFlag",
      needsResponse: "NeedsResponse",
      timeZone: "TimeZone",
      remark: "Remark",
    },
    reply: { retransFlag: "RetransFlag" },
  },
  alarm: {
    command: "ALARM",
    method: "ALARM",
    direction: "device",
    status: "provisional",
    source: "ehome-2.0 §8 dialect; fields from NET_EHOME_ALARM_INFO (§5.1, B)",
    params: {
      deviceId: "DeviceID",
      alarmType: "AlarmType",
      alarmAction: "AlarmAction",
      videoChannel: "VideoChannel",
      alarmInChannel: "AlarmInChannel",
      diskNumber: "DiskNumber",
      alarmTime: "AlarmTime",
      timeDiffH: "TimeDiffH",
      timeDiffM: "TimeDiffM",
      remark: "Remark",
      retransFlag: "RetransFlag",
      picId: "PicID",
      videoId: "VideoId",
    },
    reply: {},
  },
  status: {
    command: "STATUS",
    method: null,
    direction: "device",
    status: "provisional",
    source: "ehome-2.0 §8 dialect (MESSAGE module)",
    params: {
      deviceId: "DeviceID",
      time: "Time",
      cpu: "CPU",
      mem: "Mem",
      temperature: "Temperature",
      diskFree: "DiskFree",
    },
    reply: {},
  },
  upgradeStatus: {
    command: "UPGRADESTATUS",
    method: null,
    direction: "device",
    status: "provisional",
    source: "ehome-2.0 §8 dialect (optional upgrade progress)",
    params: {
      deviceId: "DeviceID",
      percent: "Percent",
      status: "Status",
      description: "Description",
    },
    reply: {},
  },

  // ---- platform → device: PARAM / QUERY ----
  getDeviceConfig: {
    command: "GETDEVICECONFIG",
    method: "PARAM",
    direction: "platform",
    status: "verified",
    source: "ehome-2.0 §2.3: BLOG + FE (A)",
    params: CONFIG_PARAMS,
    reply: { configXml: "ConfigXML" },
  },
  setDeviceConfig: {
    command: "SETDEVICECONFIG",
    method: "PARAM",
    direction: "platform",
    status: "verified",
    source: "ehome-2.0 §2.3: DEMO CONFIG_SET_PARAM_XML (B)",
    params: { ...CONFIG_PARAMS, configXml: "ConfigXML" },
    reply: {},
  },
  getWorkStatus: {
    command: "GETDEVICEWORKSTATUS",
    method: "QUERY",
    direction: "platform",
    status: "verified",
    source: "ehome-2.0 §2.4: FE + HIKISUP device output (A)",
    params: {},
    reply: { deviceStatusXml: "DeviceStatusXML" },
  },
  queryRecordedFiles: {
    command: "QUERYRECORDEDFILES",
    method: "QUERY",
    direction: "platform",
    status: "verified",
    source: "ehome-2.0 §2.5: device response in FE doc (A); paging (C)",
    params: {
      channel: "Channel",
      fileType: "FileType",
      startTime: "StartTime",
      stopTime: "StopTime",
      chunkSize: "ChunkSize",
      startIdx: "StartIdx",
    },
    reply: { recordedFile: "RecordedFile" },
  },
  queryPictures: {
    command: "QUERYPICTURES",
    method: "QUERY",
    direction: "platform",
    status: "provisional",
    source: "ehome-2.0 §8 dialect",
    params: {
      channel: "Channel",
      picType: "PicType",
      startTime: "StartTime",
      stopTime: "StopTime",
      chunkSize: "ChunkSize",
      startIdx: "StartIdx",
    },
    reply: { pictureFile: "PictureFile" },
  },

  // ---- platform → device: MEDIA ----
  inviteStream: {
    command: "INVITESTREAM",
    method: "MEDIA",
    direction: "platform",
    status: "verified",
    source: "ehome-2.0 §2.6: BLOG capture + FE (A); LinkMode §8 provisional",
    params: {
      channel: "Channel",
      channelType: "ChannelType",
      sinkIp: "SinkIP",
      sinkPort: "SinkPort",
      linkMode: "LinkMode",
    },
    reply: { session: "Session" },
  },
  byeStream: {
    command: "BYESTREAM",
    method: "MEDIA",
    direction: "platform",
    status: "verified",
    source: "ehome-2.0 §2.6 (A)",
    params: { session: "Session" },
    reply: { session: "Session" },
  },
  playback: {
    command: "PLAYBACK",
    method: "MEDIA",
    direction: "platform",
    status: "provisional",
    source: "ehome-2.0 §8 dialect; information from NET_ECMS_StartPlayBack (§2.7, B)",
    params: {
      channel: "Channel",
      fileName: "FileName",
      startTime: "StartTime",
      stopTime: "StopTime",
      direction: "Direction",
      sinkIp: "SinkIP",
      sinkPort: "SinkPort",
      linkMode: "LinkMode",
    },
    reply: { session: "Session" },
  },
  playbackControl: {
    command: "PLAYBACKCONTROL",
    method: "MEDIA",
    direction: "platform",
    status: "provisional",
    source: "ehome-2.0 §8 dialect",
    params: { session: "Session", action: "Action", speed: "Speed", seekTime: "SeekTime" },
    reply: {},
  },
  download: {
    command: "DOWNLOAD",
    method: "MEDIA",
    direction: "platform",
    status: "provisional",
    source: "ehome-2.0 §8 dialect",
    params: {
      channel: "Channel",
      fileName: "FileName",
      sinkIp: "SinkIP",
      sinkPort: "SinkPort",
      linkMode: "LinkMode",
    },
    reply: { session: "Session" },
  },
  forceIFrame: {
    command: "FORCEIFRAME",
    method: "MEDIA",
    direction: "platform",
    status: "provisional",
    source: "ehome-2.0 §8 dialect (no public EHome 2.0 capture, §9 gap 3)",
    params: { channel: "Channel", channelType: "ChannelType" },
    reply: {},
  },
  inviteTalk: {
    command: "INVITETALK",
    method: "MEDIA",
    direction: "platform",
    status: "provisional",
    source: "ehome-2.0 §8 dialect; NET_ECMS_StartVoiceWithStmServer (§2.7, B)",
    params: {
      channel: "Channel",
      audioFormat: "AudioFormat",
      sinkIp: "SinkIP",
      sinkPort: "SinkPort",
      linkMode: "LinkMode",
    },
    reply: { session: "Session" },
  },

  // ---- platform → device: CONTROL ----
  reboot: {
    command: "REBOOT",
    method: "CONTROL",
    direction: "platform",
    status: "provisional",
    source: "ehome-2.0 §8 dialect (no public EHome 2.0 reboot, §2.8)",
    params: {},
    reply: {},
  },
  ptzControl: {
    command: "PTZCONTROL",
    method: "CONTROL",
    direction: "platform",
    status: "verified",
    source: "ehome-2.0 §2.8: FE doc device response (A)",
    params: { channel: "Channel", ptzCmd: "PTZCmd", action: "Action", speed: "Speed" },
    reply: {},
  },
  ptzPresetControl: {
    command: "PTZPRESETCONTROL",
    method: "CONTROL",
    direction: "platform",
    status: "verified",
    source: "ehome-2.0 §2.8: DEMO template (B)",
    params: { channel: "Channel", ptzPresetCmd: "PTZPresetCmd", presetIndex: "PresetIndex" },
    reply: {},
  },
  adjustTime: {
    command: "ADJUSTTIME",
    method: "CONTROL",
    direction: "platform",
    status: "verified",
    source: "ehome-2.0 §2.8: DEMO template (B)",
    params: { timeZone: "TimeZone", time: "Time" },
    reply: {},
  },
  manualSnap: {
    command: "MANUALSNAP",
    method: "CONTROL",
    direction: "platform",
    status: "verified",
    source: "ehome-2.0 §2.8 DEMO (B); PicID §8 provisional",
    params: {
      chan: "Chan",
      snapType: "SnapType",
      sendTo: "SendTo",
      resolution: "Resolution",
      quality: "Quality",
      frequency: "Frequency",
      picId: "PicID",
    },
    reply: {},
  },
  uploadPic: {
    command: "UPLOADPIC",
    method: "CONTROL",
    direction: "platform",
    status: "verified",
    source: "ehome-2.0 §2.8 DEMO (B); PicID §8 provisional",
    params: { chan: "Chan", filename: "Filename", picId: "PicID" },
    reply: {},
  },
  update: {
    command: "UPDATE",
    method: "CONTROL",
    direction: "platform",
    status: "provisional",
    source: "ehome-2.0 §6 name verified (B); HTTP URL fields §8 provisional",
    params: { url: "URL", fileSize: "FileSize", md5: "MD5", version: "Version" },
    reply: {},
  },

  // ---- both directions: DATA ----
  transparent: {
    command: "TRANSPARENT",
    method: "DATA",
    direction: "platform",
    status: "provisional",
    source: "ehome-2.0 §8 dialect (DATA module)",
    params: { deviceId: "DeviceID", channel: "Channel", data: "Data" },
    reply: { data: "Data" },
  },
} as const satisfies Record<string, CommandEntry>;

export type CommandId = keyof typeof COMMANDS;
export type CommandParams<C extends CommandId> = keyof (typeof COMMANDS)[C]["params"];
export type CommandReply<C extends CommandId> = keyof (typeof COMMANDS)[C]["reply"];

/** A catalogue with a dialect applied: what code uses to talk to one device. */
export interface CatalogueView {
  readonly commands: { readonly [K in CommandId]: CommandEntry };
  /** Wire command name (upper-cased) → catalogue id, for dispatching what a device sends. */
  readonly byWireName: ReadonlyMap<string, CommandId>;
}

export function buildView(commands: { readonly [K in CommandId]: CommandEntry }): CatalogueView {
  const byWireName = new Map<string, CommandId>();
  for (const id of Object.keys(commands) as CommandId[]) {
    byWireName.set(commands[id].command.toUpperCase(), id);
  }
  return { commands, byWireName };
}

/** The catalogue as written here, with no dialect applied. */
export const DEFAULT_VIEW: CatalogueView = buildView(COMMANDS);

/**
 * Picture / video upload to the picture server announced at REGISTER (ehome-2.0 §8, provisional):
 * HTTP paths, and the query parameters or headers naming the upload (matched case-insensitively).
 */
export const UPLOAD = {
  status: "provisional",
  source: "ehome-2.0 §8 dialect (Picture / video upload row)",
  paths: { picture: "/pictures", video: "/videos" },
  fields: {
    deviceId: "DeviceID",
    picId: "PicID",
    videoId: "VideoId",
    channel: "Channel",
    time: "Time",
  },
} as const;

/** Commands the PTZ rule sends three times back to back. ehome-2.0 §2.8, §3.3 */
export const SEND_THREE_TIMES: ReadonlySet<CommandId> = new Set<CommandId>(["ptzControl"]);
