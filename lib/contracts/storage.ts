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
