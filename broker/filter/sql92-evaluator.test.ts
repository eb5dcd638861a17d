import { describe, expect, it } from "vitest";
import { compileSql92, type Sql92Outcome } from "./sql92-evaluator.ts";

type Props = Record<string, string>;
const T: Sql92Outcome = "TRUE";
const F: Sql92Outcome = "FALSE";
const U: Sql92Outcome = "UNKNOWN";
const E: Sql92Outcome = "ERROR";

function outcome(expression: string, props: Props = {}): Sql92Outcome {
  return compileSql92(expression).evaluateOutcome(new Map(Object.entries(props)));
}

/**
 * [selector, properties, outcome]. Every row was also run through upstream's own filter module
 * (apache/rocketmq 5.3.4-SNAPSHOT, SelectorParser + MessageEvaluationContext semantics) on OpenJDK 17,
 * which gave the same outcome (ERROR = upstream throws while evaluating).
 */
type Row = [string, Props, Sql92Outcome];

function table(rows: Row[]): void {
  for (const [expression, props, expected] of rows) {
    it(`${expression}  with ${JSON.stringify(props)}  is ${expected}`, () => {
      expect(outcome(expression, props)).toBe(expected);
      // evaluate() is the broker's yes/no: only TRUE matches.
      expect(compileSql92(expression).evaluate(new Map(Object.entries(props)))).toBe(expected === T);
    });
  }
}

describe("three-valued logic", () => {
  const values = { TRUE: T, FALSE: F, NULL: U } as const;
  const rows: Row[] = [];
  for (const [x, vx] of Object.entries(values)) {
    rows.push([`NOT ${x}`, {}, vx === U ? U : vx === T ? F : T]);
    for (const [y, vy] of Object.entries(values)) {
      const and = vx === F || vy === F ? F : vx === U || vy === U ? U : T;
      const or = vx === T || vy === T ? T : vx === U || vy === U ? U : F;
      rows.push([`${x} AND ${y}`, {}, and]);
      rows.push([`${x} OR ${y}`, {}, or]);
    }
  }
  table(rows);
});

describe("missing properties", () => {
  table([
    ["a = 1", {}, U],
    ["a <> 1", {}, U],
    ["NOT (a = 1)", {}, U],
    ["a > 1", {}, U],
    ["a <= 1", {}, U],
    ["a BETWEEN 1 AND 2", {}, U],
    ["a NOT BETWEEN 1 AND 2", {}, U],
    ["a IN ('x')", {}, U],
    ["a NOT IN ('x')", {}, U],
    ["a IS NULL", {}, T],
    ["a IS NOT NULL", {}, F],
    ["NOT (a IS NULL)", {}, F],
    // CONTAINS & co. give FALSE, not UNKNOWN, on a missing value -- so their NOT forms are FALSE too,
    // while NOT (x CONTAINS ...) is TRUE.
    ["a CONTAINS 'x'", {}, F],
    ["a NOT CONTAINS 'x'", {}, F],
    ["NOT (a CONTAINS 'x')", {}, T],
    ["a STARTSWITH 'x'", {}, F],
    ["a NOT ENDSWITH 'x'", {}, F],
    // upstream's asymmetric NULL handling in =
    ["a = b", {}, T],
    ["a = b", { a: "1" }, F],
    ["a = b", { b: "1" }, U],
    ["a <> b", {}, F],
    ["a <> b", { a: "1" }, T],
    ["a <> b", { b: "1" }, U],
    ["1 = a", {}, F],
    // a property used as a condition: a present string is not a boolean
    ["a", {}, U],
    ["a", { a: "true" }, F],
    ["NOT a", { a: "x" }, T],
    ["a OR b = '1'", { b: "1" }, T],
    ["a IS NULL OR a = 'hello'", {}, T],
    ["a IS NULL OR a = 'hello'", { a: "hello" }, T],
    ["a IS NULL OR a = 'hello'", { a: "abc" }, F],
    ["a IS NOT NULL AND a = 'hello'", {}, F],
  ]);
});

