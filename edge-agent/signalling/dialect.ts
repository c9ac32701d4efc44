import { readFile } from "node:fs/promises";
import { z } from "zod";
import {
  buildView,
  type CatalogueView,
  COMMANDS,
  type CommandEntry,
  type CommandId,
  DEFAULT_VIEW,
} from "./catalogue.ts";

/**
 * The dialect file (ehome-2.0 §8 rule 2): renames commands, Methods and Params elements per device
 * model (`DevType`) or firmware prefix (`FirmwareVersion`), so a user who captures a real device
 * can correct a provisional name without a release. Every matching profile applies, in file order
 * (later profiles win). Unknown command ids or field keys are a start-up error naming the path.
 *
 * Limitation: the REGISTER that tells us DevType and FirmwareVersion is decoded with the default
 * names first; profiles that rename REGISTER itself are tried only when the default view does not
 * recognise the datagram as a REGISTER.
 */

const ElementName = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/, "an XML element name such as DeviceID");

const Override = z
  .object({
    command: ElementName.optional(),
    method: z.union([ElementName, z.null()]).optional(),
    params: z.record(z.string(), ElementName).optional(),
    reply: z.record(z.string(), ElementName).optional(),
  })
  .strict();

const Profile = z
  .object({
    match: z
      .object({
        devType: z.string().min(1).max(32).optional(),
        firmwarePrefix: z.string().min(1).max(64).optional(),
      })
      .strict(),
    commands: z.record(z.string(), Override),
  })
  .strict();

const DialectFile = z.object({ profiles: z.array(Profile).max(256) }).strict();

export type DialectOverride = z.infer<typeof Override>;
export type DialectProfile = z.infer<typeof Profile>;

export class DialectError extends Error {
  readonly code = "DIALECT_INVALID";
  constructor(message: string) {
    super(message);
    this.name = "DialectError";
  }
}

export interface Dialect {
  readonly profiles: readonly DialectProfile[];
  /** The catalogue view for one device; cached per set of matching profiles. */
  viewFor(devType: string | undefined, firmwareVersion: string | undefined): CatalogueView;
  /** Views of the profiles that rename REGISTER (tried when the default view does not decode it). */
  registerViews(): readonly CatalogueView[];
}

function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = "";
  for (const p of path) out += typeof p === "number" ? `[${p}]` : out ? `.${String(p)}` : String(p);
  return out || "(root)";
}

/** Validates a parsed dialect document. `source` (a file name) prefixes every error. */
export function parseDialect(doc: unknown, source: string): Dialect {
  const parsed = DialectFile.safeParse(doc);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new DialectError(`${source}: ${formatPath(issue.path)}: ${issue.message}`);
  }
  const profiles = parsed.data.profiles;
  profiles.forEach((profile, i) => {
    for (const [id, override] of Object.entries(profile.commands)) {
      const at = `profiles[${i}].commands.${id}`;
      if (!Object.hasOwn(COMMANDS, id)) {
        throw new DialectError(`${source}: ${at}: unknown catalogue command id`);
      }
      const entry: CommandEntry = COMMANDS[id as CommandId];
      for (const part of ["params", "reply"] as const) {
        for (const key of Object.keys(override[part] ?? {})) {
          if (!Object.hasOwn(entry[part], key)) {
            throw new DialectError(`${source}: ${at}.${part}.${key}: unknown field key`);
          }
        }
      }
    }
  });
  return createDialect(profiles);
}

/** Reads and validates a dialect file. */
export async function loadDialectFile(file: string): Promise<Dialect> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    throw new DialectError(`${file}: cannot read: ${(err as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new DialectError(`${file}: not JSON: ${(err as Error).message}`);
  }
  return parseDialect(doc, file);
}

function applyProfiles(indices: readonly number[], profiles: readonly DialectProfile[]) {
  const commands = { ...COMMANDS } as Record<CommandId, CommandEntry>;
  for (const i of indices) {
    for (const [id, o] of Object.entries(profiles[i]!.commands)) {
      const base = commands[id as CommandId];
      commands[id as CommandId] = {
        ...base,
        command: o.command ?? base.command,
        method: o.method === undefined ? base.method : o.method,
        params: { ...base.params, ...o.params },
        reply: { ...base.reply, ...o.reply },
      };
    }
  }
  return buildView(commands);
}

function matches(p: DialectProfile, devType: string | undefined, firmware: string | undefined) {
  if (p.match.devType !== undefined && p.match.devType !== devType) return false;
  if (p.match.firmwarePrefix !== undefined && !(firmware ?? "").startsWith(p.match.firmwarePrefix))
    return false;
  return true;
}

/** A dialect from validated profiles (an empty list gives the catalogue unchanged). */
export function createDialect(profiles: readonly DialectProfile[] = []): Dialect {
  // Keyed by the matching profile indices, not by (devType, firmware): the number of distinct
  // views is bounded by the file, whatever strings devices send.
  const cache = new Map<string, CatalogueView>();
  let registerViews: CatalogueView[] | undefined;
  return {
    profiles,
    viewFor(devType, firmwareVersion) {
      if (profiles.length === 0) return DEFAULT_VIEW;
      const indices: number[] = [];
      for (let i = 0; i < profiles.length; i++) {
        if (matches(profiles[i]!, devType, firmwareVersion)) indices.push(i);
      }
      if (indices.length === 0) return DEFAULT_VIEW;
      const key = indices.join(",");
      let view = cache.get(key);
      if (!view) {
        view = applyProfiles(indices, profiles);
        cache.set(key, view);
      }
      return view;
    },
    registerViews() {
      registerViews ??= profiles.flatMap((p, i) =>
        p.commands.register ? [applyProfiles([i], profiles)] : [],
      );
      return registerViews;
    },
  };
}
