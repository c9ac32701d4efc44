import { afterEach, describe, expect, it } from "vitest";
import {
  discoverEcsPublicAddress,
  type EcsPublicAddressConfig,
  ecsPublicAddressConfigFromEnv,
  PublicAddressError,
  publicIpOf,
  resolvePublicHost,
  taskNetwork,
} from "../../../edge-agent/cloud/public-address.ts";
import { loadConfig } from "../../../edge-agent/config.ts";
import { createLogger, silentLogger } from "../../../edge-agent/log.ts";
import { type FakeEcs, filtersOf, startFakeEcs } from "./fake-ecs.ts";

/**
 * The task's public IPv4 from the ECS task metadata endpoint v4 and the EC2 Query API
 * (`DescribeNetworkInterfaces`), both played by loopback servers (fake-ecs.ts) and reached by the
 * real fetch and the real EC2 client.
 */

const CREDENTIALS = { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "secret" };

let ecs: FakeEcs | undefined;
afterEach(async () => {
  await ecs?.close();
  ecs = undefined;
});

function configOf(
  fake: FakeEcs,
  over: Partial<EcsPublicAddressConfig> = {},
): EcsPublicAddressConfig {
  return {
    metadataUri: fake.metadataUri,
    ec2Endpoint: fake.ec2Endpoint,
    credentials: CREDENTIALS,
    deadlineMs: 5000,
    attemptTimeoutMs: 1000,
    retry: { baseMs: 20, maxMs: 80 },
    ...over,
  };
}

async function failure(p: Promise<unknown>): Promise<PublicAddressError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(PublicAddressError);
  return err as PublicAddressError;
}

