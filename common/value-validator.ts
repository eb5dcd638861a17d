// Checks shared by every validator of user-supplied strings (tags, keys, message groups, property
// names and values), and how a rejected value is shown in an error message.

/** Longest part of a rejected value quoted in an error message; the rest is elided with its length. */
const MAX_QUOTED_CHARS = 80;

/** Java's Character.isISOControl: U+0000..U+001F and U+007F..U+009F (what upstream's validators refuse). */
export function containsControlCharacter(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c <= 0x1f || (c >= 0x7f && c <= 0x9f)) return true;
  }
  return false;
}

/** Empty or only whitespace (Java StringUtils.isBlank: Character.isWhitespace). */
export function isBlank(s: string): boolean {
  return s.trim().length === 0;
}

/** A value rendered for an error message: JSON-quoted (so control characters show), long values elided. */
export function quoteForMessage(value: string): string {
  if (value.length <= MAX_QUOTED_CHARS) return JSON.stringify(value);
  return `${JSON.stringify(value.slice(0, MAX_QUOTED_CHARS))}...(${value.length} chars)`;
}

export function utf8Length(s: string): number {
  return Buffer.byteLength(s, "utf8");
}
