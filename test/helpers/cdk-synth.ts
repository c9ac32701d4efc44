import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { App, type Stack, Validations } from "aws-cdk-lib";
import { Template } from "aws-cdk-lib/assertions";
import { addEhomeStacks, addPolicyValidation, type EhomeStacks } from "../../lib/app.ts";
import { REPO_ROOT } from "../../lib/constructs/paths.ts";

/** The context committed in cdk.json, so tests synthesize what `cdk synth` synthesizes. */
export function cdkJsonContext(): Record<string, unknown> {
  const cdkJson = JSON.parse(readFileSync(join(REPO_ROOT, "cdk.json"), "utf8")) as {
    context: Record<string, unknown>;
  };
  return cdkJson.context;
}

export type StackKey = Exclude<keyof EhomeStacks, "config">;
export const STACK_KEYS: readonly StackKey[] = [
  "data",
  "messaging",
  "functions",
  "api",
  "edge",
  "dashboard",
];

/** A CloudFormation template as plain JSON. */
export interface CfnTemplate {
  Resources: Record<string, { Type: string; Properties?: Record<string, unknown> } & object>;
  Outputs?: Record<string, { Value: unknown; Export?: { Name: string } }>;
}

export interface SynthResult {
  readonly app: App;
  readonly stacks: EhomeStacks;
  readonly outdir: string;
  readonly templates: Record<StackKey, Template>;
  readonly json: Record<StackKey, CfnTemplate>;
  /** Removes the cloud assembly directory. */
  cleanup(): void;
}

/**
 * Builds and synthesizes the whole app once, into a temporary directory. Lambda bundling is
 * skipped unless `bundle` is set (it is most of the synth time and does not change a template;
 * test/bin/app.test.ts bundles for real). The agent image is only staged: no Docker build
 * happens at synth.
 */
export function synthEhomeApp(
  options: { context?: Record<string, unknown>; validate?: boolean; bundle?: boolean } = {},
): SynthResult {
  const outdir = mkdtempSync(join(tmpdir(), "ehome-cdk-"));
  const context = {
    ...cdkJsonContext(),
    // An empty list of stacks to bundle: CDK's own switch (used by `cdk deploy --exclusively`).
    ...(options.bundle ? {} : { "aws:cdk:bundling-stacks": [] }),
    ...options.context,
  };
  const app = new App({ outdir, context });
  let stacks: EhomeStacks;
  try {
    stacks = addEhomeStacks(app);
    if (options.validate) addPolicyValidation(app);
    app.synth();
  } catch (error) {
    rmSync(outdir, { recursive: true, force: true });
    throw error;
  }
  const byKey = <T>(f: (stack: Stack) => T) =>
    Object.fromEntries(STACK_KEYS.map((key) => [key, f(stacks[key])])) as Record<StackKey, T>;
  const templates = byKey((stack) => Template.fromStack(stack));
  return {
    app,
    stacks,
    outdir,
    templates,
    json: byKey((stack) => templates[stackKeyOf(stacks, stack)].toJSON() as CfnTemplate),
    cleanup: () => rmSync(outdir, { recursive: true, force: true }),
  };
}

function stackKeyOf(stacks: EhomeStacks, stack: Stack): StackKey {
  const key = STACK_KEYS.find((k) => stacks[k] === stack);
  if (!key) throw new Error(`unknown stack ${stack.stackName}`);
  return key;
}

/**
 * Renders a CloudFormation value as text, following `Fn::ImportValue` to the exporting stack's
 * output, so a statement's resource reads like `ehome-data/Devices1A2B3C4D.Arn/index/byStatus`.
 */
export function describeValue(
  value: unknown,
  stackName: string,
  all: Readonly<Record<string, CfnTemplate>>,
): string {
  if (typeof value === "string") return value;
  if (Array.isArray(value)) return value.map((v) => describeValue(v, stackName, all)).join(",");
  if (value && typeof value === "object") {
    const v = value as Record<string, unknown>;
    if ("Ref" in v) return `<${String(v.Ref)}>`;
    if ("Fn::GetAtt" in v) {
      const [id, attr] = v["Fn::GetAtt"] as [string, string];
      return `${stackName}/${id}.${attr}`;
    }
    if ("Fn::Join" in v) {
      const [sep, parts] = v["Fn::Join"] as [string, unknown[]];
      return parts.map((p) => describeValue(p, stackName, all)).join(sep);
    }
    if ("Fn::ImportValue" in v) {
      const name = v["Fn::ImportValue"] as string;
      for (const [exporter, template] of Object.entries(all)) {
        for (const output of Object.values(template.Outputs ?? {})) {
          if (output.Export?.Name === name) return describeValue(output.Value, exporter, all);
        }
      }
      throw new Error(`no stack exports ${name}`);
    }
  }
  return JSON.stringify(value);
}

/** Logical id of the single resource of `type` whose id starts with `prefix` + the CDK hash. */
export function logicalId(template: CfnTemplate, type: string, prefix: string): string {
  const re = new RegExp(`^${prefix}[0-9A-F]{8}$`);
  const ids = Object.entries(template.Resources)
    .filter(([id, r]) => r.Type === type && re.test(id))
    .map(([id]) => id);
  if (ids.length !== 1) throw new Error(`expected one ${type} ${prefix}*, found ${ids.join(", ")}`);
  return ids[0]!;
}

export interface Statement {
  Effect: string;
  Action: string | string[];
  Resource: unknown;
  Condition?: unknown;
}

export const asArray = <T>(x: T | T[]): T[] => (Array.isArray(x) ? x : [x]);

/** Every Allow statement of the identity policies attached to the role `<rolePrefix><hash>`. */
export function roleStatements(template: CfnTemplate, rolePrefix: string): Statement[] {
  const roleId = logicalId(template, "AWS::IAM::Role", rolePrefix);
  const out: Statement[] = [];
  for (const r of Object.values(template.Resources)) {
    if (r.Type !== "AWS::IAM::Policy") continue;
    const props = r.Properties as {
      Roles: { Ref: string }[];
      PolicyDocument: { Statement: Statement[] };
    };
    if (!props.Roles.some((ref) => ref.Ref === roleId)) continue;
    out.push(...props.PolicyDocument.Statement.filter((s) => s.Effect === "Allow"));
  }
  return out;
}

/** Every `Validations.of(x).acknowledge(...)` in the tree: rule id (namespace stripped) → reasons. */
export function acknowledgements(app: App): Map<string, { path: string; reason: string }[]> {
  const out = new Map<string, { path: string; reason: string }[]>();
  for (const construct of app.node.findAll()) {
    for (const entry of construct.node.metadata) {
      if (entry.type !== Validations.ACKNOWLEDGED_RULES_METADATA_KEY) continue;
      for (const [qualified, reason] of Object.entries(entry.data as Record<string, string>)) {
        const id = qualified.replace(/^annotation::/i, "");
        const list = out.get(id) ?? [];
        list.push({ path: construct.node.path, reason });
        out.set(id, list);
      }
    }
  }
  return out;
}