describe("numbers and strings", () => {
  table([
    // a string meets an int literal: Integer.valueOf
    ["a = 3", { a: "3" }, T],
    ["a = 3", { a: "+3" }, T],
    ["a = 3", { a: "003" }, T],
    ["a = 3", { a: "\u0663" }, T], // Arabic-Indic three: Java accepts Unicode digits for ints
    ["a = 3", { a: "4" }, F],
    ["a = 3", { a: "3.0" }, E],
    ["a = 3", { a: " 3" }, E],
    ["a = 3", { a: "abc" }, E],
    ["a = 3", { a: "" }, E],
    ["a > 5", { a: "5.5" }, E],
    ["a > 5", { a: "3000000000" }, E], // beyond int
    ["3 < a", { a: "4" }, T],
    // long literal: Long.valueOf
    ["a = 3000000000", { a: "3000000000" }, T],
    ["a < 3000000000", { a: "5" }, T],
    ["a < 9223372036854775807", { a: "9223372036854775806" }, T],
    ["a = 9223372036854775807", { a: "9223372036854775806" }, F],
    // floating literal: Double.valueOf
    ["a = 3.0", { a: "3" }, T],
    ["a > 5.0", { a: "5.5" }, T],
    ["a > 3.14", { a: "3.1415" }, T],
    ["a > 3.1E10", { a: "31415000000" }, T],
    ["a > 5.0", { a: " 7 " }, T],
    ["a > 5.0", { a: "1e3" }, T],
    ["a > 5.0", { a: "6f" }, T],
    ["a > 5.0", { a: "x" }, E],
    ["a > 1.5", { a: "NaN" }, T], // Double.compareTo: NaN is greater than everything
    ["a < 1.5", { a: "-Infinity" }, T],
    // negative literals are unary minus applied to a literal
    ["a > -5", { a: "-4" }, T],
    ["a = -2147483648", { a: "-2147483648" }, T],
    ["-a = 5", { a: "-5" }, U], // minus on a property gives NULL
    // string against string: = compares text; > etc. compare as doubles
    ["a = '3'", { a: "3" }, T],
    ["a = '3'", { a: "3.0" }, F],
    ["a = b", { a: "3.14", b: "3.14" }, T],
    ["a <> b", { a: "3.14", b: "3.141" }, T],
    ["a > b", { a: "20", b: "10" }, T],
    ["a > b", { a: "10", b: "20" }, F],
    ["a > b", { a: "9", b: "10" }, F], // numeric, not text order
    ["a > b", { a: "abc", b: "1" }, E],
    ["a BETWEEN b AND c", { a: "3.14", b: "up", c: "low" }, E],
    // string against TRUE/FALSE: Boolean.valueOf
    ["a = TRUE", { a: "true" }, T],
    ["a = TRUE", { a: "TRUE" }, T],
    ["a = TRUE", { a: "yes" }, F],
    ["a = FALSE", { a: "yes" }, T],
    ["a = TRUE OR b = FALSE", { a: "true", b: "false" }, T],
    ["a = TRUE OR b = FALSE", { a: "false", b: "true" }, F],
    ["TRUE = a", { a: "true" }, E], // upstream casts the Boolean to String
    // other mixes never equal
    ["1 = TRUE", {}, F],
    ["(a > 1) = 1", { a: "2" }, F],
    ["(a > 1) = TRUE", { a: "2" }, T],
    ["(a > 1) = b", { a: "2", b: "true" }, E],
    // int, long and double literals widen to each other
    ["1 = 1.0", {}, T],
    ["2147483648 > 2147483647", {}, T],
    ["2147483648 = 2147483648.0", {}, T],
  ]);
});

describe("an evaluation error makes the whole selector not match", () => {
  table([
    ["a > 5 OR b = 'x'", { a: "abc", b: "x" }, E],
    ["NOT (a > 5)", { a: "abc" }, E],
    ["a > 5 IS NULL", { a: "abc" }, E],
    // ...unless short-circuiting skips the failing part, as upstream evaluates left to right
    ["b = 'x' OR a > 5", { a: "abc", b: "x" }, T],
    ["b = 'y' AND a > 5", { a: "abc", b: "x" }, F],
    ["a > 5 AND b = 'y'", { a: "abc", b: "x" }, E],
    // the right side of a relational comparison is not read when the left is NULL
    ["c > -(a > 5)", { a: "abc" }, U],
    ["c > -(a > 5)", { a: "abc", c: "1" }, E],
  ]);
});

