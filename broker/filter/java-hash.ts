// Java's String.hashCode(): s[0]*31^(n-1) + ... + s[n-1] over UTF-16 code units, in 32-bit two's
// complement. The ConsumeQueue stores this value (sign-extended to 8 bytes) as the tagsCode of a
// message, and TAG subscriptions are matched against it, so it must agree with Java bit for bit.
// JS strings are UTF-16 too, so charCodeAt yields exactly Java's chars (surrogate pairs included).

export function javaStringHashCode(s: string): number {
  let h = 0;
  for (let i = 0; i < s.length; i++) {
    h = (Math.imul(h, 31) + s.charCodeAt(i)) | 0;
  }
  return h;
}
