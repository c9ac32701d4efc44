import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { createApp } from "../../../functions/api/app.ts";
import { silentLogger } from "../support.ts";

/**
 * docs/api.md's route table lists exactly the routes the app serves (with every optional part
 * configured: upgrades and media), so a new route cannot ship undocumented.
 */
const unused = () => Promise.reject(new Error("not used"));

function fullApp() {
  return createApp({
    devices: { get: unused, list: unused, provision: unused, remove: unused, setTimeZone: unused },
    presence: { list: unused },
    commands: { create: unused, get: unused, transition: unused },
    agents: { get: unused, list: unused },
    agentQueue: { send: unused },
    alarms: { get: unused, list: unused },
    captures: { create: unused, get: unused, update: unused },
    mediaUrls: { sign: unused },
    clock: { now: () => Date.now(), sleep: async () => {} },
    logger: silentLogger,
    // Route registration only; no request reaches these services here.
    upgrades: { firmware: {} as never, campaigns: {} as never },
    media: {
      streams: { create: unused, get: unused, update: unused },
      tokenKey: Buffer.alloc(32),
      bucket: "media",
    },
  });
}

function documentedRoutes(): string[] {
  const text = readFileSync(new URL("../../../docs/api.md", import.meta.url), "utf8");
  const table = text.split("\n").filter((line) => line.startsWith("| [`"));
  if (table.length === 0) throw new Error("docs/api.md has no route table");
  return table.flatMap((line) =>
    [...(line.split("](")[0] ?? "").matchAll(/`([A-Z]+ \/[^`]*)`/g)].map((m) => m[1]!),
  );
}

describe("docs/api.md route table", () => {
  it("lists every route the app serves, and no other", () => {
    const served = fullApp()
      .routes.filter((r) => r.method !== "ALL")
      .map((r) => `${r.method} ${r.path.replace(/:(\w+)/g, "{$1}")}`);
    expect(served).toEqual(
      expect.arrayContaining(["POST /devices/{deviceId}/streams", "GET /downloads/{streamId}"]),
    );
    expect([...new Set(documentedRoutes())].sort()).toEqual([...new Set(served)].sort());
  });
});
