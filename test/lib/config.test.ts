import { App } from "aws-cdk-lib";
import { describe, expect, it } from "vitest";
import { authorizerConfig, readConfig } from "../../lib/config.ts";

const configOf = (context: Record<string, unknown>) => readConfig(new App({ context }).node);

describe("deployment context", () => {
  it("has a default for everything", () => {
    expect(configOf({})).toEqual({
      prefix: "ehome",
      authorizer: "iam",
      deviceCidr: "0.0.0.0/0",
      viewerCidr: "0.0.0.0/0",
      agentCount: 1,
      agentCpuArch: "x86_64",
      autoProvision: false,
      apiRateLimit: 100,
      apiBurstLimit: 200,
    });
  });

  it("reads -c values, which arrive as strings", () => {
    const config = configOf({
      agentCount: "3",
      apiRateLimit: "25",
      apiBurstLimit: "50",
      autoProvision: "true",
      deviceCidr: "203.0.113.0/24",
      authorizer: "jwt",
      jwtIssuer: "https://issuer.example.com/",
      jwtAudience: " a , b ,",
    });
    expect(config.agentCount).toBe(3);
    expect([config.apiRateLimit, config.apiBurstLimit]).toEqual([25, 50]);
    expect(config.autoProvision).toBe(true);
    expect(authorizerConfig(config)).toEqual({
      kind: "jwt",
      issuer: "https://issuer.example.com/",
      audience: ["a", "b"],
    });
  });

  it("rejects what would deploy something unintended", () => {
    expect(() => configOf({ deviceCidr: "everyone" })).toThrow(/deviceCidr/);
    expect(() => configOf({ authorizer: "none" })).toThrow(/authorizer/);
    expect(() => configOf({ authorizer: "jwt", jwtAudience: "a" })).toThrow(/jwtIssuer/);
    expect(() =>
      configOf({ authorizer: "jwt", jwtIssuer: "http://plain.example.com", jwtAudience: "a" }),
    ).toThrow(/jwtIssuer/);
    expect(() => configOf({ agentCount: "-1" })).toThrow(/agentCount/);
    expect(() => configOf({ prefix: "has space" })).toThrow(/prefix/);
    expect(() => configOf({ autoProvision: "yes" })).toThrow(/autoProvision/);
    expect(() => configOf({ apiRateLimit: "0" })).toThrow(/apiRateLimit/);
    expect(() => configOf({ apiBurstLimit: "1.5" })).toThrow(/apiBurstLimit/);
  });
});
