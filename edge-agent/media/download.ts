import { PassThrough } from "node:stream";
import type { S3Client } from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";

/**
 * A download's bytes into S3 (issue 4 item 6): the de-framed PS the device pushes after
 * `DOWNLOAD` (ehome-2.0 §8) is streamed into a multipart upload, never buffered whole. Memory is
 * bounded by `(queueSize + 1) × partSize` plus the stream's high-water mark: `write` returns false
 * when the caller must pause the device's socket until `onDrain`. `finish` completes the object
 * (the device closed the connection); `abort` aborts the multipart upload (nothing is left).
 */

export interface DownloadUploadConfig {
  bucket: string;
  key: string;
  /** S3 part size, at least 5 MiB (the S3 minimum). Default 5 MiB. */
  partSizeBytes?: number;
  /** Parts uploaded concurrently. Default 2. */
  queueSize?: number;
}

export interface DownloadUpload {
  readonly key: string;
  /** Bytes accepted so far. */
  readonly bytes: number;
  /** Queues bytes; false = pause the producer until `onDrain`. No-op after finish/abort. */
  write(chunk: Buffer): boolean;
  onDrain(listener: () => void): void;
  /** The device closed: completes the object. Rejects (after aborting) when S3 fails. */
  finish(): Promise<{ key: string; bytes: number }>;
  /** Aborts the multipart upload; idempotent, never rejects. */
  abort(): Promise<void>;
  /** Settles when S3 has failed on its own (so the caller can stop reading), with the error. */
  readonly failed: Promise<unknown>;
}

export const MIN_PART_BYTES = 5 * 1024 * 1024;

export function createDownloadUpload(
  config: DownloadUploadConfig,
  deps: { s3: () => Pick<S3Client, "send" | "config"> },
): DownloadUpload {
  const partSize = Math.max(MIN_PART_BYTES, config.partSizeBytes ?? MIN_PART_BYTES);
  const body = new PassThrough({ highWaterMark: 256 * 1024 });
  let bytes = 0;
  let state: "open" | "finishing" | "done" | "aborted" = "open";
  const upload = new Upload({
    client: deps.s3() as S3Client,
    params: {
      Bucket: config.bucket,
      Key: config.key,
      Body: body,
      ContentType: "video/mp2p",
    },
    partSize,
    queueSize: config.queueSize ?? 2,
    leavePartsOnError: false,
  });
  let resolveFailed!: (err: unknown) => void;
  const failed = new Promise<unknown>((r) => {
    resolveFailed = r;
  });
  const done = upload.done().then(
    () => undefined,
    (err: unknown) => {
      if (state === "open") resolveFailed(err);
      body.destroy();
      throw err;
    },
  );
  done.catch(() => {});

  return {
    key: config.key,
    get bytes() {
      return bytes;
    },
    failed,
    write(chunk) {
      if (state !== "open" || body.destroyed) return true;
      bytes += chunk.length;
      return body.write(chunk);
    },
    onDrain(listener) {
      body.once("drain", listener);
    },
    async finish() {
      if (state !== "open") throw new Error(`download upload already ${state}`);
      state = "finishing";
      body.end();
      try {
        await done;
      } catch (err) {
        state = "aborted";
        throw err;
      }
      state = "done";
      return { key: config.key, bytes };
    },
    async abort() {
      if (state === "done" || state === "aborted") return;
      state = "aborted";
      // The abort signal and a failing body both stop the upload, whichever it is waiting on;
      // with leavePartsOnError false it aborts the multipart upload it created.
      const aborting = upload.abort().catch(() => {});
      body.destroy(new Error("download aborted"));
      await aborting;
      await done.catch(() => {});
    },
  };
}
