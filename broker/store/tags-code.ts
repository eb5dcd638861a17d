// tagsCode: the 8-byte filter hash a ConsumeQueue unit carries, which is Java's String.hashCode() of TAGS.

/** Java `String.hashCode()` over UTF-16 code units, as a signed 32-bit integer. */
export function javaStringHashCode(s: string): number {
  let h = 0;
  for (let i = 0; i < s.length; i++) h = (Math.imul(h, 31) + s.charCodeAt(i)) | 0;
  return h;
}

/** tagsCode of a message: 0 without tags, else the hash of the TAGS value. */
export function tagsString2tagsCode(tags: string | undefined): number {
  if (tags === undefined || tags.length === 0) return 0;
  return javaStringHashCode(tags);
}
