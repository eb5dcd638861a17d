// One message on its way into the CommitLog: the fields its record is encoded from, the same fields as
// the DispatchRequest that feeds the ConsumeQueue and Index once the record is confirmed (so the live
// path never re-parses the bytes it just wrote), and, for a single putMessage, its completion.
import { AppendOutcome, type AppendRecord, type AppendWaiter } from "./commitlog.ts";
import type { OffsetMsgIdEncoder } from "./message-id.ts";
import { pairsToProperties } from "./message-properties.ts";
import { type PutMessageResult, PutMessageStatus } from "./message-store-types.ts";

const EMPTY_HOST = new Uint8Array(4);
const EMPTY_BODY = new Uint8Array(0);
const NO_PAIRS: readonly string[] = [];

export class PutRecord implements AppendRecord, AppendWaiter {
  // Record fields (RecordFields).
  queueId = 0;
  flag = 0;
  queueOffset = 0;
  physicalOffset = 0;
  /** Already carries the host-v6 bits (recordSysFlag), so the dispatched value equals the stored one. */
  sysFlag = 0;
  bornTimestamp = 0;
  bornHost: Uint8Array = EMPTY_HOST;
  bornPort = 0;
  storeTimestamp = 0;
  storeHost: Uint8Array = EMPTY_HOST;
  storePort = 0;
  reconsumeTimes = 0;
  preparedTransactionOffset = 0;
  body: Uint8Array = EMPTY_BODY;
  topic = "";
  topicLength = 0;
  /** PROPERTIES as [name, value, ...], as stored (message-codec.ts RecordFields). */
  propertyPairs: readonly string[] = NO_PAIRS;
  propertiesLength = 0;
  // The rest of the DispatchRequest.
  commitLogOffset = 0;
  size = 0;
  tagsCode = 0;
  keys: string | undefined = undefined;
  uniqKey = "";
  // Completion (AppendWaiter) of a single put.
  /** SYNC_FLUSH: complete after the fdatasync covering the record (the WAIT property is not "false"). */
  waitFlush = true;
  /** Makes the offset msgId of the result. */
  msgIds: OffsetMsgIdEncoder | undefined = undefined;
  resolve: ((r: PutMessageResult) => void) | undefined = undefined;
  reject: ((e: Error) => void) | undefined = undefined;
  private decodedProperties: Map<string, string> | undefined = undefined;

  /** Decoded on first use: most dispatchers never look at them. */
  get properties(): ReadonlyMap<string, string> {
    if (this.decodedProperties === undefined) this.decodedProperties = pairsToProperties(this.propertyPairs);
    return this.decodedProperties;
  }

  result(status: PutMessageStatus): PutMessageResult {
    return {
      status,
      msgId: (this.msgIds as OffsetMsgIdEncoder).encode(this.physicalOffset),
      uniqKey: this.uniqKey,
      commitLogOffset: this.physicalOffset,
      queueOffset: this.queueOffset,
      size: this.size,
      storeTimestamp: this.storeTimestamp,
    };
  }

  complete(outcome: AppendOutcome): void {
    const resolve = this.resolve;
    this.resolve = undefined;
    this.reject = undefined;
    resolve?.(
      this.result(
        outcome === AppendOutcome.OK ? PutMessageStatus.PUT_OK : PutMessageStatus.FLUSH_DISK_TIMEOUT,
      ),
    );
  }

  fail(err: Error): void {
    const reject = this.reject;
    this.resolve = undefined;
    this.reject = undefined;
    reject?.(err);
  }
}