describe("IN, BETWEEN, IS NULL, CONTAINS, STARTSWITH, ENDSWITH", () => {
  table([
    ["a IN ('3', '4', '5')", { a: "4" }, T],
    ["a IN ('3', '4', '5')", { a: "8" }, F],
    ["a IN ('3')", { a: "3.0" }, F], // exact string membership
    ["a NOT IN ('3', '4', '5')", { a: "8" }, T],
    ["a NOT IN ('3', '4', '5')", { a: "3" }, F],
    ["a IN ('it''s')", { a: "it's" }, T],
    ["a BETWEEN 2 AND 10", { a: "2" }, T],
    ["a BETWEEN 2 AND 10", { a: "10" }, T],
    ["a BETWEEN 2 AND 10", { a: "11" }, F],
    ["a BETWEEN 2 AND 10", { a: "1" }, F],
    ["a BETWEEN 2 AND 10", { a: "2.5" }, E],
    ["a BETWEEN 2.0 AND 10", { a: "2.5" }, E], // a <= 10 converts "2.5" with Integer.valueOf
    ["a BETWEEN 2.0 AND 10.0", { a: "2.5" }, T],
    ["a NOT BETWEEN 2 AND 10", { a: "1" }, T],
    ["a NOT BETWEEN 2 AND 10", { a: "11" }, T],
    ["a NOT BETWEEN 2 AND 10", { a: "5" }, F],
    ["a BETWEEN 5 AND -5", { a: "0" }, F],
    ["a IS NULL", { a: "" }, F],
    ["a IS NOT NULL", { a: "" }, T],
    ["a CONTAINS 'x'", { a: "axb" }, T],
    ["a STARTSWITH 'ax'", { a: "axb" }, T],
    ["a ENDSWITH 'xb'", { a: "axb" }, T],
    ["a NOT CONTAINS 'x'", { a: "axb" }, F],
    ["a NOT STARTSWITH 'x'", { a: "abb" }, T],
    ["a NOT ENDSWITH 'x'", { a: "abb" }, T],
    ["a CONTAINS 'X'", { a: "axb" }, F], // case-sensitive
    ["a CONTAINS '中'", { a: "一中二" }, T],
    ["a CONTAINS 'x'", { a: "" }, F],
    // an empty pattern never matches, negated or not
    ["a CONTAINS ''", { a: "axb" }, F],
    ["a NOT CONTAINS ''", { a: "axb" }, F],
    ["a NOT STARTSWITH ''", { a: "axb" }, F],
    ["'axb' CONTAINS 'x'", {}, T],
    ["' ' ENDSWITH ' '", {}, T],
    ["(a > 1) CONTAINS 'x'", { a: "2" }, F], // not a string
    [
      "a NOT IN ('4', '4', '5') AND b BETWEEN 3 AND 10 AND c NOT CONTAINS 'axbc'",
      { a: "3", b: "3", c: "axbdc" },
      T,
    ],
  ]);
});

describe("precedence", () => {
  table([
    // a OR b AND c is a OR (b AND c)
    ["x = 1 OR x = 2 AND y = 3", { x: "1", y: "0" }, T],
    ["(x = 1 OR x = 2) AND y = 3", { x: "1", y: "0" }, F],
    ["x = 2 AND y = 3 OR x = 1", { x: "1", y: "0" }, T],
    // NOT binds tighter than comparisons: NOT a = 1 is (NOT a) = 1, never TRUE for a string a
    ["NOT a = 1", { a: "2" }, F],
    ["NOT (a = 1)", { a: "2" }, T],
    ["NOT a = 1 OR b = 1", { a: "2", b: "1" }, T],
    ["NOT a = 'x'", { a: "x" }, E], // TRUE/FALSE meets a string literal
    ["a=3 and b<>4 And c>5 AND d<=4", { a: "3", b: "5", c: "6", d: "1" }, T],
    ["a=3 and b<>4 And c>5 AND d<=4", { a: "4", b: "5", c: "6", d: "1" }, F],
    ["a=3 or b<>4 Or c>5 OR d<=4", { a: "4", b: "4", c: "3", d: "10" }, F],
    ["a=3 or b<>4 Or c>5 OR d<=4", { a: "4", b: "4", c: "3", d: "2" }, T],
  ]);
});

describe("message properties", () => {
  table([
    ["TAGS = 'TagA'", { TAGS: "TagA" }, T],
    ["TAGS is not null and TAGS='''''tag'''''", { TAGS: "''tag''" }, T],
    ["KEYS CONTAINS 'order-1'", { KEYS: "order-1 order-2" }, T],
    ["__SHARDINGKEY = 'g1'", { __SHARDINGKEY: "g1" }, T],
    ["region = 'hz' AND price >= 100", { region: "hz", price: "150" }, T],
    ["region = 'hz' AND price >= 100", { region: "hz", price: "99" }, F],
  ]);
});

describe("compileSql92", () => {
  it("compiles once and evaluates many property sets", () => {
    const filter = compileSql92("region IN ('hz', 'sh') AND price > 10 AND NOT (vip = 'false')");
    expect(filter.expression).toBe("region IN ('hz', 'sh') AND price > 10 AND NOT (vip = 'false')");
    expect(filter.ast.kind).toBe("and");
    const messages: [Props, boolean][] = [
      [{ region: "hz", price: "11", vip: "true" }, true],
      [{ region: "hz", price: "11" }, false], // vip missing: NOT UNKNOWN is UNKNOWN
      [{ region: "bj", price: "11", vip: "true" }, false],
      [{ region: "sh", price: "10", vip: "true" }, false],
      [{ region: "sh", price: "ten", vip: "true" }, false],
      [{ region: "sh", price: "1000", vip: "x" }, true],
    ];
    for (const [props, expected] of messages)
      expect(filter.evaluate(new Map(Object.entries(props)))).toBe(expected);
  });

  it("reads properties through any get(name) source", () => {
    const reads: string[] = [];
    const source = {
      get(name: string) {
        reads.push(name);
        return name === "a" ? "5" : undefined;
      },
    };
    expect(compileSql92("a = 5 AND b IS NULL").evaluate(source)).toBe(true);
    expect(reads).toEqual(["a", "b"]);
  });
});
