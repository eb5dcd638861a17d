import { describe, expect, it } from "vitest";
import { ErrorCode, isRmqError } from "../../common/errors.ts";
import { FilterExpressionError } from "./filter-expression-error.ts";
import {
  MAX_FILTER_EXPRESSION_LENGTH,
  MAX_SQL92_IN_LIST_SIZE,
  MAX_SQL92_NESTING_DEPTH,
} from "./filter-limits.ts";
import type { Sql92Node } from "./sql92-ast.ts";
import { parseSql92 } from "./sql92-parser.ts";
import { printSql92 } from "./sql92-printer.ts";

const prop = (name: string): Sql92Node => ({ kind: "property", name });
const int = (value: number): Sql92Node => ({ kind: "int", value });
const str = (value: string): Sql92Node => ({ kind: "string", value });
const cmp = (op: "=" | "<>" | ">" | ">=" | "<" | "<=", left: Sql92Node, right: Sql92Node): Sql92Node => ({
  kind: "compare",
  op,
  left,
  right,
});

/** Parse, print fully parenthesised, and check the printed form parses back to the same AST. */
function canonical(source: string): string {
  const ast = parseSql92(source);
  const printed = printSql92(ast);
  expect(parseSql92(printed), `${source} -> ${printed}`).toEqual(ast);
  return printed;
}

function parseError(source: string): FilterExpressionError {
  try {
    parseSql92(source);
  } catch (e) {
    if (e instanceof FilterExpressionError) return e;
    throw e;
  }
  throw new Error(`expected ${JSON.stringify(source)} to be rejected`);
}

