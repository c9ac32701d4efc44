import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { describe, expect, it } from "vitest";
import {
  createFirstFilePartStream,
  type FilePartInfo,
  MultipartError,
  multipartBoundary,
} from "../../../edge-agent/http/multipart.ts";

// ehome-2.0 §8 upload row: "multipart/form-data whose first file part is the file".

const FILE = Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 7) % 256));
const B = "XyZ-boundary";

function body(preamble = ""): Buffer {
  return Buffer.concat([
    Buffer.from(
      `${preamble}--${B}\r\nContent-Disposition: form-data; name="meta"\r\n\r\n--${B.slice(0, 4)} not a boundary\r\n` +
        `--${B}\r\nContent-Disposition: form-data; name="pic"; filename="a.jpg"\r\nContent-Type: image/jpeg\r\n\r\n`,
    ),
    FILE,
    Buffer.from(
      `\r\n--${B}\r\nContent-Disposition: form-data; name="b"; filename="b.jpg"\r\n\r\nBBBB\r\n--${B}--\r\n`,
    ),
  ]);
}

async function extract(
  bytes: Buffer,
  chunk: number,
): Promise<{ out: Buffer; info?: FilePartInfo }> {
  const chunks: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += chunk) chunks.push(bytes.subarray(i, i + chunk));
  let info: FilePartInfo | undefined;
  const parser = createFirstFilePartStream(B, (i) => (info = i));
  const out: Buffer[] = [];
  parser.on("data", (c: Buffer) => out.push(c));
  await pipeline(Readable.from(chunks), parser);
  return { out: Buffer.concat(out), info };
}

describe("streaming multipart: first file part only", () => {
  it.each([1, 7, 64, 4096])(
    "yields exactly the first file's bytes with %i-byte chunks",
    async (n) => {
      const { out, info } = await extract(body("preamble text\r\n"), n);
      expect(out).toEqual(FILE);
      expect(info).toEqual({ filename: "a.jpg", contentType: "image/jpeg" });
    },
  );

  it("fails on a body without a file part or cut inside the file", async () => {
    const noFile = Buffer.from(
      `--${B}\r\nContent-Disposition: form-data; name="a"\r\n\r\nx\r\n--${B}--\r\n`,
    );
    await expect(extract(noFile, 5)).rejects.toBeInstanceOf(MultipartError);
    const cut = body().subarray(0, 400);
    await expect(extract(cut, 50)).rejects.toBeInstanceOf(MultipartError);
  });

  it("reads the boundary of a multipart/form-data content type", () => {
    expect(multipartBoundary(`multipart/form-data; boundary=${B}`)).toBe(B);
    expect(multipartBoundary(`Multipart/Form-Data; charset=x; boundary="${B}"`)).toBe(B);
    expect(multipartBoundary("image/jpeg")).toBeUndefined();
    expect(multipartBoundary("multipart/form-data")).toBeUndefined();
  });
});
