import { describe, expect, it } from "vitest";
import { ErrorCode, isRmqError, RmqError } from "../../common/errors.ts";
import { FilterExpressionError } from "./filter-expression-error.ts";
import { javaStringHashCode } from "./java-hash.ts";
import { createMessageFilter, type FilterType, type MessageFilter } from "./message-filter.ts";

interface StoredMessage {
  tag: string | undefined;
  properties: Map<string, string>;
}

function message(tag: string | undefined, props: Record<string, string> = {}): StoredMessage {
  const properties = new Map(Object.entries(props));
  if (tag !== undefined) properties.set("TAGS", tag);
  return { tag, properties };
}

/** What the pop path does: ConsumeQueue stage on tagsCode, then the message stage. */
function deliver(filter: MessageFilter, messages: StoredMessage[]): StoredMessage[] {
  return messages.filter(
    (m) =>
      filter.matchesConsumeQueueUnit(m.tag === undefined || m.tag === "" ? 0 : javaStringHashCode(m.tag)) &&
      filter.matchesMessage(m.tag, m.properties),
  );
}

describe("createMessageFilter: TAG", () => {
  const messages = [message("TagA"), message("TagB"), message("Aa"), message("BB"), message(undefined)];

  it("delivers only the subscribed tags, removing hash collisions at the message stage", () => {
    const filter = createMessageFilter({ type: "TAG", expression: "TagA || Aa" });
    expect(deliver(filter, messages).map((m) => m.tag)).toEqual(["TagA", "Aa"]);
    // "BB" passes the ConsumeQueue stage (same hash as "Aa") and is stopped at the message stage.
    expect(filter.matchesConsumeQueueUnit(javaStringHashCode("BB"))).toBe(true);
    expect(filter.matchesMessage("BB", new Map())).toBe(false);
    expect(filter.matchesConsumeQueueUnit(javaStringHashCode("TagB"))).toBe(false);
  });

  it("delivers everything, untagged messages included, for '*'", () => {
    const filter = createMessageFilter({ type: "TAG", expression: "*" });
    expect(deliver(filter, messages)).toHaveLength(messages.length);
    expect(filter.type).toBe("TAG");
    expect(filter.expression).toBe("*");
  });
});

describe("createMessageFilter: SQL92", () => {
  it("evaluates the selector on the stored properties; the ConsumeQueue stage passes everything", () => {
    const filter = createMessageFilter({ type: "SQL92", expression: "TAGS = 'TagA' AND price > 10" });
    expect(filter.matchesConsumeQueueUnit(12345)).toBe(true);
    const delivered = deliver(filter, [
      message("TagA", { price: "11" }),
      message("TagA", { price: "9" }),
      message("TagB", { price: "11" }),
      message(undefined, { price: "11" }),
      message("TagA", { price: "eleven" }),
    ]);
    expect(delivered.map((m) => [m.tag, m.properties.get("price")])).toEqual([["TagA", "11"]]);
  });

  it("shows the tag argument as TAGS when the properties lack it, and prefers the stored property", () => {
    const filter = createMessageFilter({ type: "SQL92", expression: "TAGS = 'TagA'" });
    expect(filter.matchesMessage("TagA", new Map())).toBe(true);
    expect(filter.matchesMessage("TagB", new Map())).toBe(false);
    expect(filter.matchesMessage(undefined, new Map())).toBe(false);
    expect(filter.matchesMessage("TagB", new Map([["TAGS", "TagA"]]))).toBe(true);
    // The temporary view is not left behind: a later message without a tag sees no TAGS.
    const isNull = createMessageFilter({ type: "SQL92", expression: "TAGS IS NULL" });
    expect(isNull.matchesMessage("TagA", new Map())).toBe(false);
    expect(isNull.matchesMessage(undefined, new Map())).toBe(true);
  });

  it("reuses compilations and still reports bad selectors every time", () => {
    const a = createMessageFilter({ type: "SQL92", expression: "x = 1" });
    const b = createMessageFilter({ type: "SQL92", expression: "x = 1" });
    expect(a.matchesMessage(undefined, new Map([["x", "1"]]))).toBe(true);
    expect(b.matchesMessage(undefined, new Map([["x", "1"]]))).toBe(true);
    for (let i = 0; i < 2; i++) {
      expect(() => createMessageFilter({ type: "SQL92", expression: "x = " })).toThrow(FilterExpressionError);
    }
    // Many distinct selectors (more than the cache holds) all still compile correctly.
    for (let i = 0; i < 250; i++) {
      const f = createMessageFilter({ type: "SQL92", expression: `n = ${i}` });
      expect(f.matchesMessage(undefined, new Map([["n", String(i)]]))).toBe(true);
    }
  });
});

describe("createMessageFilter: errors", () => {
  it("rejects bad expressions with ILLEGAL_FILTER_EXPRESSION", () => {
    for (const expression of ["", "a = ", "a != 1", "(a = 1", "a = 'x"]) {
      let error: unknown;
      try {
        createMessageFilter({ type: "SQL92", expression });
      } catch (e) {
        error = e;
      }
      expect(error, expression).toBeInstanceOf(RmqError);
      expect(isRmqError(error, ErrorCode.IllegalFilterExpression), expression).toBe(true);
    }
  });

  it("rejects an unknown filter type", () => {
    expect(() => createMessageFilter({ type: "CLASS" as FilterType, expression: "x" })).toThrow(
      /unknown filter type/,
    );
  });
});
