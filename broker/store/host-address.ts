// Socket addresses as the CommitLog stores them (BORNHOST, STOREHOST): 4-byte IPv4 or 16-byte IPv6
// address followed by a 4-byte port. IPv4-mapped IPv6 addresses (what Node reports for dual-stack
// sockets) are stored as IPv4, as a Java InetSocketAddress of the same peer would be.
import { isIPv4, isIPv6 } from "node:net";
import { ErrorCode, RmqError } from "../../common/errors.ts";

export interface HostAddress {
  address: string;
  port: number;
}

/** Parsed addresses are cached: a broker sees few distinct peers. */
const PARSED_CACHE_LIMIT = 4096;
const parsedCache = new Map<string, Uint8Array>();

/** The 4- or 16-byte form of an IP literal; throws ILLEGAL_ARGUMENT for anything else (host names too). */
export function ipToBytes(address: string): Uint8Array {
  const hit = parsedCache.get(address);
  if (hit !== undefined) return hit;
  const bytes = parseIp(address);
  if (parsedCache.size >= PARSED_CACHE_LIMIT) parsedCache.clear();
  parsedCache.set(address, bytes);
  return bytes;
}

function parseIp(address: string): Uint8Array {
  if (isIPv4(address)) return parseIPv4(address);
  let a = address;
  const zone = a.indexOf("%");
  if (zone >= 0) a = a.slice(0, zone);
  if (a.startsWith("[") && a.endsWith("]")) a = a.slice(1, -1);
  if (!isIPv6(a)) throw new RmqError(ErrorCode.IllegalArgument, `not an IP address: ${address}`);
  const v6 = parseIPv6(a);
  // ::ffff:a.b.c.d is an IPv4 peer seen through a dual-stack socket.
  let mapped = v6[10] === 0xff && v6[11] === 0xff;
  for (let i = 0; i < 10 && mapped; i++) if (v6[i] !== 0) mapped = false;
  return mapped ? v6.slice(12) : v6;
}

function parseIPv4(s: string): Uint8Array {
  const out = new Uint8Array(4);
  const parts = s.split(".");
  for (let i = 0; i < 4; i++) out[i] = Number(parts[i]);
  return out;
}

function parseIPv6(s: string): Uint8Array {
  const out = new Uint8Array(16);
  const dbl = s.indexOf("::");
  const head = dbl >= 0 ? s.slice(0, dbl) : s;
  const tail = dbl >= 0 ? s.slice(dbl + 2) : "";
  const words = (part: string): number[] => {
    if (part.length === 0) return [];
    const res: number[] = [];
    for (const g of part.split(":")) {
      if (g.includes(".")) {
        const v4 = parseIPv4(g);
        res.push(((v4[0] ?? 0) << 8) | (v4[1] ?? 0), ((v4[2] ?? 0) << 8) | (v4[3] ?? 0));
      } else {
        res.push(Number.parseInt(g, 16));
      }
    }
    return res;
  };
  const h = words(head);
  const t = words(tail);
  const all = dbl >= 0 ? [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t] : h;
  for (let i = 0; i < 8; i++) {
    const w = all[i] ?? 0;
    out[i * 2] = w >> 8;
    out[i * 2 + 1] = w & 0xff;
  }
  return out;
}

/** Text form of a 4- or 16-byte address (IPv6 in the RFC 5952 compressed form). */
export function bytesToIp(b: Uint8Array, pos: number, len: number): string {
  if (len === 4) return `${b[pos]}.${b[pos + 1]}.${b[pos + 2]}.${b[pos + 3]}`;
  const w: number[] = [];
  for (let i = 0; i < 8; i++) w.push(((b[pos + i * 2] ?? 0) << 8) | (b[pos + i * 2 + 1] ?? 0));
  // Longest run (>= 2) of zero words becomes "::".
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (w[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && w[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = w.map((x) => x.toString(16));
  if (bestLen < 2) return hex.join(":");
  return `${hex.slice(0, bestStart).join(":")}::${hex.slice(bestStart + bestLen).join(":")}`;
}
