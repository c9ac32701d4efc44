import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { App, Stack } from "aws-cdk-lib";
import { Bucket } from "aws-cdk-lib/aws-s3";
import { Queue } from "aws-cdk-lib/aws-sqs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { addPolicyValidation } from "../../lib/app.ts";
import { REPO_ROOT } from "../../lib/constructs/paths.ts";
import { acknowledgements, type SynthResult, synthEhomeApp } from "../helpers/cdk-synth.ts";

// A synth takes a few seconds of CPU; the margin is for a machine busy with other suites.
const SYNTH_TIMEOUT_MS = 180_000;

interface ValidationReport {
  pluginReports: {
    pluginName: string;
    conclusion: string;
    violations: unknown[];
    suppressedViolations: { ruleName: string }[];
  }[];
}

describe("cdk-nag (AwsSolutions) and cfn-guard on synth", () => {
  let s: SynthResult;
  let report: ValidationReport;
  beforeAll(() => {
    // Throws, with the report, on any unacknowledged finding.
    s = synthEhomeApp({ validate: true });
    report = JSON.parse(readFileSync(join(s.outdir, "validation-report.json"), "utf8"));
  }, SYNTH_TIMEOUT_MS);
  afterAll(() => s?.cleanup());

  it("leave no unacknowledged finding, errors or warnings", () => {
    expect(report.pluginReports.length).toBeGreaterThan(0);
    for (const plugin of report.pluginReports) {
      expect(plugin.violations, plugin.pluginName).toEqual([]);
      expect(plugin.conclusion, plugin.pluginName).toBe("success");
    }
  });

  it("reports the acknowledged guard findings as suppressed, not hidden", () => {
    const guard = report.pluginReports.find((p) => p.pluginName === "cdk-validator-cfnguard");
    expect(guard?.suppressedViolations.map((v) => v.ruleName)).toContain(
      "ecs_service_assign_public_ip_disabled_check",
    );
  });

  it("give every acknowledgement a reason, and list each in docs/infrastructure.md", () => {
    const acks = acknowledgements(s.app);
    expect(acks.size).toBeGreaterThan(0);
    const doc = readFileSync(join(REPO_ROOT, "docs", "infrastructure.md"), "utf8");
    for (const [id, uses] of acks) {
      // aws-cdk-lib acknowledges some of its own built-in template checks; those are not ours.
      if (id.startsWith("CloudFormation-Validate::")) continue;
      for (const use of uses) expect(use.reason.length, `${id} at ${use.path}`).toBeGreaterThan(40);
      const ruleName = id.replace(/^cdk-validator-cfnguard::/, "");
      expect(doc, `docs/infrastructure.md does not mention ${ruleName}`).toContain(ruleName);
    }
  });
});

describe("the validation gate", () => {
  it("fails the synth on findings from both rule packs", { timeout: SYNTH_TIMEOUT_MS }, () => {
    const outdir = mkdtempSync(join(tmpdir(), "ehome-cdk-bad-"));
    try {
      const app = new App({ outdir });
      const stack = new Stack(app, "Careless");
      new Bucket(stack, "Plain");
      new Queue(stack, "NoDeadLetterQueue");
      addPolicyValidation(app);
      let message = "";
      try {
        app.synth();
      } catch (error) {
        message = (error as Error).message;
      }
      expect(message).toMatch(/AwsSolutions-S10/); // bucket allows plain HTTP
      expect(message).toMatch(/AwsSolutions-SQS3/); // queue without DLQ
      expect(message).toMatch(/CT\.S3\.PR\.1\b/); // guard: no public access block settings
      expect(message).toMatch(/CT\.SQS\.PR\.1\b/); // guard: no DLQ
    } finally {
      rmSync(outdir, { recursive: true, force: true });
    }
  });
});