describe("public address discovery (ECS task metadata v4 + ec2:DescribeNetworkInterfaces)", () => {
  it("finds the task interface's public IPv4, filtering EC2 by the task's private IP and MAC", async () => {
    ecs = await startFakeEcs({
      enis: [
        // The same private address in another VPC: only the MAC filter tells them apart.
        {
          id: "eni-other-vpc",
          privateIp: "10.0.0.12",
          mac: "0a:00:00:00:00:01",
          publicIp: "198.51.100.9",
        },
        {
          id: "eni-task",
          privateIp: "10.0.0.12",
          mac: "0e:98:9f:33:76:d3",
          publicIp: "203.0.113.77",
        },
      ],
    });
    const found = await discoverEcsPublicAddress(configOf(ecs));
    expect(found).toEqual({
      publicIp: "203.0.113.77",
      privateIp: "10.0.0.12",
      networkInterfaceId: "eni-task",
      attempts: 1,
    });
    expect(ecs.metadataRequests).toBe(1);
    expect(ecs.ec2Requests).toHaveLength(1);
    const { params, authorization } = ecs.ec2Requests[0]!;
    expect(params.get("Action")).toBe("DescribeNetworkInterfaces");
    expect(Object.fromEntries(filtersOf(params))).toEqual({
      "addresses.private-ip-address": ["10.0.0.12"],
      "mac-address": ["0e:98:9f:33:76:d3"],
    });
    // No region configured: the one in the task ARN signs the request.
    expect(authorization).toContain("/eu-west-1/ec2/aws4_request");
  });

  it("an interface without a public IPv4 (no assignPublicIp) fails NO_PUBLIC_IP after bounded retries", async () => {
    ecs = await startFakeEcs({
      enis: [{ id: "eni-private", privateIp: "10.0.0.12", mac: "0e:98:9f:33:76:d3" }],
    });
    const started = Date.now();
    const err = await failure(discoverEcsPublicAddress(configOf(ecs, { deadlineMs: 2500 })));
    const elapsed = Date.now() - started;
    expect(err.code).toBe("NO_PUBLIC_IP");
    expect(err.message).toContain("eni-private");
    expect(err.message).toContain("assignPublicIp");
    // Retried (the association may lag the interface), never past the budget.
    expect(err.attempts).toBeGreaterThan(1);
    expect(ecs.ec2Requests).toHaveLength(err.attempts!);
    // (Margins here and below are for a loaded machine, not precision.)
    expect(elapsed).toBeLessThan(2500 + 1000);
  });

  it("a metadata endpoint that refuses connections fails METADATA_UNREACHABLE within the budget", async () => {
    ecs = await startFakeEcs();
    const uri = ecs.metadataUri;
    await ecs.close();
    ecs = undefined;
    const started = Date.now();
    const err = await failure(
      discoverEcsPublicAddress({
        metadataUri: uri,
        credentials: CREDENTIALS,
        deadlineMs: 1000,
        attemptTimeoutMs: 200,
        retry: { baseMs: 20, maxMs: 80 },
      }),
    );
    expect(err.code).toBe("METADATA_UNREACHABLE");
    expect(err.attempts).toBeGreaterThan(1);
    expect(Date.now() - started).toBeLessThan(1000 + 1000);
  });

  it("a metadata endpoint that does not answer is abandoned after the attempt timeout", async () => {
    ecs = await startFakeEcs();
    ecs.metadataPlan.push(...Array.from({ length: 50 }, () => "hang" as const));
    const started = Date.now();
    const err = await failure(
      discoverEcsPublicAddress(configOf(ecs, { attemptTimeoutMs: 150, deadlineMs: 1000 })),
    );
    expect(err.code).toBe("METADATA_UNREACHABLE");
    expect(err.message).toContain("no answer within");
    expect(ecs.metadataRequests).toBeGreaterThanOrEqual(2);
    expect(Date.now() - started).toBeLessThan(1000 + 1000);
  });

  it("a 5xx from the metadata endpoint is retried; then the address is found", async () => {
    ecs = await startFakeEcs();
    ecs.metadataPlan.push({ status: 500, body: "agent not ready" });
    const found = await discoverEcsPublicAddress(configOf(ecs));
    expect(found.publicIp).toBe("203.0.113.77");
    expect(found.attempts).toBe(2);
  });

  it("metadata without a network, or not JSON, fails METADATA_INVALID at once", async () => {
    ecs = await startFakeEcs();
    ecs.metadataPlan.push({ status: 200, body: "<html>" });
    const notJson = await failure(discoverEcsPublicAddress(configOf(ecs)));
    expect(notJson).toMatchObject({ code: "METADATA_INVALID", attempts: 1 });
    ecs.metadataPlan.push({ status: 404, body: "404 page not found" });
    expect(await failure(discoverEcsPublicAddress(configOf(ecs)))).toMatchObject({
      code: "METADATA_INVALID",
      attempts: 1,
    });
    expect(() => taskNetwork({ Containers: [{ Networks: [{ NetworkMode: "awsvpc" }] }] })).toThrow(
      /no awsvpc network/,
    );
    expect(ecs.ec2Requests).toHaveLength(0);
  });

  it("without ECS_CONTAINER_METADATA_URI_V4 it fails METADATA_UNSET without a request", async () => {
    const err = await failure(
      discoverEcsPublicAddress({ metadataUri: undefined, deadlineMs: 1000 }),
    );
    expect(err.code).toBe("METADATA_UNSET");
    expect(err.retryable).toBe(false);
    expect(err.message).toContain("ECS_CONTAINER_METADATA_URI_V4");
  });

  it("a refused permission (UnauthorizedOperation) is not retried", async () => {
    ecs = await startFakeEcs();
    ecs.ec2Plan.push({
      ec2Error: {
        status: 403,
        code: "UnauthorizedOperation",
        message: "You are not authorized to perform this operation.",
      },
    });
    const err = await failure(discoverEcsPublicAddress(configOf(ecs)));
    expect(err.code).toBe("EC2_ERROR");
    expect(err.message).toContain("UnauthorizedOperation");
    expect(err.message).toContain("HTTP 403");
    expect(err.attempts).toBe(1);
    expect(ecs.ec2Requests).toHaveLength(1);
  });

  it("throttling (RequestLimitExceeded) is retried with backoff, then succeeds", async () => {
    ecs = await startFakeEcs();
    ecs.ec2Plan.push(
      {
        ec2Error: { status: 503, code: "RequestLimitExceeded", message: "Request limit exceeded." },
      },
      {
        ec2Error: { status: 503, code: "RequestLimitExceeded", message: "Request limit exceeded." },
      },
    );
    const found = await discoverEcsPublicAddress(configOf(ecs));
    expect(found).toMatchObject({ publicIp: "203.0.113.77", attempts: 3 });
    expect(ecs.ec2Requests).toHaveLength(3);
  });

  it("an EC2 endpoint that does not answer is abandoned after the attempt timeout, within the budget", async () => {
    ecs = await startFakeEcs();
    ecs.ec2Plan.push(...Array.from({ length: 50 }, () => "hang" as const));
    const started = Date.now();
    const err = await failure(
      discoverEcsPublicAddress(configOf(ecs, { attemptTimeoutMs: 150, deadlineMs: 1000 })),
    );
    expect(err.code).toBe("EC2_ERROR");
    expect(err.attempts).toBeGreaterThanOrEqual(2);
    expect(Date.now() - started).toBeLessThan(1000 + 1000);
  });

  it("the retries stop as soon as the caller aborts (shutdown during start-up)", async () => {
    ecs = await startFakeEcs();
    ecs.ec2Plan.push(...Array.from({ length: 50 }, () => "hang" as const));
    const abort = new AbortController();
    setTimeout(() => abort.abort(), 100);
    const started = Date.now();
    const err = await failure(
      discoverEcsPublicAddress(configOf(ecs, { attemptTimeoutMs: 2000, deadlineMs: 10_000 }), {
        signal: abort.signal,
      }),
    );
    expect(err.code).toBe("EC2_ERROR");
    expect(Date.now() - started).toBeLessThan(1500);
  });

  it("picks the public IP of the interface carrying the address, refusing ambiguity", () => {
    const eni = (id: string, ip: string, publicIp?: string) => ({
      NetworkInterfaceId: id,
      PrivateIpAddress: ip,
      PrivateIpAddresses: [
        {
          PrivateIpAddress: ip,
          Primary: true,
          ...(publicIp ? { Association: { PublicIp: publicIp } } : {}),
        },
      ],
      ...(publicIp ? { Association: { PublicIp: publicIp } } : {}),
    });
    expect(publicIpOf([eni("eni-a", "10.0.0.5", "203.0.113.5")], "10.0.0.5")).toEqual({
      publicIp: "203.0.113.5",
      networkInterfaceId: "eni-a",
    });
    expect(() => publicIpOf([], "10.0.0.5")).toThrow(
      expect.objectContaining({ code: "ENI_NOT_FOUND" }),
    );
    expect(() =>
      publicIpOf(
        [eni("eni-a", "10.0.0.5", "203.0.113.5"), eni("eni-b", "10.0.0.5", "203.0.113.6")],
        "10.0.0.5",
      ),
    ).toThrow(expect.objectContaining({ code: "ENI_AMBIGUOUS", retryable: false }));
  });

  it("reads the metadata URI, region and EC2 endpoint override from the environment", () => {
    const agent = { publicHostDiscoverySeconds: 12 };
    expect(
      ecsPublicAddressConfigFromEnv(
        {
          ECS_CONTAINER_METADATA_URI_V4: "http://169.254.170.2/v4/abc",
          AWS_REGION: "eu-central-1",
          AWS_ENDPOINT_URL: "http://shared:1",
          AWS_ENDPOINT_URL_EC2: "http://127.0.0.1:4566",
        },
        agent,
      ),
    ).toEqual({
      metadataUri: "http://169.254.170.2/v4/abc",
      region: "eu-central-1",
      ec2Endpoint: "http://127.0.0.1:4566",
      deadlineMs: 12_000,
    });
    expect(
      ecsPublicAddressConfigFromEnv(
        { AWS_DEFAULT_REGION: "us-east-1", AWS_ENDPOINT_URL: "http://shared:1" },
        agent,
      ),
    ).toEqual({
      metadataUri: undefined,
      region: "us-east-1",
      ec2Endpoint: "http://shared:1",
      deadlineMs: 12_000,
    });
  });
});

