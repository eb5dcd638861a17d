// The journal of FIFO consumption progress between two snapshots of consumerOrderInfo.json: one JSON
// line per change that must survive a crash — a message settled ("done": acked, dead-lettered, skipped
// by the filter), a queue's state dropped (its offset was reset), a group's state dropped (the group
// was deleted). An ack is answered only after its line is written (and, with SYNC_FLUSH, synced), so a
// kill -9 does not hand an acked FIFO message out again. Upstream keeps this state in memory and
// persists it every 10 s, redelivering after a crash; normal (non-FIFO) pop here already keeps acks in
// the revive log, and FIFO acks now hold to the same promise.
//
// Files: `{config}/consumerOrderInfo.journal.<seq>`. A snapshot rotates to the next seq first, then
// writes the snapshot (taken after the rotation), then deletes the files it covers; at start-up the
// snapshot is loaded and every remaining journal replayed in seq order (replaying a line the snapshot
// already holds changes nothing). A torn last line (a crash inside a write) is ignored with a warning;
// any other unreadable line is a corrupt file.
import * as fs from "node:fs";
import { join } from "node:path";
import { corruptFileError } from "../../common/atomic-file.ts";

export const ORDER_JOURNAL_PREFIX = "consumerOrderInfo.journal.";

export type OrderJournalRecord =
  /** ["d", "topic@group", queueId, queueOffset]: the message needs no more delivery. */
  | ["d", string, number, number]
  /** ["r", "topic@group", queueId]: the queue's ordering state was dropped. */
  | ["r", string, number]
  /** ["g", group]: every state of the group was dropped. */
  | ["g", string];

export interface JournalReplay {
  records: OrderJournalRecord[];
  /** Files read, oldest first. */
  files: string[];
  /** A torn last line was ignored (the process died inside a write). */
  tornTail: boolean;
}

function isOffset(n: unknown): n is number {
  return Number.isSafeInteger(n) && (n as number) >= 0;
}

function parseRecord(v: unknown): OrderJournalRecord | undefined {
  if (!Array.isArray(v)) return undefined;
  const [kind, a, b, c] = v as unknown[];
  if (kind === "d" && typeof a === "string" && isOffset(b) && isOffset(c) && v.length === 4)
    return ["d", a, b, c];
  if (kind === "r" && typeof a === "string" && isOffset(b) && v.length === 3) return ["r", a, b];
  if (kind === "g" && typeof a === "string" && v.length === 2) return ["g", a];
  return undefined;
}

export class ConsumerOrderJournal {
  private readonly dir: string;
  private readonly syncFlush: boolean;
  /** Seq of the file lines go to now (created on the first write). */
  private seq = 0;
  private fd: number | undefined;
  private pending: string[] = [];
  /** SYNC_FLUSH: the fdatasync in flight, and whether written lines wait for the next one. */
  private syncing: Promise<void> | undefined;
  private syncAgain = false;

  constructor(configDir: string, syncFlush: boolean) {
    this.dir = configDir;
    this.syncFlush = syncFlush;
  }

  private seqs(): number[] {
    let names: string[];
    try {
      names = fs.readdirSync(this.dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw e;
    }
    return names
      .filter((n) => n.startsWith(ORDER_JOURNAL_PREFIX) && /^\d+$/.test(n.slice(ORDER_JOURNAL_PREFIX.length)))
      .map((n) => Number(n.slice(ORDER_JOURNAL_PREFIX.length)))
      .sort((a, b) => a - b);
  }

  private path(seq: number): string {
    return join(this.dir, `${ORDER_JOURNAL_PREFIX}${seq}`);
  }

  /** Reads every journal left by the last run, oldest first; new lines go to a file after them. */
  replay(): JournalReplay {
    const seqs = this.seqs();
    const out: JournalReplay = { records: [], files: [], tornTail: false };
    for (let i = 0; i < seqs.length; i++) {
      const file = this.path(seqs[i] as number);
      out.files.push(file);
      const text = fs.readFileSync(file, "utf8");
      const lines = text.split("\n");
      const last = lines.pop() as string; // "" after a final newline; otherwise an unfinished line
      if (last.length > 0) {
        if (i !== seqs.length - 1) throw corruptFileError(file, "an unfinished line before the last journal");
        out.tornTail = true;
      }
      for (const line of lines) {
        let rec: OrderJournalRecord | undefined;
        try {
          rec = parseRecord(JSON.parse(line));
        } catch {
          rec = undefined;
        }
        if (rec === undefined)
          throw corruptFileError(file, `unreadable line ${JSON.stringify(line.slice(0, 80))}`);
        out.records.push(rec);
      }
    }
    this.seq = (seqs.at(-1) ?? 0) + 1;
    return out;
  }

  /** Queues a line; it is written by the next flush(). */
  append(rec: OrderJournalRecord): void {
    this.pending.push(`${JSON.stringify(rec)}\n`);
  }

  get hasPending(): boolean {
    return this.pending.length > 0;
  }

  /**
   * Writes the queued lines (one write: durable against a crash of the process once it returns) and,
   * with SYNC_FLUSH, resolves after an fdatasync that started after the write (one at a time; lines
   * written meanwhile share the next). Resolves at once when nothing was queued.
   */
  flush(): Promise<void> {
    if (this.pending.length === 0) return this.syncing ?? Promise.resolve();
    try {
      if (this.fd === undefined) {
        fs.mkdirSync(this.dir, { recursive: true });
        this.fd = fs.openSync(this.path(this.seq), "a");
      }
      const data = Buffer.from(this.pending.join(""));
      let done = 0;
      while (done < data.length) done += fs.writeSync(this.fd, data, done);
      // Cleared only once written: lines whose write failed go out with the next flush.
      this.pending = [];
    } catch (e) {
      return Promise.reject(e);
    }
    if (!this.syncFlush) return Promise.resolve();
    if (this.syncing === undefined) this.syncing = this.syncLoop();
    else this.syncAgain = true;
    return this.syncing;
  }

  private async syncLoop(): Promise<void> {
    try {
      do {
        this.syncAgain = false;
        const fd = this.fd;
        if (fd === undefined) break;
        await new Promise<void>((resolve, reject) =>
          fs.fdatasync(fd, (err) => (err ? reject(err) : resolve())),
        );
      } while (this.syncAgain);
    } finally {
      this.syncing = undefined;
    }
  }

  /**
   * Starts a new file for the lines that follow and returns the seq of the last one before it: a
   * snapshot taken after this call covers every line up to that seq (dropUpTo deletes them).
   */
  async rotate(): Promise<number> {
    // No fdatasync may hold the fd when it is closed. Lines still queued go to the next file: they
    // are in memory already, so the snapshot holds them too (replaying them again changes nothing).
    while (this.syncing !== undefined) await this.syncing.catch(() => {});
    if (this.fd !== undefined) {
      fs.closeSync(this.fd);
      this.fd = undefined;
    }
    return this.seq++;
  }

  /** Deletes the journal files with seq <= `seq` (a snapshot written after rotate() covers them). */
  dropUpTo(seq: number): void {
    for (const s of this.seqs()) if (s <= seq) fs.rmSync(this.path(s), { force: true });
  }

  close(): void {
    if (this.fd !== undefined) {
      fs.closeSync(this.fd);
      this.fd = undefined;
    }
  }
}
