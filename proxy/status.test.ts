import { describe, expect, it } from "vitest";
import { ErrorCode, RmqError } from "../common/errors.ts";
import { Code } from "../proto/gen/apache/rocketmq/v2/definition_pb.ts";
import {
  batchStatus,
  ERROR_CODE_TO_V2,
  okStatus,
  status,
  statusFromError,
  v2CodeName,
  v2CodeOf,
} from "./status.ts";

describe("status mapping", () => {
  it("maps every ErrorCode to a real v2 code", () => {
    const v2Codes = new Set<number>(Object.values(Code));
    for (const code of Object.values(ErrorCode)) {
      const v2 = ERROR_CODE_TO_V2[code];
      expect(v2, code).toBeDefined();
      expect(v2Codes.has(v2), code).toBe(true);
      expect(v2, code).not.toBe(Code.OK);
      expect(v2, code).not.toBe(Code.CODE_UNSPECIFIED);
    }
  });

  it("uses the upstream codes for the client-facing failures", () => {
    expect(v2CodeOf(ErrorCode.TopicNotFound)).toBe(Code.TOPIC_NOT_FOUND);
    expect(v2CodeOf(ErrorCode.IllegalMessageProperty)).toBe(Code.ILLEGAL_MESSAGE_PROPERTY_KEY);
    expect(v2CodeOf(ErrorCode.MessageBodyEmpty)).toBe(Code.MESSAGE_BODY_EMPTY);
    expect(v2CodeOf(ErrorCode.ClientIdRequired)).toBe(Code.CLIENT_ID_REQUIRED);
    expect(v2CodeOf(ErrorCode.IllegalArgument)).toBe(Code.BAD_REQUEST);
    expect(v2CodeOf(ErrorCode.FlushDiskTimeout)).toBe(Code.MASTER_PERSISTENCE_TIMEOUT);
    expect(v2CodeOf(ErrorCode.FlushSlaveTimeout)).toBe(Code.SLAVE_PERSISTENCE_TIMEOUT);
    expect(v2CodeOf(ErrorCode.SlaveNotAvailable)).toBe(Code.HA_NOT_AVAILABLE);
    expect(v2CodeOf(ErrorCode.IllegalFilterExpression)).toBe(Code.ILLEGAL_FILTER_EXPRESSION);
  });

  it("turns RmqErrors into their code and anything else into a short INTERNAL_SERVER_ERROR", () => {
    expect(statusFromError(new RmqError(ErrorCode.IllegalTopic, "topic x is bad"))).toMatchObject({
      code: Code.ILLEGAL_TOPIC,
      message: "topic x is bad",
    });
    const internal = statusFromError(new TypeError("x".repeat(5000)));
    expect(internal.code).toBe(Code.INTERNAL_SERVER_ERROR);
    expect(internal.message.startsWith("internal server error: TypeError")).toBe(true);
    expect(internal.message.length).toBeLessThan(600);
    expect(statusFromError("a string").code).toBe(Code.INTERNAL_SERVER_ERROR);
  });

  it("gives a batch the single distinct entry code, or MULTIPLE_RESULTS", () => {
    expect(batchStatus([okStatus(), okStatus()]).code).toBe(Code.OK);
    expect(batchStatus([status(Code.MESSAGE_BODY_EMPTY), status(Code.MESSAGE_BODY_EMPTY)]).code).toBe(
      Code.MESSAGE_BODY_EMPTY,
    );
    expect(batchStatus([okStatus(), status(Code.MESSAGE_BODY_EMPTY)]).code).toBe(Code.MULTIPLE_RESULTS);
    expect(batchStatus([]).code).toBe(Code.INTERNAL_SERVER_ERROR);
  });

  it("names codes as the enum does", () => {
    expect(v2CodeName(Code.TOPIC_NOT_FOUND)).toBe("TOPIC_NOT_FOUND");
    expect(v2CodeName(12345 as Code)).toBe("12345");
  });
});
