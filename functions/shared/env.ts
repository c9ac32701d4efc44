import { ENV, type EnvName } from "../../lib/contracts/env.ts";

/**
 * Environment, read once through validated helpers (Powertools habit). Handlers call these from
 * their lazy composition root, never at import time, so a missing variable fails the first
 * invocation with a message naming it instead of crashing module load.
 */

export class ConfigError extends Error {
  readonly code = "CONFIG_INVALID";
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

export type Env = Readonly<Record<string, string | undefined>>;

/** The value of a required variable; throws `ConfigError` naming every missing one. */
export function requireEnv<const N extends EnvName>(
  env: Env,
  names: readonly N[],
): Readonly<Record<N, string>> {
  const missing = names.filter((name) => !env[name]?.trim());
  if (missing.length > 0) {
    throw new ConfigError(`missing environment variable(s): ${missing.join(", ")}`);
  }
  const out = {} as Record<N, string>;
  for (const name of names) out[name] = env[name]!.trim();
  return Object.freeze(out);
}

export function optionalEnv(env: Env, name: string): string | undefined {
  const value = env[name]?.trim();
  return value ? value : undefined;
}

/** Table names the functions read, keyed like `TABLES`. */
export interface TableNames {
  readonly devices: string;
  readonly presence: string;
  readonly commands: string;
  readonly agents: string;
}

export function tableNamesFromEnv(env: Env): TableNames {
  const v = requireEnv(env, [
    ENV.DEVICES_TABLE,
    ENV.PRESENCE_TABLE,
    ENV.COMMANDS_TABLE,
    ENV.AGENTS_TABLE,
  ]);
  return {
    devices: v.DEVICES_TABLE,
    presence: v.PRESENCE_TABLE,
    commands: v.COMMANDS_TABLE,
    agents: v.AGENTS_TABLE,
  };
}
