// Feeds every index built from the CommitLog: the ConsumeQueues, the key Index, and whatever registers
// later (timer, transactions). The live path hands over a confirmed batch's records, built from the
// fields the append already had; recovery hands over the records it parsed from the bytes. Both go
// through dispatchBatch, so recovery rebuilds exactly what the live path built.

import type { Dispatcher, DispatchRequest } from "./dispatch.ts";

/** What the dispatcher needs from the key Index (broker/store/index): a Dispatcher with a durable point. */
export interface IndexDispatcher extends Dispatcher {
  readonly durableMaxPhyOffset: number;
}

function dispatchAll(d: Dispatcher, reqs: readonly DispatchRequest[]): void {
  if (d.dispatchBatch !== undefined) d.dispatchBatch(reqs);
  else for (const r of reqs) d.dispatch(r);
}

export class CommitLogDispatcher {
  private readonly consumeQueues: Dispatcher;
  private readonly index: IndexDispatcher | undefined;
  private readonly others: Dispatcher[] = [];
  /** Every record below this CommitLog offset has been dispatched. */
  dispatchedOffset = 0;
  /** Store timestamp of the last record dispatched. */
  lastStoreTimestamp = 0;

  constructor(consumeQueues: Dispatcher, index: IndexDispatcher | undefined) {
    this.consumeQueues = consumeQueues;
    this.index = index;
  }

  /** Registers another index fed from the CommitLog (it sees records from now on). */
  addDispatcher(d: Dispatcher): void {
    this.others.push(d);
  }

  /**
   * Feeds verified records in CommitLog order; `end` is where the dispatched log now ends (past a blank
   * marker, the next segment). The Index gets only records at or after `indexFrom` (recovery: the ones
   * it does not durably hold already); the Index itself leaves ROLLBACK transaction records out.
   */
  dispatchBatch(reqs: readonly DispatchRequest[], end: number, indexFrom = 0): void {
    if (reqs.length > 0) {
      dispatchAll(this.consumeQueues, reqs);
      if (this.index !== undefined) {
        let i = 0;
        while (i < reqs.length && (reqs[i] as DispatchRequest).commitLogOffset < indexFrom) i++;
        if (i < reqs.length) dispatchAll(this.index, i === 0 ? reqs : reqs.slice(i));
      }
      for (const d of this.others) dispatchAll(d, reqs);
      this.lastStoreTimestamp = (reqs[reqs.length - 1] as DispatchRequest).storeTimestamp;
    }
    this.dispatchedOffset = end;
  }
}
