/**
 * Just enough H.264 / H.265 bitstream knowledge to tell where a viewer may start decoding: the NAL
 * unit types of random-access points. No parsing beyond the first bytes of a NAL unit.
 */

export type VideoCodec = "h264" | "h265";

/** PSM / PMT stream_type values (ISO/IEC 13818-1 table 2-34). */
export const STREAM_TYPE_H264 = 0x1b;
export const STREAM_TYPE_H265 = 0x24;

/** The codec a PSM stream_type declares, or undefined when it is not one we can detect. */
export function codecOfStreamType(streamType: number): VideoCodec | undefined {
  if (streamType === STREAM_TYPE_H264) return "h264";
  if (streamType === STREAM_TYPE_H265) return "h265";
  return undefined;
}

/**
 * Whether a NAL unit whose first three bytes (after the start code) are b0 b1 b2 begins a
 * random-access point: H.264 SPS (7), or an IDR slice (5) that is the picture's first slice
 * (first_mb_in_slice = 0, i.e. its ue(v) is the single bit 1); H.265 VPS (32), or an IRAP slice
 * (BLA/IDR/CRA, 16–21) with first_slice_segment_in_pic_flag set. Checking the first slice keeps a
 * multi-slice IDR from marking every pack it spans as a keyframe.
 */
export function isRandomAccessNal(codec: VideoCodec, b0: number, b1: number, b2: number): boolean {
  if (codec === "h264") {
    const type = b0 & 0x1f;
    return type === 7 || (type === 5 && (b1 & 0x80) !== 0);
  }
  const type = (b0 >> 1) & 0x3f;
  return type === 32 || (type >= 16 && type <= 21 && (b2 & 0x80) !== 0);
}