describe("parseSql92: valid selectors", () => {
  it("builds the AST of a simple comparison", () => {
    expect(parseSql92("a = 1")).toEqual(cmp("=", prop("a"), int(1)));
    expect(parseSql92("TAGS <> 'x'")).toEqual(cmp("<>", prop("TAGS"), str("x")));
  });

  it("gives AND precedence over OR and chains them n-ary, left to right", () => {
    expect(parseSql92("a = 1 OR b = 2 AND c = 3")).toEqual({
      kind: "or",
      operands: [
        cmp("=", prop("a"), int(1)),
        { kind: "and", operands: [cmp("=", prop("b"), int(2)), cmp("=", prop("c"), int(3))] },
      ],
    });
    expect(canonical("a=1 and b<>4 And c>5 AND d<=4")).toBe(
      "((a = 1) AND (b <> 4) AND (c > 5) AND (d <= 4))",
    );
    expect(canonical("(a = 1 OR b = 2) AND c = 3")).toBe("(((a = 1) OR (b = 2)) AND (c = 3))");
    expect(canonical("a = 1 AND (b = 2 AND c = 3)")).toBe("((a = 1) AND ((b = 2) AND (c = 3)))");
  });

  it("binds NOT tighter than comparisons, as upstream's grammar does", () => {
    expect(parseSql92("NOT a = 1")).toEqual(cmp("=", { kind: "not", operand: prop("a") }, int(1)));
    expect(canonical("NOT (a = 1)")).toBe("(NOT (a = 1))");
    expect(canonical("NOT a = 1 AND NOT b")).toBe("(((NOT a) = 1) AND (NOT b))");
    expect(canonical("NOT NOT a")).toBe("(NOT (NOT a))");
  });

  it("parses every operator form", () => {
    expect(canonical("a IS NULL")).toBe("(a IS NULL)");
    expect(canonical("a is not null")).toBe("(a IS NOT NULL)");
    expect(canonical("a in ('3', '4', '5')")).toBe("(a IN ('3', '4', '5'))");
    expect(canonical("a NOT IN ('x')")).toBe("(a NOT IN ('x'))");
    expect(canonical("a between 2 and 10")).toBe("(a BETWEEN 2 AND 10)");
    expect(canonical("a not between -5 and 1.5")).toBe("(a NOT BETWEEN (-5) AND 1.5)");
    expect(canonical("a contains 'x' and b not startswith 'y' and c endswith 'z'")).toBe(
      "((a CONTAINS 'x') AND (b NOT STARTSWITH 'y') AND (c ENDSWITH 'z'))",
    );
    expect(canonical("a > b")).toBe("(a > b)");
    expect(canonical("a >= 1 AND a < 2 AND a <= 3")).toBe("((a >= 1) AND (a < 2) AND (a <= 3))");
  });

  it("keeps the Java type of numeric literals", () => {
    expect(parseSql92("a = 2147483647")).toEqual(cmp("=", prop("a"), int(2147483647)));
    expect(parseSql92("a = 2147483648")).toEqual(cmp("=", prop("a"), { kind: "long", value: 2147483648n }));
    expect(parseSql92("a = 5L")).toEqual(cmp("=", prop("a"), int(5))); // L does not force long
    expect(parseSql92("a = 9223372036854775807")).toEqual(
      cmp("=", prop("a"), { kind: "long", value: 9223372036854775807n }),
    );
    expect(parseSql92("a > 1.")).toEqual(cmp(">", prop("a"), { kind: "double", value: 1 }));
    expect(parseSql92("a > 3.1E10")).toEqual(cmp(">", prop("a"), { kind: "double", value: 3.1e10 }));
    expect(canonical("a > 5.")).toBe("(a > 1.0)".replace("1.0", "5.0"));
    expect(canonical("a > 1e21")).toBe("(a > 1e+21)");
  });

  it("treats unary minus as a node, unary plus and parentheses as nothing", () => {
    expect(parseSql92("a > -5")).toEqual(cmp(">", prop("a"), { kind: "negate", operand: int(5) }));
    expect(parseSql92("+a > +(5)")).toEqual(cmp(">", prop("a"), int(5)));
    expect(parseSql92("((a)) IN ('x')")).toEqual({
      kind: "in",
      property: "a",
      values: ["x"],
      negated: false,
    });
    expect(canonical("a > --5")).toBe("(a > (-(-5)))");
  });

  it("accepts literals and bare properties as whole selectors", () => {
    expect(parseSql92("TRUE")).toEqual({ kind: "boolean", value: true });
    expect(parseSql92("null")).toEqual({ kind: "null" });
    expect(parseSql92("a")).toEqual(prop("a"));
    expect(canonical("a AND b OR NOT c")).toBe("((a AND b) OR (NOT c))");
  });

  it("allows the chains upstream allows", () => {
    expect(canonical("a > 1 = TRUE")).toBe("((a > 1) = TRUE)");
    expect(canonical("a = b = c")).toBe("((a = b) = c)");
    expect(canonical("a IS NULL IS NULL")).toBe("((a IS NULL) IS NULL)");
    expect(canonical("1 = TRUE")).toBe("(1 = TRUE)");
    expect(canonical("TRUE = FALSE")).toBe("(TRUE = FALSE)");
    expect(canonical("-TRUE IS NULL")).toBe("((-TRUE) IS NULL)");
    expect(canonical("a CONTAINS 'x' CONTAINS 'y'")).toBe("((a CONTAINS 'x') CONTAINS 'y')");
  });

  it("decodes quotes in string literals and re-encodes them when printing", () => {
    expect(parseSql92("TAGS is not null and TAGS='''''tag'''''")).toEqual({
      kind: "and",
      operands: [
        { kind: "isNull", operand: prop("TAGS"), negated: true },
        cmp("=", prop("TAGS"), str("''tag''")),
      ],
    });
    expect(canonical("a = 'it''s'")).toBe("(a = 'it''s')");
  });

  it("ignores comments and line breaks", () => {
    expect(canonical("a = 1 -- the first\nAND /* and */ b = 2")).toBe("((a = 1) AND (b = 2))");
  });
});

