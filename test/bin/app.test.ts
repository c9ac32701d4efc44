import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { REPO_ROOT } from "../../lib/constructs/paths.ts";

const outdir = mkdtempSync(join(tmpdir(), "ehome-cdk-cli-"));
afterAll(() => rmSync(outdir, { recursive: true, force: true }));

describe("cdk synth (bin/app.ts through the CDK CLI)", () => {
  it("synthesizes every stack offline, without credentials, and validates clean", () => {
    const contextBefore = readFileSync(join(REPO_ROOT, "cdk.context.json"), "utf8");
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      // Any network attempt (lookups, notices, telemetry) would hit a closed port and fail.
      HTTP_PROXY: "http://127.0.0.1:9",
      HTTPS_PROXY: "http://127.0.0.1:9",
      NO_PROXY: "",
      AWS_CONFIG_FILE: join(outdir, "no-config"),
      AWS_SHARED_CREDENTIALS_FILE: join(outdir, "no-credentials"),
      AWS_EC2_METADATA_DISABLED: "true",
      CDK_DISABLE_CLI_TELEMETRY: "true",
    };
    for (const key of [
      "AWS_ACCESS_KEY_ID",
      "AWS_SECRET_ACCESS_KEY",
      "AWS_SESSION_TOKEN",
      "AWS_PROFILE",
    ]) {
      delete env[key];
    }
    const result = spawnSync(
      "npx",
      [
        "--no-install",
        "cdk",
        "synth",
        "--quiet",
        "--no-notices",
        "--output",
        join(outdir, "cdk.out"),
      ],
      { cwd: REPO_ROOT, env, encoding: "utf8", timeout: 230_000 },
    );
    expect(result.status, `${result.stdout}\n${result.stderr}`).toBe(0);

    for (const stack of ["data", "messaging", "functions", "api", "edge", "dashboard"]) {
      expect(existsSync(join(outdir, "cdk.out", `ehome-${stack}.template.json`)), stack).toBe(true);
    }
    const report = JSON.parse(
      readFileSync(join(outdir, "cdk.out", "validation-report.json"), "utf8"),
    ) as { pluginReports: { pluginName: string; violations: unknown[] }[] };
    expect(report.pluginReports.map((p) => p.pluginName)).toContain("cdk-validator-cfnguard");
    for (const plugin of report.pluginReports)
      expect(plugin.violations, plugin.pluginName).toEqual([]);
    // Each function was bundled by the local esbuild (no Docker) into an ES module.
    for (const stack of ["functions", "api"]) {
      const manifest = JSON.parse(
        readFileSync(join(outdir, "cdk.out", `ehome-${stack}.assets.json`), "utf8"),
      ) as { files: Record<string, { source: { path: string; packaging: string } }> };
      const zips = Object.values(manifest.files).filter((f) => f.source.packaging === "zip");
      expect(zips.length, stack).toBeGreaterThan(0);
      for (const zip of zips) {
        expect(existsSync(join(outdir, "cdk.out", zip.source.path, "index.mjs")), stack).toBe(true);
      }
    }
    // Nothing was looked up, so nothing was cached.
    expect(readFileSync(join(REPO_ROOT, "cdk.context.json"), "utf8")).toBe(contextBefore);
  }, 240_000);
});
