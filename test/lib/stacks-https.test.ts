import { Match } from "aws-cdk-lib/assertions";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ENV } from "../../lib/contracts/env.ts";
import { PORTS } from "../../lib/contracts/ports.ts";
import { deviceHttpsFromContext } from "../../lib/stacks/edge-stack.ts";
import { type CfnTemplate, type SynthResult, synthEhomeApp } from "../helpers/cdk-synth.ts";

/**
 * HTTPS for device downloads on AWS (issue 8 item 7): with `-c deviceHttpsCertificateArn` and
 * `-c deviceHttpsHost`, a TLS listener on the NLB (ACM certificate) forwards to the agent's device
 * HTTP port, and the agent is told to hand out https URLs for that name. One validated synth
 * (cdk-nag and cfn-guard must stay clean with the TLS listener).
 */

const SYNTH_TIMEOUT_MS = 180_000;
const ARN = "arn:aws:acm:eu-west-1:123456789012:certificate/0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b";

let s: SynthResult;
beforeAll(() => {
  s = synthEhomeApp({
    validate: true,
    context: { deviceHttpsCertificateArn: ARN, deviceHttpsHost: "devices.example.com" },
  });
}, SYNTH_TIMEOUT_MS);
afterAll(() => s?.cleanup());

const resourcesOf = (t: CfnTemplate, type: string) =>
  Object.entries(t.Resources).filter(([, r]) => r.Type === type);

describe("edge stack with -c deviceHttpsCertificateArn -c deviceHttpsHost", () => {
  it("adds a TLS listener on 8443 with the ACM certificate and a modern policy, besides the others", () => {
    const listeners = resourcesOf(s.json.edge, "AWS::ElasticLoadBalancingV2::Listener").map(
      ([, l]) => `${l.Properties!.Protocol} ${l.Properties!.Port}`,
    );
    expect(listeners.sort()).toEqual(
      [
        `TCP ${PORTS.deviceHttpTcp}`,
        `TCP ${PORTS.viewerHttpTcp}`,
        `TLS ${PORTS.deviceHttpsTcp}`,
        `UDP ${PORTS.alarmUdp}`,
        `UDP ${PORTS.signallingUdp}`,
      ].sort(),
    );
    s.templates.edge.hasResourceProperties("AWS::ElasticLoadBalancingV2::Listener", {
      Protocol: "TLS",
      Port: PORTS.deviceHttpsTcp,
      Certificates: [{ CertificateArn: ARN }],
      SslPolicy: Match.stringLikeRegexp("TLS13"),
    });
  });

  it("forwards plain TCP to the agent's device HTTP port, client IP preserved, health-checked", () => {
    s.templates.edge.hasResourceProperties("AWS::ElasticLoadBalancingV2::TargetGroup", {
      Port: PORTS.deviceHttpTcp,
      Protocol: "TCP",
      TargetType: "ip",
      TargetGroupAttributes: Match.arrayWith([
        { Key: "preserve_client_ip.enabled", Value: "true" },
      ]),
      HealthCheckProtocol: "HTTP",
      HealthCheckPath: "/healthz",
    });
    const groups = resourcesOf(s.json.edge, "AWS::ElasticLoadBalancingV2::TargetGroup").filter(
      ([, g]) => g.Properties!.Port === PORTS.deviceHttpTcp,
    );
    expect(groups).toHaveLength(2);
    const service = resourcesOf(s.json.edge, "AWS::ECS::Service")[0]![1];
    const balancers = service.Properties!.LoadBalancers as { ContainerPort: number }[];
    expect(balancers.filter((b) => b.ContainerPort === PORTS.deviceHttpTcp)).toHaveLength(2);
  });

  it("tells the agent to hand out https URLs for the certificate's name (no listener of its own)", () => {
    const [, task] = resourcesOf(s.json.edge, "AWS::ECS::TaskDefinition")[0]!;
    const [agent] = task.Properties!.ContainerDefinitions as {
      Environment: { Name: string; Value: unknown }[];
    }[];
    const env = Object.fromEntries(agent!.Environment.map((e) => [e.Name, e.Value]));
    expect(env[ENV.EHOME_HTTPS_PUBLIC_HOST]).toBe("devices.example.com");
    expect(env[ENV.EHOME_HTTPS_PUBLIC_PORT]).toBe(String(PORTS.deviceHttpsTcp));
    expect(env.EHOME_HTTPS_CERT_FILE).toBeUndefined();
  });
});

describe("deviceHttpsFromContext", () => {
  it("is off without either key, and needs both", () => {
    expect(deviceHttpsFromContext(undefined, undefined)).toBeUndefined();
    expect(deviceHttpsFromContext(ARN, "devices.example.com")).toEqual({
      certificateArn: ARN,
      host: "devices.example.com",
    });
    expect(() => deviceHttpsFromContext(ARN, undefined)).toThrow(/deviceHttpsHost/);
    expect(() => deviceHttpsFromContext(undefined, "devices.example.com")).toThrow(
      /deviceHttpsCertificateArn/,
    );
  });

  it("refuses what is not an ACM ARN or a DNS name (an IP cannot carry an ACM certificate)", () => {
    expect(() =>
      deviceHttpsFromContext("arn:aws:iam::123456789012:role/x", "a.example.com"),
    ).toThrow(/ACM certificate ARN/);
    for (const host of ["203.0.113.7", "https://a.example.com", "localhost", "a b.example.com"]) {
      expect(() => deviceHttpsFromContext(ARN, host), host).toThrow(/deviceHttpsHost/);
    }
  });
});
