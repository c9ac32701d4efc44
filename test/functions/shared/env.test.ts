import { describe, expect, it } from "vitest";
import { awsClientConfigFromEnv } from "../../../functions/shared/clients.ts";
import { requireEnv, tableNamesFromEnv } from "../../../functions/shared/env.ts";
import { ENV } from "../../../lib/contracts/env.ts";

describe("environment helpers", () => {
  it("names every missing variable at once", () => {
    expect(() =>
      requireEnv({ DEVICES_TABLE: "d" }, [ENV.DEVICES_TABLE, ENV.PRESENCE_TABLE, ENV.AGENTS_TABLE]),
    ).toThrow("missing environment variable(s): PRESENCE_TABLE, AGENTS_TABLE");
  });

  it("reads the table names the stacks set, by their contract names", () => {
    expect(
      tableNamesFromEnv({
        [ENV.DEVICES_TABLE]: "d",
        [ENV.PRESENCE_TABLE]: "p",
        [ENV.COMMANDS_TABLE]: "c",
        [ENV.AGENTS_TABLE]: "a",
      }),
    ).toEqual({ devices: "d", presence: "p", commands: "c", agents: "a" });
  });

  it("takes local endpoints from the SDK's service-specific variables", () => {
    expect(
      awsClientConfigFromEnv({
        AWS_REGION: "eu-west-1",
        AWS_ENDPOINT_URL_DYNAMODB: "http://127.0.0.1:8000",
        AWS_ENDPOINT_URL: "http://127.0.0.1:4566",
      }),
    ).toEqual({
      region: "eu-west-1",
      dynamodbEndpoint: "http://127.0.0.1:8000",
      sqsEndpoint: "http://127.0.0.1:4566",
    });
    expect(awsClientConfigFromEnv({})).toEqual({ region: "us-east-1" });
  });
});
