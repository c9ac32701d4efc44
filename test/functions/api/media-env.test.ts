import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { createApiDepsFromEnv } from "../../../functions/api/handler.ts";
import { ENV } from "../../../lib/contracts/env.ts";

/** The api function's media part from its environment (what the api stack and npm start set). */
const base = {
  DEVICES_TABLE: "d",
  PRESENCE_TABLE: "p",
  COMMANDS_TABLE: "c",
  AGENTS_TABLE: "a",
  ALARMS_TABLE: "al",
  CAPTURES_TABLE: "ca",
  AWS_REGION: "eu-west-1",
};
const media = {
  [ENV.STREAMS_TABLE]: "streams",
  [ENV.MEDIA_BUCKET]: "media",
  [ENV.STREAM_TOKEN_KEY]: randomBytes(32).toString("hex"),
};

describe("api media settings from the environment", () => {
  it("serves the media routes with the streams table, the bucket and the token key", () => {
    const deps = createApiDepsFromEnv({ ...base, ...media });
    try {
      expect(deps.media).toMatchObject({ bucket: "media" });
      expect(Buffer.from(deps.media!.tokenKey).toString("hex")).toBe(media.STREAM_TOKEN_KEY);
    } finally {
      deps.close();
    }
  });

  it("without one of the three, no media routes", () => {
    for (const name of Object.keys(media)) {
      const deps = createApiDepsFromEnv({ ...base, ...media, [name]: undefined });
      expect(deps.media, name).toBeUndefined();
      deps.close();
    }
  });

  it("refuses a token key shorter than 32 bytes, naming the variable", () => {
    expect(() =>
      createApiDepsFromEnv({ ...base, ...media, [ENV.STREAM_TOKEN_KEY]: "abcdef" }),
    ).toThrow(/STREAM_TOKEN_KEY/);
  });
});