describe("parseSql92: invalid selectors", () => {
  const cases: [string, number, RegExp][] = [
    // empty
    ["", 0, /empty expression/],
    ["   ", 0, /empty expression/],
    ["/* nothing */", 0, /empty expression/],
    // unbalanced parentheses
    ["(a = 1", 6, /expected '\)' to close the '\(' at position 0, found end of expression/],
    ["((a = 1)", 8, /expected '\)' to close the '\(' at position 0/],
    ["a = 1)", 5, /unexpected '\)' after a complete expression/],
    ["()", 1, /expected a property, a literal/],
    // unknown operators
    ["a != 1", 2, /unexpected character '!'/],
    ["a == 1", 3, /expected a property, a literal, '\(', NOT or '-', found '='/],
    ["a LIKE 'x%'", 2, /unexpected identifier LIKE after a complete expression/],
    [
      "a NOT LIKE 'x'",
      6,
      /expected CONTAINS, STARTSWITH, ENDSWITH, BETWEEN or IN after NOT, found identifier LIKE/,
    ],
    ["a IS b", 5, /expected NULL or NOT NULL after IS, found identifier b/],
    ["a IS NOT b", 9, /expected NULL after IS NOT/],
    // unterminated string
    ["a = 'x", 4, /unterminated string literal/],
    // trailing garbage (upstream would silently ignore it; we reject)
    ["a = 1 b = 2", 6, /unexpected identifier b after a complete expression/],
    ["a = 1 'x", 6, /unexpected string literal|unterminated/],
    ["a = 1 2", 6, /unexpected number 2/],
    ["a = 1 AND", 9, /found end of expression/],
    ["a = 0L", 5, /unexpected identifier L/],
    // incomplete operators
    ["a >", 3, /found end of expression/],
    ["a BETWEEN 1", 11, /expected AND between the bounds of BETWEEN/],
    ["a IN ()", 6, /expected a string literal in the IN list, found '\)'/],
    ["a IN ('x',)", 10, /expected a string literal in the IN list/],
    ["a IN ('x' 'y')", 10, /expected ',' or '\)' in the IN list/],
    ["a IN 'x'", 5, /expected '\(' after IN/],
    ["a CONTAINS b", 11, /expected a string literal after CONTAINS, found identifier b/],
    ["a NOT CONTAINS 123", 15, /expected a string literal after NOT CONTAINS/],
    // semantic checks upstream makes while building the tree
    ["5", 0, /expected a boolean expression as operand of the whole selector, found a number/],
    ["'x'", 0, /found a string literal/],
    ["-a", 0, /found a negation/],
    ["a OR 5", 5, /expected a boolean expression as operand of OR, found a number/],
    ["NOT 'x'", 4, /operand of NOT, found a string literal/],
    ["a = NULL", 4, /NULL cannot be compared with =/],
    ["NULL <> a", 0, /NULL cannot be compared with <>/],
    ["TRUE = 1", 7, /TRUE cannot be compared with a number/],
    ["FALSE = 'x'", 8, /FALSE cannot be compared with a string literal/],
    ["a > 'x'", 4, /a string literal cannot be an operand of >/],
    ["a < TRUE", 4, /TRUE cannot be an operand of </],
    ["a >= NULL", 5, /NULL cannot be an operand of >=/],
    ["NOT a > 1", 0, /a boolean expression cannot be an operand of >/],
    ["(a = 1) > 2", 0, /a boolean expression cannot be an operand of >/],
    ["a BETWEEN 'a' AND 'z'", 10, /a string literal cannot be an operand of BETWEEN/],
    ["a BETWEEN 10 AND 2", 10, /low bound is greater than the high bound/],
    ["a BETWEEN 1.5 AND 1", 10, /low bound is greater than the high bound/],
    ["a NOT BETWEEN 1 AND NULL", 20, /NULL cannot be an operand of NOT BETWEEN/],
    ["'x' IN ('x')", 0, /IN needs a property on its left, found a string literal/],
    ["NOT a IN ('x')", 0, /IN needs a property on its left, found a boolean expression/],
    ["-a NOT IN ('x')", 0, /NOT IN needs a property/],
    ["a IN (1, 2)", 6, /expected a string literal in the IN list, found number 1/],
    // literal ranges
    ["a > 9223372036854775808", 4, /out of range/],
    ["a > 1e400", 4, /out of range/],
    ["a > 0.0", 4, /below the smallest floating literal/],
    ["a > 1e-400", 4, /below the smallest floating literal/],
  ];

  for (const [source, position, message] of cases) {
    it(`rejects ${JSON.stringify(source)}`, () => {
      const e = parseError(source);
      expect(e.message).toMatch(message);
      expect(e.position).toBe(position);
      expect(e.message).toContain(`position ${position}`);
      expect(isRmqError(e, ErrorCode.IllegalFilterExpression)).toBe(true);
      expect(e.code).toBe("ILLEGAL_FILTER_EXPRESSION");
    });
  }

  it("accepts a reversed NOT BETWEEN and bounds that are not both literals, as upstream", () => {
    expect(() => parseSql92("a NOT BETWEEN 10 AND 2")).not.toThrow();
    expect(() => parseSql92("a BETWEEN 5 AND -5")).not.toThrow();
    expect(() => parseSql92("a BETWEEN b AND 2")).not.toThrow();
    expect(() => parseSql92("a > 4.9e-324")).not.toThrow(); // Double.MIN_VALUE itself is fine
    expect(() => parseSql92("a > -9223372036854775807")).not.toThrow();
  });
});