describe("resolvePublicHost: what the agent announces", () => {
  const base = {
    EHOME_PUBLIC_HOST: "198.51.100.1",
    EHOME_HTTPS_PUBLIC_PORT: "8443",
    EHOME_HTTPS_PUBLIC_HOST: "devices.example.com",
  };

  it("off (the default): EHOME_PUBLIC_HOST, no request", async () => {
    ecs = await startFakeEcs();
    const config = loadConfig(base);
    expect(config.publicHostDiscovery).toBe("off");
    const out = await resolvePublicHost(
      config,
      { ECS_CONTAINER_METADATA_URI_V4: ecs.metadataUri },
      {
        log: silentLogger,
      },
    );
    expect(out.config).toBe(config);
    expect(out.status).toEqual({
      discovery: "off",
      host: "198.51.100.1",
      source: "configured",
      configuredHost: "198.51.100.1",
    });
    expect(ecs.metadataRequests).toBe(0);
  });

  it("ecs: the task's address replaces the announced host; NTP and the https host keep theirs", async () => {
    ecs = await startFakeEcs();
    const config = loadConfig({ ...base, EHOME_PUBLIC_HOST_DISCOVERY: "ecs" });
    const lines: string[] = [];
    const out = await resolvePublicHost(
      config,
      { ECS_CONTAINER_METADATA_URI_V4: ecs.metadataUri, AWS_ENDPOINT_URL_EC2: ecs.ec2Endpoint },
      {
        log: createLogger({ write: (l) => lines.push(l) }),
        discovery: { credentials: CREDENTIALS },
      },
    );
    expect(out.config).toEqual({ ...config, publicHost: "203.0.113.77" });
    expect(out.config.ntpHost).toBe("198.51.100.1");
    expect(out.config.httpsUrl).toEqual({ host: "devices.example.com", port: 8443 });
    expect(out.status).toEqual({
      discovery: "ecs",
      host: "203.0.113.77",
      source: "discovered",
      configuredHost: "198.51.100.1",
      privateIp: "10.0.0.12",
      networkInterfaceId: "eni-0f7db0ba0bd7bd2ab",
      attempts: 1,
    });
    expect(lines.join("\n")).toContain("public address discovered");
  });

  it("ecs, discovery failing: starts with EHOME_PUBLIC_HOST, logs an error and reports why", async () => {
    ecs = await startFakeEcs();
    ecs.ec2Plan.push({
      ec2Error: { status: 403, code: "UnauthorizedOperation", message: "not authorized" },
    });
    const config = loadConfig({ ...base, EHOME_PUBLIC_HOST_DISCOVERY: "ecs" });
    const lines: string[] = [];
    const out = await resolvePublicHost(
      config,
      { ECS_CONTAINER_METADATA_URI_V4: ecs.metadataUri, AWS_ENDPOINT_URL_EC2: ecs.ec2Endpoint },
      {
        log: createLogger({ write: (l) => lines.push(l) }),
        discovery: { credentials: CREDENTIALS },
      },
    );
    expect(out.config).toBe(config);
    expect(out.status).toMatchObject({
      discovery: "ecs",
      host: "198.51.100.1",
      source: "configured",
      attempts: 1,
      error: { code: "EC2_ERROR" },
    });
    expect(out.status.error?.message).toContain("UnauthorizedOperation");
    const logged = lines.map((l) => JSON.parse(l) as { level: string; msg: string; code?: string });
    expect(logged).toContainEqual(
      expect.objectContaining({
        level: "error",
        code: "EC2_ERROR",
        msg: expect.stringContaining("PUBLIC ADDRESS DISCOVERY FAILED"),
      }),
    );
  });
});
