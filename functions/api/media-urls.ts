import { GetObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { awsClientConfigFromEnv } from "../shared/clients.ts";
import { type Env, optionalEnv } from "../shared/env.ts";

/**
 * Presigned GET URLs for pictures and videos in the media bucket. Signing is local computation
 * (no request to S3): the URL carries the function role's credentials, the method (GET), the
 * expiry (`X-Amz-Expires`) and the content type S3 must answer with (`response-content-type`),
 * all covered by the signature. No local emulator checks signatures, so the parameters are
 * unit-tested by parsing the URL (test/functions/api/media-urls.test.ts).
 */

export interface MediaUrl {
  url: string;
  /** ISO 8601. */
  expiresAt: string;
}

export interface MediaUrlSigner {
  sign(object: { bucket: string; key: string; contentType: string }): Promise<MediaUrl>;
}

/** SigV4 caps presigned URLs at 7 days. */
export const MAX_URL_TTL_SECONDS = 7 * 24 * 3600;

export function createMediaUrlSigner(
  config: { readonly ttlSeconds: number },
  deps: { s3: S3Client; clock: { now(): number } },
): MediaUrlSigner {
  if (!Number.isInteger(config.ttlSeconds) || config.ttlSeconds < 1) {
    throw new RangeError(`URL TTL must be a positive integer, got ${config.ttlSeconds}`);
  }
  const expiresIn = Math.min(config.ttlSeconds, MAX_URL_TTL_SECONDS);
  return {
    async sign({ bucket, key, contentType }) {
      const signedAt = deps.clock.now();
      const url = await getSignedUrl(
        deps.s3,
        new GetObjectCommand({ Bucket: bucket, Key: key, ResponseContentType: contentType }),
        { expiresIn, signingDate: new Date(signedAt) },
      );
      return { url, expiresAt: new Date(signedAt + expiresIn * 1000).toISOString() };
    },
  };
}

/**
 * The S3 client the api signs with. A local endpoint (`AWS_ENDPOINT_URL_S3`, fauxqs) is addressed
 * path-style, so URLs point at `<endpoint>/<bucket>/<key>`.
 */
export function createS3ClientFromEnv(env: Env): S3Client {
  const aws = awsClientConfigFromEnv(env);
  const endpoint = optionalEnv(env, "AWS_ENDPOINT_URL_S3") ?? optionalEnv(env, "AWS_ENDPOINT_URL");
  return new S3Client({
    region: aws.region,
    ...(endpoint ? { endpoint, forcePathStyle: true } : {}),
    ...(aws.credentials ? { credentials: aws.credentials } : {}),
  });
}
