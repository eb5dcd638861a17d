// Turns CommitLog record bytes into DispatchRequests and feeds every index built from the log: the
// ConsumeQueues, the key Index, and whatever registers later (timer, transactions). The live path (a
// confirmed batch) and recovery (a verified scan) both go through dispatchRecord.

import type { Logger } from "../../common/logger.ts";
import type { Piece } from "./commitlog.ts";
import type { Dispatcher, DispatchRequest } from "./dispatch.ts";
import { parseRecord, type RecordView, viewToDispatchRequest } from "./message-codec.ts";
import { MessageSysFlag, transactionType } from "./message-sysflag.ts";

/** What the dispatcher needs from the key Index (broker/store/index): a Dispatcher with a durable point. */
export interface IndexDispatcher extends Dispatcher {
  readonly durableMaxPhyOffset: number;
}

export class CommitLogDispatcher {
  private readonly consumeQueues: Dispatcher;
  private readonly index: IndexDispatcher | undefined;
  private readonly others: Dispatcher[] = [];
  private readonly logger: Logger;
  /** Every record below this CommitLog offset has been dispatched. */
  dispatchedOffset = 0;
  /** Store timestamp of the last record dispatched. */
  lastStoreTimestamp = 0;

  constructor(consumeQueues: Dispatcher, index: IndexDispatcher | undefined, logger: Logger) {
    this.consumeQueues = consumeQueues;
    this.index = index;
    this.logger = logger;
  }

  /** Registers another index fed from the CommitLog (it sees records from now on). */
  addDispatcher(d: Dispatcher): void {
    this.others.push(d);
  }

  /** Feeds one verified record; `toIndex` is false when the Index already holds it (recovery). */
  dispatchRecord(buf: Buffer, view: RecordView, toIndex: boolean): DispatchRequest {
    const req = viewToDispatchRequest(buf, view);
    this.consumeQueues.dispatch(req);
    if (
      toIndex &&
      this.index !== undefined &&
      transactionType(req.sysFlag) !== MessageSysFlag.TRANSACTION_ROLLBACK_TYPE
    ) {
      this.index.dispatch(req);
    }
    for (const d of this.others) d.dispatch(req);
    this.dispatchedOffset = view.physicalOffset + view.size;
    this.lastStoreTimestamp = view.storeTimestamp;
    return req;
  }

  /** Live path: every record of a confirmed batch, in order (blank markers are skipped). */
  dispatchPieces(pieces: readonly Piece[]): void {
    for (const piece of pieces) {
      const fileEnd = piece.file.fileEnd;
      for (const span of piece.spans) {
        let p = span.start;
        let g = span.offset;
        while (p < span.end) {
          const res = parseRecord(span.buf, p, span.end, { verifyCrc: false, segmentRemaining: fileEnd - g });
          if (res.kind === "record") {
            this.dispatchRecord(span.buf, res.view, true);
            p += res.view.size;
            g += res.view.size;
          } else {
            if (res.kind === "blank") this.dispatchedOffset = fileEnd;
            else this.logger.error({ offset: g, result: res }, "unparseable record in a confirmed batch");
            break;
          }
        }
      }
    }
  }
}
