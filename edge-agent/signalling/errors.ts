/**
 * Stable codes of the errors the edge agent's signalling core reports (style rule 6). The table in
 * docs/errors.md ("Edge agent") lists each one; test/edge-agent/errors-doc.test.ts keeps the two in
 * step. Codec codes are listed separately (codec/types.ts).
 */
export const AGENT_ERROR_CODES = {
  CONFIG_INVALID: "start-up: an EHOME_* variable is invalid (ConfigError; the message names it)",
  DIALECT_INVALID: "start-up: the EHOME_DIALECT_FILE cannot be read or is invalid (DialectError)",
  PROVISIONING_FILE_INVALID:
    "start-up: the EHOME_PROVISIONING_FILE cannot be read or is invalid (ProvisioningFileError)",
  COMMAND_UNENCODABLE:
    "command: the request cannot be encoded within EHOME_MAX_OUTBOUND_BYTES (CommandEncodeError)",
  DEADLINE_PASSED: "command result: the command's deadline passed before the agent started it",
  VALIDATION_FAILED: "command result: params do not match the contract's CommandParams",
  DEVICE_ERROR: "command result: the device answered with a non-200 Status",
  DEVICE_TIMEOUT: "command result: no answer after all sends and the timeout",
  DEVICE_OFFLINE: "command result: the device is not online on this agent (or went offline)",
  MEDIA_UNAVAILABLE:
    "command result: a media command reached an agent composed without its media module",
  INTERNAL: "command result: an unexpected agent error",
} as const;

export type AgentErrorCode = keyof typeof AGENT_ERROR_CODES;
