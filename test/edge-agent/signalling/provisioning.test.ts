import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  createMemoryProvisioningSource,
  loadProvisioningFile,
  parseProvisioningFile,
} from "../../../edge-agent/signalling/provisioning.ts";

describe("provisioning allowlist (issue 2 item 5)", () => {
  it("looks devices up, defaulting allowed to true, and accepts pushed updates", () => {
    const source = createMemoryProvisioningSource([
      { deviceId: "cam-1", password: "pw" },
      { deviceId: "cam-2", allowed: false },
    ]);
    expect(source.lookup("cam-1")).toEqual({ allowed: true, password: "pw" });
    expect(source.lookup("cam-2")).toEqual({ allowed: false });
    expect(source.lookup("cam-3")).toBeUndefined();
    source.update("cam-3", { allowed: true });
    source.update("cam-1", undefined);
    expect(source.lookup("cam-3")).toEqual({ allowed: true });
    expect(source.lookup("cam-1")).toBeUndefined();
    expect(source.size).toBe(2);
  });

  it("refuses a malformed allowlist, naming the file and the entry", () => {
    expect(() => parseProvisioningFile([{ deviceId: "" }], "allow.json")).toThrow(
      /^allow\.json: \[0\]\.deviceId: /,
    );
    expect(() => parseProvisioningFile([{ deviceId: "a", pasword: "x" }], "allow.json")).toThrow(
      /allow\.json: \[0\]/,
    );
    expect(() => parseProvisioningFile({ deviceId: "a" }, "allow.json")).toThrow(
      /allow\.json: \(root\)/,
    );
  });

  it("loads EHOME_PROVISIONING_FILE", async () => {
    const dir = await mkdtemp(join(tmpdir(), "prov-"));
    try {
      const file = join(dir, "allow.json");
      await writeFile(file, JSON.stringify([{ deviceId: "cam-9", password: "x" }]));
      expect((await loadProvisioningFile(file)).lookup("cam-9")).toEqual({
        allowed: true,
        password: "x",
      });
      await writeFile(file, "[");
      await expect(loadProvisioningFile(file)).rejects.toMatchObject({
        code: "PROVISIONING_FILE_INVALID",
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
