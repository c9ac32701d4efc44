/**
 * Names of the environment variables through which the stacks (and the local runner) tell the
 * Lambda functions and the edge agent where their resources are. Spelled once, here; read with
 * `process.env[ENV.DEVICES_TABLE]`.
 */
export const ENV = {
  /** Physical name of the devices table (`TABLES.devices`). */
  DEVICES_TABLE: "DEVICES_TABLE",
  /** Physical name of the presence-history table (`TABLES.presence`). */
  PRESENCE_TABLE: "PRESENCE_TABLE",
  /** Physical name of the commands table (`TABLES.commands`). */
  COMMANDS_TABLE: "COMMANDS_TABLE",
  /** Physical name of the agents (heartbeat) table (`TABLES.agents`). */
  AGENTS_TABLE: "AGENTS_TABLE",
  /** Physical name of the alarms table (`TABLES.alarms`). */
  ALARMS_TABLE: "ALARMS_TABLE",
  /** Physical name of the alarm-media rendezvous table (`TABLES.alarmMedia`). */
  ALARM_MEDIA_TABLE: "ALARM_MEDIA_TABLE",
  /** Physical name of the captures table (`TABLES.captures`). */
  CAPTURES_TABLE: "CAPTURES_TABLE",
  /** Physical name of the firmware table (`TABLES.firmware`). */
  FIRMWARE_TABLE: "FIRMWARE_TABLE",
  /** Physical name of the upgrade campaigns table (`TABLES.campaigns`). */
  CAMPAIGNS_TABLE: "CAMPAIGNS_TABLE",
  /** Physical name of the per-device upgrade executions table (`TABLES.executions`). */
  EXECUTIONS_TABLE: "EXECUTIONS_TABLE",
  /** Physical name of the GPS positions table (`TABLES.positions`). */
  POSITIONS_TABLE: "POSITIONS_TABLE",
  /** Physical name of the device-initiated passthrough messages table (`TABLES.passthrough`). */
  PASSTHROUGH_TABLE: "PASSTHROUGH_TABLE",
  /** URL of the device-data queue (agent → device-data function: GPS positions, passthrough). */
  DEVICE_DATA_QUEUE_URL: "DEVICE_DATA_QUEUE_URL",
  /** URL of the device-events queue (agent → registry function). */
  DEVICE_EVENTS_QUEUE_URL: "DEVICE_EVENTS_QUEUE_URL",
  /** URL of the command-results queue (agent → command-results function). */
  COMMAND_RESULTS_QUEUE_URL: "COMMAND_RESULTS_QUEUE_URL",
  /** URL of the alarm-events queue (agent → alarms function: alarms and uploaded media). */
  ALARM_EVENTS_QUEUE_URL: "ALARM_EVENTS_QUEUE_URL",
  /** Name prefix of the per-agent command queues (see `agentCommandQueueName`). */
  AGENT_QUEUE_PREFIX: "AGENT_QUEUE_PREFIX",
  /** Name of the private media bucket (pictures, videos, downloads, firmware). */
  MEDIA_BUCKET: "MEDIA_BUCKET",
  /** URL of the upgrade-events queue (agent → upgrades function; `UPGRADE_EVENTS_QUEUE`). */
  UPGRADE_EVENTS_QUEUE_URL: "UPGRADE_EVENTS_QUEUE_URL",
  /**
   * Key of the firmware download tokens (upgrades.ts): hex or base64, ≥ 32 bytes. The engine mints
   * with it, the agent verifies with it. On AWS a Secrets Manager secret (data stack): the agent
   * container gets it as an ECS `secrets` entry, the upgrades function through a deploy-time
   * dynamic reference; `npm start` generates one per start.
   */
  FIRMWARE_TOKEN_KEY: "FIRMWARE_TOKEN_KEY",
  /** Physical name of the streams table (`TABLES.streams`; media.ts). */
  STREAMS_TABLE: "STREAMS_TABLE",
  /** URL of the media-events queue (agent → media function: `StreamEvent`s). */
  MEDIA_EVENTS_QUEUE_URL: "MEDIA_EVENTS_QUEUE_URL",
  /**
   * Key of the viewer tokens (media.ts `mintStreamToken`), same format and handling as
   * `FIRMWARE_TOKEN_KEY`: the API mints, the agent verifies.
   */
  STREAM_TOKEN_KEY: "STREAM_TOKEN_KEY",

  // Edge agent only. These follow the agent's `EHOME_*` convention (edge-agent/config.ts,
  // docs/configuration.md); the edge stack sets them on the container.
  /** UDP signalling port (REGISTER / KEEPALIVE / commands). */
  EHOME_SIGNAL_PORT: "EHOME_SIGNAL_PORT",
  /** UDP alarm port. */
  EHOME_ALARM_PORT: "EHOME_ALARM_PORT",
  /** TCP port of the device-facing HTTP server (uploads, firmware, `/healthz`). */
  EHOME_HTTP_PORT: "EHOME_HTTP_PORT",
  /** Media pool as `min-max`, e.g. `31000-31999`. */
  EHOME_MEDIA_PORTS: "EHOME_MEDIA_PORTS",
  /**
   * Host and port of `https://` download URLs when TLS is terminated in front of the agent (the
   * NLB's TLS listener, `-c deviceHttpsCertificateArn`): a name the certificate covers.
   */
  EHOME_HTTPS_PUBLIC_HOST: "EHOME_HTTPS_PUBLIC_HOST",
  EHOME_HTTPS_PUBLIC_PORT: "EHOME_HTTPS_PUBLIC_PORT",
  /** `true`: devices missing from the devices table may register; `false`: refused (403). */
  EHOME_AUTO_PROVISION: "EHOME_AUTO_PROVISION",
  /**
   * The IPv4 address the agent announces to devices: `AlarmServerIP` and `PictureServer` in the
   * REGISTER reply (ehome-2.0 §2.1), `SinkIP`, firmware and viewer URLs. On AWS, the NLB's first
   * Elastic IP: the fallback of `EHOME_PUBLIC_HOST_DISCOVERY`.
   */
  EHOME_PUBLIC_HOST: "EHOME_PUBLIC_HOST",
  /** `ecs` on AWS: each task announces its own public IP (edge-agent/cloud/public-address.ts). */
  EHOME_PUBLIC_HOST_DISCOVERY: "EHOME_PUBLIC_HOST_DISCOVERY",
  /** `NTPServerIP` in the REGISTER reply; the agent defaults it to `EHOME_PUBLIC_HOST`. */
  EHOME_NTP_HOST: "EHOME_NTP_HOST",
  /** TCP port of the viewer HTTP server (`/streams/<id>.<ps|ts>?token=`; media.ts). */
  EHOME_VIEWER_PORT: "EHOME_VIEWER_PORT",
  /** Bytes of the relay's last-GOP cache per stream (edge-agent/media/relay.ts; default 1 MiB). */
  EHOME_MEDIA_GOP_CACHE_BYTES: "EHOME_MEDIA_GOP_CACHE_BYTES",
  /** Bytes one viewer may hold undrained before it skips to the next keyframe (default 256 KiB). */
  EHOME_MEDIA_VIEWER_BUFFER_BYTES: "EHOME_MEDIA_VIEWER_BUFFER_BYTES",
  /** Seconds a stream lives with no viewer before the agent stops it (default 30). */
  EHOME_STREAM_IDLE_SECONDS: "EHOME_STREAM_IDLE_SECONDS",
  /** Largest picture upload accepted on `POST /pictures`, in bytes (default 10 MiB). */
  EHOME_MAX_PICTURE_BYTES: "EHOME_MAX_PICTURE_BYTES",
  /** Largest video upload accepted on `POST /videos`, in bytes (default 512 MiB). */
  EHOME_MAX_VIDEO_BYTES: "EHOME_MAX_VIDEO_BYTES",
} as const;

export type EnvName = (typeof ENV)[keyof typeof ENV];
