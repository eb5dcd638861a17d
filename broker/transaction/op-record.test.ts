import { describe, expect, it } from "vitest";
import {
  isRemoveOp,
  opBody,
  opMessage,
  parseOpBody,
  splitOpOffsets,
  TRANSACTION_OP_MSG_MAX_SIZE,
} from "./op-record.ts";

describe("op records", () => {
  it("writes upstream's body format and reads it back, skipping malformed entries", () => {
    expect(opBody([0, 17, 123456789])).toBe("0,17,123456789,");
    expect(parseOpBody(Buffer.from("0,17,123456789,"))).toEqual([0, 17, 123456789]);
    expect(parseOpBody(Buffer.from("5,,x,-3,12345678901234567,9"))).toEqual([5, 9]);
  });

  it("splits offsets so that no body exceeds transactionOpMsgMaxSize, keeping them all in order", () => {
    const offsets = Array.from({ length: 3000 }, (_, i) => 1_000_000 + i * 7);
    const groups = splitOpOffsets(offsets);
    expect(groups.length).toBeGreaterThan(1);
    for (const g of groups) expect(opBody(g).length).toBeLessThanOrEqual(TRANSACTION_OP_MSG_MAX_SIZE);
    expect(groups.flat()).toEqual(offsets);
    expect(splitOpOffsets([])).toEqual([]);
    expect(splitOpOffsets([1, 2, 3], 4)).toEqual([[1, 2], [3]]);
  });

  it("tags op records d on the op queue 0", () => {
    const m = opMessage("4,", 1, { address: "127.0.0.1", port: 1 });
    expect(m.topic).toBe("RMQ_SYS_TRANS_OP_HALF_TOPIC");
    expect(m.queueId).toBe(0);
    expect(isRemoveOp(m.properties)).toBe(true);
    expect(parseOpBody(m.body)).toEqual([4]);
  });
});
