import { describe, expect, it } from "vitest";
import type { StoredMessage } from "../store/message-codec.ts";
import {
  AckReason,
  ackMessage,
  type CheckPointRecord,
  checkPointMessage,
  parseReviveLogRecord,
} from "./revive-log-record.ts";

const HOST = { address: "127.0.0.1", port: 10911 };

function asStored(input: ReturnType<typeof checkPointMessage>): StoredMessage {
  return { properties: new Map(input.properties), body: input.body } as unknown as StoredMessage;
}

describe("revive log records", () => {
  it("round-trip a check point and an ack", () => {
    const ck: CheckPointRecord = {
      group: "g",
      topic: "%RETRY%g_t",
      originTopic: "t",
      queueId: 1,
      popTime: 1_700_000_000_000,
      invisibleTime: 30_000,
      queueOffsets: [10, 11, 14],
      commitLogOffsets: [100, 200, 900],
      brokerName: "b",
      nextOffset: 15,
    };
    const m = checkPointMessage("rmq_sys_REVIVE_LOG_c", 1, ck, 5, HOST);
    expect(m.topic).toBe("rmq_sys_REVIVE_LOG_c");
    expect(m.queueId).toBe(1);
    expect(parseReviveLogRecord(asStored(m))).toEqual({ kind: "ck", ck });
    const changed = { ...ck, topic: "t", nextOffset: undefined };
    expect(parseReviveLogRecord(asStored(checkPointMessage("r", 0, changed, 5, HOST)))).toEqual({
      kind: "ck",
      ck: changed,
    });
    const ack = { ckOffset: 9, indexes: [0, 2], reason: AckReason.REVIVE };
    expect(parseReviveLogRecord(asStored(ackMessage("r", 0, ack, 5, HOST)))).toEqual({ kind: "ack", ack });
  });

  it("rejects records that are not well-formed", () => {
    const bad = (tag: string, body: string) =>
      parseReviveLogRecord({
        properties: new Map([["TAGS", tag]]),
        body: Buffer.from(body),
      } as unknown as StoredMessage);
    expect(bad("ck", "{")).toBeUndefined();
    expect(bad("ck", "[]")).toBeUndefined();
    expect(
      bad("ck", '{"c":"g","t":"t","q":0,"pt":1,"it":1,"so":0,"d":[0],"co":[],"bn":"b"}'),
    ).toBeUndefined();
    expect(bad("ack", '{"ck":1,"i":[0],"r":"nope"}')).toBeUndefined();
    expect(bad("other", '{"ck":1,"i":[0],"r":"ack"}')).toBeUndefined();
  });
});
