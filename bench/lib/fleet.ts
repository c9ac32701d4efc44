import { fileURLToPath } from "node:url";
import type { ServerReady } from "../signalling/protocol.ts";
import { slices } from "../signalling/target.ts";
import { type ChildHandle, startChild } from "./child.ts";

/**
 * A server under test (the agent, or the raw UDP echo baseline) and the generator processes of
 * bench/signalling playing `devices` devices against it, one connected socket and one loopback
 * source address each (bench/signalling/datagrams.ts `sourceAddressOf`). Shared by the scale
 * benchmarks (register storm, soak); `close()` stops every child.
 */

export type ServerKind = "agent" | "echo";

export interface Fleet {
  readonly server: ChildHandle<ServerReady>;
  readonly generators: readonly ChildHandle<unknown>[];
  /** Each generator's share: local device indices [0, count). */
  readonly slices: ReadonlyArray<{ first: number; count: number }>;
  close(): Promise<void>;
}

const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));

export async function startFleet(o: {
  kind: ServerKind;
  devices: number;
  generators: number;
  /** EHOME_* variables of the agent child. */
  agentEnv: Record<string, string>;
  idPrefix?: string;
}): Promise<Fleet> {
  const server = await startChild<ServerReady>(
    here(o.kind === "agent" ? "./counting-agent-child.ts" : "../signalling/echo-child.ts"),
    { name: o.kind, nodeFlags: ["--expose-gc"], args: [JSON.stringify(o.agentEnv)] },
  );
  try {
    const g = await startGenerators({
      target: { host: server.ready.host, port: server.ready.port },
      devices: o.devices,
      generators: o.generators,
      ...(o.idPrefix === undefined ? {} : { idPrefix: o.idPrefix }),
    });
    return {
      server,
      generators: g.generators,
      slices: g.slices,
      close: async () => {
        await g.close();
        await server.close();
      },
    };
  } catch (err) {
    await server.close();
    throw err;
  }
}

/** Generator processes playing `devices` devices against any target (e.g. an in-process agent). */
export async function startGenerators(o: {
  target: { host: string; port: number };
  devices: number;
  generators: number;
  idPrefix?: string;
}): Promise<Omit<Fleet, "server">> {
  const generators: ChildHandle<unknown>[] = [];
  const close = async () => {
    await Promise.all(generators.map((g) => g.close()));
  };
  try {
    const parts = slices(o.devices, o.generators);
    const started = await Promise.allSettled(
      parts.map((_, k) =>
        startChild<unknown>(here("../signalling/generator.ts"), { name: `generator ${k}` }),
      ),
    );
    for (const r of started) if (r.status === "fulfilled") generators.push(r.value);
    const failed = started.find((r) => r.status === "rejected");
    if (failed) throw (failed as PromiseRejectedResult).reason;
    await Promise.all(
      parts.map((slice, k) =>
        generators[k]!.request(
          {
            type: "init",
            target: o.target,
            idPrefix: o.idPrefix ?? "BENCH",
            firstIndex: slice.first,
            count: slice.count,
          },
          600_000,
        ),
      ),
    );
    return { generators, slices: parts, close };
  } catch (err) {
    await close();
    throw err;
  }
}
