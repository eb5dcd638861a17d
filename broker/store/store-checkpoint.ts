// `{root}/checkpoint`: how far the CommitLog, ConsumeQueues and Index are known durable, so recovery
// knows where to start scanning. Upstream's fields (physic/logics/index timestamps, master flushed and
// confirm offsets) plus ours: the synced CommitLog end and the CommitLog offset below which every
// record's ConsumeQueue unit is synced.
//
// Torn writes are caught, not avoided: the file has two slots, written alternately, each with a
// sequence number and a CRC32; the valid slot with the highest sequence wins. So a crash while writing
// one slot leaves the previous checkpoint readable, and no rename (or directory fsync) is needed.
import * as fs from "node:fs";
import { dirname } from "node:path";
import { promisify } from "node:util";
import { crc32 } from "node:zlib";
import { readLong, writeLong } from "./message-codec.ts";
import { type FileIo, syncDirectory, writeFully } from "./store-io.ts";

const openAsync = promisify(fs.open);
const closeAsync = promisify(fs.close);

const CHECKPOINT_MAGIC = 0x524d5143; // "RMQC"
const CHECKPOINT_VERSION = 1;
const SLOT_SIZE = 128;
const SLOT_STRIDE = 512;
const FILE_SIZE = 1024;
const FIELDS = [
  "physicMsgTimestamp",
  "logicsMsgTimestamp",
  "indexMsgTimestamp",
  "masterFlushedOffset",
  "confirmPhyOffset",
  "commitLogFlushedOffset",
  "dispatchedPhyOffset",
] as const;
const CRC_POS = SLOT_SIZE - 4;

export interface CheckpointData {
  /** Store timestamp of the last synced CommitLog record. */
  physicMsgTimestamp: number;
  /** Store timestamp of the last record whose ConsumeQueue unit is synced. */
  logicsMsgTimestamp: number;
  indexMsgTimestamp: number;
  masterFlushedOffset: number;
  confirmPhyOffset: number;
  /** CommitLog bytes below this were synced. */
  commitLogFlushedOffset: number;
  /** Every record below this CommitLog offset has its ConsumeQueue unit synced. */
  dispatchedPhyOffset: number;
}

export type CheckpointState = "valid" | "missing" | "torn";

function emptyData(): CheckpointData {
  return {
    physicMsgTimestamp: 0,
    logicsMsgTimestamp: 0,
    indexMsgTimestamp: 0,
    masterFlushedOffset: 0,
    confirmPhyOffset: 0,
    commitLogFlushedOffset: 0,
    dispatchedPhyOffset: 0,
  };
}

export class StoreCheckpoint {
  readonly path: string;
  data: CheckpointData;
  private readonly fd: number;
  private readonly io: FileIo;
  private seq: number;
  private writing: Promise<void> = Promise.resolve();

  private constructor(path: string, fd: number, io: FileIo, data: CheckpointData, seq: number) {
    this.path = path;
    this.fd = fd;
    this.io = io;
    this.data = data;
    this.seq = seq;
  }

  /** Opens (creating when missing) and reads the newest valid slot. */
  static async open(
    path: string,
    io: FileIo,
  ): Promise<{ checkpoint: StoreCheckpoint; state: CheckpointState }> {
    let existed = true;
    try {
      await fs.promises.access(path);
    } catch {
      existed = false;
    }
    const fd = await openAsync(path, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o644);
    const buf = Buffer.alloc(FILE_SIZE);
    const n = await io.read(fd, buf, 0, FILE_SIZE, 0);
    let best: { seq: number; data: CheckpointData } | undefined;
    for (const base of [0, SLOT_STRIDE]) {
      const slot = base + SLOT_SIZE <= n ? decodeSlot(buf.subarray(base, base + SLOT_SIZE)) : undefined;
      if (slot !== undefined && (best === undefined || slot.seq > best.seq)) best = slot;
    }
    if (!existed) await syncDirectory(io, dirname(path));
    const state: CheckpointState = best !== undefined ? "valid" : existed && n > 0 ? "torn" : "missing";
    return {
      checkpoint: new StoreCheckpoint(path, fd, io, best?.data ?? emptyData(), best?.seq ?? 0),
      state,
    };
  }

  /** Writes the current data into the older slot and syncs it. */
  flush(): Promise<void> {
    const run = async (): Promise<void> => {
      this.seq++;
      const slot = Buffer.alloc(SLOT_SIZE);
      slot.writeUInt32BE(CHECKPOINT_MAGIC, 0);
      slot.writeInt32BE(CHECKPOINT_VERSION, 4);
      writeLong(slot, 8, this.seq);
      FIELDS.forEach((f, i) => {
        writeLong(slot, 16 + i * 8, this.data[f]);
      });
      slot.writeUInt32BE(crc32(slot.subarray(0, CRC_POS)), CRC_POS);
      await writeFully(this.io, this.fd, [slot], (this.seq % 2) * SLOT_STRIDE);
      await this.io.fdatasync(this.fd);
    };
    const p = this.writing.then(run, run);
    this.writing = p.catch(() => {});
    return p;
  }

  async close(): Promise<void> {
    await this.writing;
    await closeAsync(this.fd);
  }
}

function decodeSlot(b: Buffer): { seq: number; data: CheckpointData } | undefined {
  if (b.readUInt32BE(0) !== CHECKPOINT_MAGIC || b.readInt32BE(4) !== CHECKPOINT_VERSION) return undefined;
  if (crc32(b.subarray(0, CRC_POS)) !== b.readUInt32BE(CRC_POS)) return undefined;
  const data = emptyData();
  FIELDS.forEach((f, i) => {
    data[f] = readLong(b, 16 + i * 8);
  });
  return { seq: readLong(b, 8), data };
}
