// Java's String.trim(): strips every char <= U+0020 (all ASCII controls and space) from both ends.
// Differs from JS trim(), which strips Unicode white space (NBSP, U+2028, ...) but not e.g. U+0000.

export function javaTrim(s: string): string {
  let start = 0;
  let end = s.length;
  while (start < end && s.charCodeAt(start) <= 0x20) start++;
  while (end > start && s.charCodeAt(end - 1) <= 0x20) end--;
  return start === 0 && end === s.length ? s : s.substring(start, end);
}
