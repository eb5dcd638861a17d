// How mqadmin renders values, so `rmq admin` output lines up with what scripts written for mqadmin
// parse: printf-style fixed-width cells (Java `%-20s` / `%4d`), Java's Map/Double/boolean text,
// and upstream's two time formats (UtilAll.timeMillisToHumanString2 and formatDate).

/** Java `%-<w>s`: left-aligned, padded to at least `w`, never cut. */
export function left(v: string | number | bigint | boolean, w: number): string {
  return String(v).padEnd(w);
}

/** Java `%<w>s` / `%<w>d`: right-aligned, padded to at least `w`. */
export function right(v: string | number | bigint | boolean, w: number): string {
  return String(v).padStart(w);
}

/** Upstream UtilAll.frontStringAtLeast: the first `size` characters (the whole string when shorter). */
export function front(s: string, size: number): string {
  return s.length > size ? s.slice(0, size) : s;
}

/** Java `%.<digits>f`, optionally right-aligned in `width` (`%9.2f`). */
export function fixed(v: number, digits: number, width = 0): string {
  return v.toFixed(digits).padStart(width);
}

/** Java Double.toString for the values we print (0.0, 12.5, 3.0). */
export function javaDouble(v: number): string {
  return Number.isInteger(v) ? v.toFixed(1) : String(v);
}

/** Java AbstractMap.toString: `{k1=v1, k2=v2}`. */
export function javaMap(m: Readonly<Record<string, string | number | bigint>>): string {
  return `{${Object.entries(m)
    .map(([k, v]) => `${k}=${v}`)
    .join(", ")}}`;
}

function p2(n: number): string {
  return String(n).padStart(2, "0");
}

/** Upstream UtilAll.timeMillisToHumanString2 (local time): `2024-05-01 13:45:12,345`. */
export function humanTime2(ms: number): string {
  const d = new Date(ms);
  return `${d.getFullYear().toString().padStart(4, "0")}-${p2(d.getMonth() + 1)}-${p2(d.getDate())} ${p2(
    d.getHours(),
  )}:${p2(d.getMinutes())}:${p2(d.getSeconds())},${String(d.getMilliseconds()).padStart(3, "0")}`;
}

/** Upstream UtilAll.formatDate(date, "yyyy-MM-dd HH:mm:ss") (local time). */
export function formatDate(ms: number): string {
  return humanTime2(ms).slice(0, 19);
}

/** Upstream PermName.perm2String: `RW-`, `R--`, `RWX`. */
export function permText(perm: number): string {
  return `${perm & 4 ? "R" : "-"}${perm & 2 ? "W" : "-"}${perm & 1 ? "X" : "-"}`;
}
