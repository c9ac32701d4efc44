import type { Node } from "constructs";
import { z } from "zod";

/**
 * Deployment switches, read from CDK context (`cdk deploy -c key=value`, or `context` in
 * cdk.json). Everything has a default, so a bare `cdk deploy --all` works.
 */

const Cidr = z
  .string()
  .regex(/^(\d{1,3}\.){3}\d{1,3}\/\d{1,2}$/, "an IPv4 CIDR such as 203.0.113.0/24");

const csv = z
  .string()
  .transform((s) =>
    s
      .split(",")
      .map((x) => x.trim())
      .filter((x) => x.length > 0),
  )
  .pipe(z.array(z.string()).min(1));

const Context = z
  .object({
    /** Prefix of stack names and of the per-agent command queue names. */
    prefix: z
      .string()
      .regex(/^[A-Za-z][A-Za-z0-9-]{0,29}$/)
      .default("ehome"),
    /** `iam` (SigV4, the default) or `jwt` (then `jwtIssuer` and `jwtAudience` are required). */
    authorizer: z.enum(["iam", "jwt"]).default("iam"),
    jwtIssuer: z.url({ protocol: /^https$/ }).optional(),
    /** Comma-separated audiences. */
    jwtAudience: csv.optional(),
    /** Who may reach the device ports (signalling, alarms, device HTTP, media). */
    deviceCidr: Cidr.default("0.0.0.0/0"),
    /** Who may reach the viewer HTTP port (stream URLs carry signed, expiring tokens). */
    viewerCidr: Cidr.default("0.0.0.0/0"),
    /** Number of agent tasks. */
    agentCount: z.coerce.number().int().min(0).max(50).default(1),
    /** CPU architecture of the agent task (the image is built for it). */
    agentCpuArch: z.enum(["x86_64", "arm64"]).default("x86_64"),
    /**
     * Let devices that are not provisioned register (the agent's EHOME_AUTO_PROVISION). Off on
     * AWS unless asked for: the device ports face the internet.
     */
    autoProvision: z
      .union([z.boolean(), z.enum(["true", "false"]).transform((v) => v === "true")])
      .default(false),
    /**
     * API Gateway throttling of the HTTP API's `$default` stage, applied to every route: steady
     * requests per second and burst (token bucket). Requests beyond it get `429` from API
     * Gateway before any function runs. The account-wide regional limit still applies above it.
     */
    apiRateLimit: z.coerce.number().positive().max(10_000).default(100),
    apiBurstLimit: z.coerce.number().int().min(1).max(5_000).default(200),
    /** Optional e-mail subscribed to the alarm topic. */
    alarmEmail: z.email().optional(),
  })
  .superRefine((c, ctx) => {
    if (c.authorizer === "jwt" && (c.jwtIssuer === undefined || c.jwtAudience === undefined)) {
      ctx.addIssue({
        code: "custom",
        message: "authorizer=jwt needs -c jwtIssuer=https://... and -c jwtAudience=aud1[,aud2]",
        path: ["authorizer"],
      });
    }
  });

export type AppConfig = z.infer<typeof Context>;

export type AuthorizerConfig =
  | { kind: "iam" }
  | { kind: "jwt"; issuer: string; audience: readonly string[] };

const KEYS = Object.keys(Context.shape) as (keyof AppConfig)[];

export function readConfig(node: Node): AppConfig {
  const raw: Record<string, unknown> = {};
  for (const key of KEYS) {
    const value = node.tryGetContext(key);
    if (value !== undefined && value !== null && value !== "") raw[key] = value;
  }
  const parsed = Context.safeParse(raw);
  if (!parsed.success) {
    throw new Error(`invalid CDK context: ${z.prettifyError(parsed.error)}`);
  }
  return parsed.data;
}

export function authorizerConfig(config: AppConfig): AuthorizerConfig {
  if (config.authorizer === "jwt") {
    return { kind: "jwt", issuer: config.jwtIssuer!, audience: config.jwtAudience! };
  }
  return { kind: "iam" };
}
