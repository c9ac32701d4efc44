import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  type S3Client,
} from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";

/** Firmware objects in the media bucket (keys: `firmwareObjectKey`, lib/contracts/storage.ts). */
export interface FirmwareStorage {
  /** A presigned PUT URL for exactly `size` bytes (`Content-Length` is signed). */
  presignPut(key: string, size: number, expiresInSeconds: number): Promise<string>;
  /** Size of the stored object, or undefined when there is none. */
  size(key: string): Promise<number | undefined>;
  /** The object's bytes as a stream. */
  read(key: string): Promise<AsyncIterable<Uint8Array>>;
  remove(key: string): Promise<void>;
}

function isNotFound(error: unknown): boolean {
  const e = error as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e?.name === "NotFound" || e?.name === "NoSuchKey" || e?.$metadata?.httpStatusCode === 404;
}

export function createS3FirmwareStorage(
  config: { bucket: string },
  deps: { s3: S3Client },
): FirmwareStorage {
  const Bucket = config.bucket;
  return {
    presignPut(key, size, expiresIn) {
      return getSignedUrl(
        deps.s3,
        new PutObjectCommand({ Bucket, Key: key, ContentLength: size }),
        { expiresIn, signableHeaders: new Set(["content-length"]) },
      );
    },
    async size(key) {
      try {
        const out = await deps.s3.send(new HeadObjectCommand({ Bucket, Key: key }));
        return out.ContentLength;
      } catch (error) {
        if (isNotFound(error)) return undefined;
        throw error;
      }
    },
    async read(key) {
      const out = await deps.s3.send(new GetObjectCommand({ Bucket, Key: key }));
      if (!out.Body) throw new Error(`s3://${Bucket}/${key} has no body`);
      return out.Body as AsyncIterable<Uint8Array>;
    },
    async remove(key) {
      await deps.s3.send(new DeleteObjectCommand({ Bucket, Key: key }));
    },
  };
}
