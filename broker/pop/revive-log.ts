// The revive topic as pop uses it: which queue the next CK goes to (round robin, as upstream), and the
// store inputs for CK and ACK records (an ACK always goes to its CK's queue).

import type { HostAddress } from "../store/host-address.ts";
import type { MessageInput } from "../store/message-store-types.ts";
import { type AckRecord, ackMessage, type CheckPointRecord, checkPointMessage } from "./revive-log-record.ts";

export class ReviveLog {
  readonly topic: string;
  readonly queueNums: number;
  private readonly host: HostAddress;
  private readonly clock: () => number;
  private next = 0;

  constructor(opts: { topic: string; queueNums: number; host: HostAddress; clock: () => number }) {
    this.topic = opts.topic;
    this.queueNums = Math.max(1, opts.queueNums);
    this.host = opts.host;
    this.clock = opts.clock;
  }

  nextQueueId(): number {
    const q = this.next;
    this.next = (this.next + 1) % this.queueNums;
    return q;
  }

  ck(reviveQid: number, ck: CheckPointRecord): MessageInput {
    return checkPointMessage(this.topic, reviveQid, ck, this.clock(), this.host);
  }

  ack(reviveQid: number, ack: AckRecord): MessageInput {
    return ackMessage(this.topic, reviveQid, ack, this.clock(), this.host);
  }
}
