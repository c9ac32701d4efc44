/**
 * What simulated devices upload (ehome-2.0 §8 upload row). The picture is a real baseline JPEG
 * (16×16 grayscale gradient, 177 bytes; `fixtures/snap.jpg`, made by `fixtures/make-snap-jpeg.py`
 * and checked to decode with libjpeg's djpeg). Videos are MPEG-PS: a pack header, then filler.
 */

export const SNAPSHOT_JPEG: Uint8Array = Buffer.from(
  "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDABALDA4MChAODQ4SERATGCgaGBYWGDEjJR0oOjM9PDkzODdASFxOQERXRTc4UG1RV19iZ2hnPk1xeXBkeFxlZ2P/wAALCAAQABABAREA/8QAFQAAAgAAAAAAAAAAAAAAAAAABQb/xAAXEAAABAAAAAAAAAAAAAAAAAAAAgUy/9oACAEBAAA/AASQVoeEgrQmpBWh4SCtH//Z",
  "base64",
);

/** MPEG-PS pack start code `00 00 01 BA` (ehome-2.0 §8 media rules), padded to `bytes`. */
export function fakeVideo(bytes: number, seed: number): Uint8Array {
  const out = Buffer.alloc(Math.max(4, bytes));
  out.set([0x00, 0x00, 0x01, 0xba], 0);
  for (let i = 4; i < out.length; i++) out[i] = (i * 31 + seed) & 0xff;
  return out;
}
