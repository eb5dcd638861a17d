// Where the fixed fields of a CommitLog record sit, and its magic codes (message-codec.ts describes the
// whole layout). Kept apart from the codec so the CommitLog writer thread (commitlog-writer-worker.ts),
// which seals records, loads nothing else.

export const MESSAGE_MAGIC_CODE_V1 = 0xdaa320a7 | 0; // -626843481
export const MESSAGE_MAGIC_CODE_V2 = 0xdaa320ab | 0; // -626843477
export const BLANK_MAGIC_CODE = 0xcbd43194 | 0;
/** A segment always keeps room for a blank marker (upstream END_FILE_MIN_BLANK_LENGTH). */
export const END_FILE_MIN_BLANK_LENGTH = 8;
export const RECORD_CRC_LENGTH = 4;
/** Smallest possible record: IPv4 hosts, V1, empty body/topic/properties, plus the trailer (91 + 4). */
export const MIN_RECORD_LENGTH = 95;

export const POS_MAGIC = 4;
export const POS_BODYCRC = 8;
export const POS_QUEUEID = 12;
export const POS_FLAG = 16;
export const POS_QUEUEOFFSET = 20;
export const POS_PHYSICALOFFSET = 28;
export const POS_SYSFLAG = 36;
export const POS_BORNTIMESTAMP = 40;
export const POS_BORNHOST = 48;
/**
 * BODYLEN's position with IPv4 hosts, less the two host address lengths: BORNHOST + born port 4 +
 * STORETIMESTAMP 8 + store port 4 + RECONSUMETIMES 4 + PREPARED TX OFFSET 8.
 */
export const POS_BODYLEN_WITHOUT_HOSTS = POS_BORNHOST + 4 + 8 + 4 + 4 + 8;
