// The two checksums of a CommitLog record, filled in from its encoded bytes: BODYCRC (upstream's CRC32
// of the body masked to 31 bits) and our CRC32 trailer over every byte before it. The encoder writes
// every other field first, so sealing can run wherever is cheapest (commitlog-writer.ts: on the writer
// thread in ASYNC_FLUSH) as long as it is done before the bytes are written. Sealing reads only
// what the encoder wrote and is idempotent: sealing a sealed record changes nothing.
import { ErrorCode, RmqError } from "../../common/errors.ts";
import { crc32Combine, crc32Range } from "./crc32.ts";
import { MessageSysFlag } from "./message-sysflag.ts";
import {
  BLANK_MAGIC_CODE,
  END_FILE_MIN_BLANK_LENGTH,
  MIN_RECORD_LENGTH,
  POS_BODYCRC,
  POS_BODYLEN_WITHOUT_HOSTS,
  POS_MAGIC,
  POS_SYSFLAG,
  RECORD_CRC_LENGTH,
} from "./record-layout.ts";

function getInt(b: Uint8Array, p: number): number {
  return (
    ((b[p] as number) << 24) |
    ((b[p + 1] as number) << 16) |
    ((b[p + 2] as number) << 8) |
    (b[p + 3] as number)
  );
}

function putInt(b: Uint8Array, p: number, v: number): void {
  b[p] = v >>> 24;
  b[p + 1] = v >>> 16;
  b[p + 2] = v >>> 8;
  b[p + 3] = v;
}

/**
 * Computes and writes BODYCRC and the CRC trailer of the record encoded at `pos` (its TOTALSIZE,
 * SYSFLAG and BODYLEN must be in place); returns its size. The body is read once: the record CRC is
 * assembled from the CRC of the bytes before the body, the body CRC and the bytes after it (crc32.ts).
 */
export function sealRecord(buf: Uint8Array, pos: number): number {
  const size = getInt(buf, pos);
  const sysFlag = getInt(buf, pos + POS_SYSFLAG);
  const bodyLenPos =
    pos +
    POS_BODYLEN_WITHOUT_HOSTS +
    (sysFlag & MessageSysFlag.BORNHOST_V6_FLAG ? 16 : 4) +
    (sysFlag & MessageSysFlag.STOREHOSTADDRESS_V6_FLAG ? 16 : 4);
  const bodyPos = bodyLenPos + 4;
  const bodyEnd = bodyPos + getInt(buf, bodyLenPos);
  const crcPos = pos + size - RECORD_CRC_LENGTH;
  if (bodyEnd < bodyPos || bodyEnd > crcPos)
    throw new RmqError(ErrorCode.Internal, `record at ${pos}: its body does not fit its size ${size}`);
  const bodyCrcRaw = crc32Range(buf, bodyPos, bodyEnd);
  putInt(buf, pos + POS_BODYCRC, bodyCrcRaw & 0x7fffffff);
  const headerCrc = crc32Range(buf, pos, bodyPos);
  putInt(
    buf,
    crcPos,
    crc32Range(buf, bodyEnd, crcPos, crc32Combine(headerCrc, bodyCrcRaw, bodyEnd - bodyPos)),
  );
  return size;
}

/**
 * Seals every record in `buf[start, end)`, which holds whole records back to back as the CommitLog
 * encoded them, possibly with blank end-of-segment markers (8 bytes, left as they are) between them.
 */
export function sealRecords(buf: Uint8Array, start: number, end: number): void {
  let p = start;
  while (p < end) {
    if (getInt(buf, p + POS_MAGIC) === BLANK_MAGIC_CODE) {
      p += END_FILE_MIN_BLANK_LENGTH;
      continue;
    }
    const size = getInt(buf, p);
    if (size < MIN_RECORD_LENGTH || p + size > end)
      throw new RmqError(ErrorCode.Internal, `no encoded record of a sane size at ${p} (size ${size})`);
    sealRecord(buf, p);
    p += size;
  }
}
