/**
 * Key layout of the private media bucket. The data stack's lifecycle rules are keyed on these
 * prefixes, so writers must use them for the rules to apply.
 */
export const MEDIA_PREFIXES = {
  /** Alarm and capture pictures uploaded by devices. */
  pictures: "pictures/",
  /** Alarm video clips uploaded by devices. */
  videos: "videos/",
  /** Record downloads (recorded from a playback stream); short-lived. */
  downloads: "downloads/",
  /** Firmware images served to devices during upgrades. */
  firmware: "firmware/",
} as const;

export type MediaPrefix = (typeof MEDIA_PREFIXES)[keyof typeof MEDIA_PREFIXES];

/** Lifecycle, in days. */
export const MEDIA_LIFECYCLE = {
  /** Pictures and videos move to Infrequent Access after this many days… */
  infrequentAccessAfterDays: 30,
  /** …and are deleted after this many. */
  mediaExpiresAfterDays: 365,
  /** Downloads are links handed to users; they expire quickly. */
  downloadsExpireAfterDays: 7,
  /** Overwritten or deleted object versions are kept this long (versioning is on). */
  noncurrentVersionsExpireAfterDays: 30,
  /** Multipart uploads the recorder never completed. */
  abortIncompleteMultipartAfterDays: 1,
} as const;

/** File extension and content type of each uploaded media kind (ehome-2.0 §8 upload row). */
export const MEDIA_FILE_TYPES = {
  picture: { prefix: MEDIA_PREFIXES.pictures, extension: "jpg", contentType: "image/jpeg" },
  video: { prefix: MEDIA_PREFIXES.videos, extension: "ps", contentType: "video/mp2p" },
} as const;

/**
 * Key of an uploaded picture or video:
 * `pictures/{deviceId}/{yyyy}/{mm}/{dd}/{picId}.jpg` and `videos/{deviceId}/{yyyy}/{mm}/{dd}/{videoId}.ps`,
 * dated by the upload's UTC day. Device id and media id are URI-encoded, so any id is one path
 * segment. The same id uploaded again the same day overwrites the object (versioning keeps the
 * previous one).
 */
export function mediaObjectKey(
  kind: keyof typeof MEDIA_FILE_TYPES,
  deviceId: string,
  mediaId: string,
  uploadedAt: Date,
): string {
  const t = MEDIA_FILE_TYPES[kind];
  const iso = uploadedAt.toISOString();
  const day = `${iso.slice(0, 4)}/${iso.slice(5, 7)}/${iso.slice(8, 10)}`;
  return `${t.prefix}${encodeURIComponent(deviceId)}/${day}/${encodeURIComponent(mediaId)}.${t.extension}`;
}