describe("parseSql92: limits", () => {
  it("caps the expression length", () => {
    const padded = `a = 1${" ".repeat(MAX_FILTER_EXPRESSION_LENGTH - 5)}`;
    expect(() => parseSql92(padded)).not.toThrow();
    const e = parseError(`${padded} `);
    expect(e.message).toMatch(/at most 65536/);
    expect(e.position).toBe(-1);
  });

  it("caps the IN list size", () => {
    const list = (n: number) => Array.from({ length: n }, (_, i) => `'v${i}'`).join(",");
    expect(() => parseSql92(`a IN (${list(MAX_SQL92_IN_LIST_SIZE)})`)).not.toThrow();
    const e = parseError(`a IN (${list(MAX_SQL92_IN_LIST_SIZE + 1)})`);
    expect(e.message).toMatch(/more than 1024 values/);
    expect(e.position).toBeGreaterThan(6);
  });

  it("caps nesting through parentheses, prefix operators and chained comparisons", () => {
    const depth = MAX_SQL92_NESTING_DEPTH;
    expect(() => parseSql92(`${"(".repeat(depth)}a = 1${")".repeat(depth)}`)).not.toThrow();
    expect(parseError(`${"(".repeat(depth + 1)}a = 1${")".repeat(depth + 1)}`).message).toMatch(
      /nests deeper than 100/,
    );
    expect(parseError(`${"NOT ".repeat(depth + 1)}a`).message).toMatch(/nests deeper/);
    expect(parseError(`a > ${"-".repeat(depth + 1)}1`).message).toMatch(/nests deeper/);
    expect(parseError(`a${" = TRUE".repeat(depth + 1)}`).message).toMatch(/nests deeper/);
    // Long flat chains are not nesting.
    const flat = Array.from({ length: 5000 }, (_, i) => `a = ${i}`).join(" OR ");
    const ast = parseSql92(flat);
    expect(ast.kind === "or" && ast.operands.length).toBe(5000);
  });

  it("never overflows the stack on hostile input", () => {
    expect(parseError("(".repeat(60_000)).message).toMatch(/nests deeper/);
    expect(parseError("-".repeat(60_000)).message).toMatch(/nests deeper|position/);
  });
});
