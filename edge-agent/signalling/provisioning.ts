import { readFile } from "node:fs/promises";
import { z } from "zod";
import type { ProvisioningDecision, UpdatableProvisioningSource } from "../ports.ts";

/**
 * The allowlist behind `ProvisioningSource` (issue 2 item 5): an in-memory map, loaded from the
 * optional JSON file `EHOME_PROVISIONING_FILE` and updatable at run time (API-driven changes and a
 * DynamoDB-backed source plug in through the same port later).
 *
 * File format: `[{"deviceId": "cam-1", "password": "secret"}, {"deviceId": "cam-2", "allowed": false}]`
 * (`allowed` defaults to true; `password` is checked only when the device sends one).
 */

const Entry = z
  .object({
    deviceId: z.string().min(1).max(256),
    password: z.string().max(256).optional(),
    allowed: z.boolean().default(true),
  })
  .strict();
const ProvisioningFile = z.array(Entry).max(1_000_000);

export type ProvisioningEntry = z.input<typeof Entry>;

export class ProvisioningFileError extends Error {
  readonly code = "PROVISIONING_FILE_INVALID";
  constructor(message: string) {
    super(message);
    this.name = "ProvisioningFileError";
  }
}

export interface MemoryProvisioningSource extends UpdatableProvisioningSource {
  readonly size: number;
}

export function createMemoryProvisioningSource(
  entries: readonly ProvisioningEntry[] = [],
): MemoryProvisioningSource {
  const table = new Map<string, ProvisioningDecision>();
  for (const e of ProvisioningFile.parse(entries)) {
    table.set(
      e.deviceId,
      e.password === undefined
        ? { allowed: e.allowed }
        : { allowed: e.allowed, password: e.password },
    );
  }
  return {
    lookup: (deviceId) => table.get(deviceId),
    update(deviceId, decision) {
      if (decision === undefined) table.delete(deviceId);
      else table.set(deviceId, { ...decision });
    },
    get size() {
      return table.size;
    },
  };
}

/** Parses an allowlist document; errors name the file and the entry path. */
export function parseProvisioningFile(doc: unknown, source: string): MemoryProvisioningSource {
  const parsed = ProvisioningFile.safeParse(doc);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const at = issue.path.map((p) => (typeof p === "number" ? `[${p}]` : `.${String(p)}`)).join("");
    throw new ProvisioningFileError(`${source}: ${at || "(root)"}: ${issue.message}`);
  }
  return createMemoryProvisioningSource(parsed.data);
}

export async function loadProvisioningFile(file: string): Promise<MemoryProvisioningSource> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    throw new ProvisioningFileError(`${file}: cannot read: ${(err as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new ProvisioningFileError(`${file}: not JSON: ${(err as Error).message}`);
  }
  return parseProvisioningFile(doc, file);
}
