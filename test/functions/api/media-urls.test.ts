import { S3Client } from "@aws-sdk/client-s3";
import { afterAll, describe, expect, it } from "vitest";
import { createMediaUrlSigner, MAX_URL_TTL_SECONDS } from "../../../functions/api/media-urls.ts";

/**
 * Presigned URL parameters, read back from the URL: no local emulator checks SigV4 signatures, so
 * what S3 would enforce (method, expiry, response content type, credential scope) is asserted on
 * the signed query string itself.
 */
const s3 = new S3Client({
  region: "eu-west-1",
  credentials: { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "secret" },
});
afterAll(() => s3.destroy());

const SIGNED_AT = Date.parse("2026-11-24T06:00:00.000Z");
const clock = { now: () => SIGNED_AT };
const object = {
  bucket: "ehome-media",
  key: "pictures/cam%201/2026/11/24/cap-0123.jpg",
  contentType: "image/jpeg",
};

describe("presigned media URLs", () => {
  it("sign a GET for the object, valid 15 minutes by default, answered as image/jpeg", async () => {
    const signer = createMediaUrlSigner({ ttlSeconds: 900 }, { s3, clock });
    const { url, expiresAt } = await signer.sign(object);
    const parsed = new URL(url);
    expect(parsed.protocol).toBe("https:");
    expect(parsed.hostname).toBe("ehome-media.s3.eu-west-1.amazonaws.com");
    // The key is one path, its own escapes escaped again (S3 keys are opaque).
    expect(decodeURIComponent(parsed.pathname)).toBe(`/${object.key}`);
    const q = parsed.searchParams;
    expect(q.get("X-Amz-Algorithm")).toBe("AWS4-HMAC-SHA256");
    expect(q.get("X-Amz-Expires")).toBe("900");
    expect(q.get("X-Amz-Date")).toBe("20261124T060000Z");
    expect(q.get("X-Amz-Credential")).toBe("AKIDEXAMPLE/20261124/eu-west-1/s3/aws4_request");
    expect(q.get("response-content-type")).toBe("image/jpeg");
    // Only the host header is signed: a browser or curl GET works as is.
    expect(q.get("X-Amz-SignedHeaders")).toBe("host");
    expect(q.get("X-Amz-Signature")).toMatch(/^[0-9a-f]{64}$/);
    expect(expiresAt).toBe("2026-11-24T06:15:00.000Z");
  });

  it("sign the GET method: the same request as a PUT has another signature", async () => {
    const signer = createMediaUrlSigner({ ttlSeconds: 900 }, { s3, clock });
    const { getSignedUrl } = await import("@aws-sdk/s3-request-presigner");
    const { PutObjectCommand, GetObjectCommand } = await import("@aws-sdk/client-s3");
    const signature = (u: string) => new URL(u).searchParams.get("X-Amz-Signature");
    const ours = signature((await signer.sign(object)).url);
    const signingDate = new Date(SIGNED_AT);
    const asGet = await getSignedUrl(
      s3,
      new GetObjectCommand({
        Bucket: object.bucket,
        Key: object.key,
        ResponseContentType: object.contentType,
      }),
      { expiresIn: 900, signingDate },
    );
    const asPut = await getSignedUrl(
      s3,
      new PutObjectCommand({ Bucket: object.bucket, Key: object.key }),
      { expiresIn: 900, signingDate },
    );
    expect(ours).toBe(signature(asGet));
    expect(ours).not.toBe(signature(asPut));
  });

  it("take the configured lifetime (CAPTURE_URL_TTL_SECONDS), capped at SigV4's 7 days", async () => {
    const short = createMediaUrlSigner({ ttlSeconds: 60 }, { s3, clock });
    expect(new URL((await short.sign(object)).url).searchParams.get("X-Amz-Expires")).toBe("60");
    const long = createMediaUrlSigner({ ttlSeconds: 30 * 24 * 3600 }, { s3, clock });
    const signed = await long.sign(object);
    expect(new URL(signed.url).searchParams.get("X-Amz-Expires")).toBe(String(MAX_URL_TTL_SECONDS));
    expect(Date.parse(signed.expiresAt) - SIGNED_AT).toBe(MAX_URL_TTL_SECONDS * 1000);
    expect(() => createMediaUrlSigner({ ttlSeconds: 0 }, { s3, clock })).toThrow(RangeError);
  });

  it("answer videos with their stored content type", async () => {
    const signer = createMediaUrlSigner({ ttlSeconds: 900 }, { s3, clock });
    const { url } = await signer.sign({ ...object, key: "videos/x.ps", contentType: "video/mp2p" });
    expect(new URL(url).searchParams.get("response-content-type")).toBe("video/mp2p");
  });
});

describe("CAPTURE_URL_TTL_SECONDS", () => {
  const tables = {
    DEVICES_TABLE: "d",
    PRESENCE_TABLE: "p",
    COMMANDS_TABLE: "c",
    AGENTS_TABLE: "a",
    ALARMS_TABLE: "al",
    CAPTURES_TABLE: "ca",
  };

  it("sets the URL lifetime of the api function; unset keeps the 15-minute default", async () => {
    const { createApiDepsFromEnv, MEDIA_URL_TTL_VARIABLE } = await import(
      "../../../functions/api/handler.ts"
    );
    const set = createApiDepsFromEnv({ ...tables, [MEDIA_URL_TTL_VARIABLE]: "60" });
    expect(set.config?.mediaUrlTtlSeconds).toBe(60);
    set.close();
    const unset = createApiDepsFromEnv(tables);
    expect(unset.config?.mediaUrlTtlSeconds).toBeUndefined();
    unset.close();
    const { DEFAULT_API_CONFIG } = await import("../../../functions/api/config.ts");
    expect(DEFAULT_API_CONFIG.mediaUrlTtlSeconds).toBe(900);
    for (const bad of ["0", "soon", "604801"]) {
      expect(() => createApiDepsFromEnv({ ...tables, [MEDIA_URL_TTL_VARIABLE]: bad })).toThrow(
        /CAPTURE_URL_TTL_SECONDS/,
      );
    }
  });
});
