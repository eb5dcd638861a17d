// Property-based tests of the SQL92 parser, printer and evaluator.

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { FilterExpressionError } from "./filter-expression-error.ts";
import { type CompareOp, isLiteral, type Sql92Node } from "./sql92-ast.ts";
import { compileSql92, compileSql92Ast, type Sql92Outcome } from "./sql92-evaluator.ts";
import { parseSql92 } from "./sql92-parser.ts";
import { printSql92 } from "./sql92-printer.ts";

const PROPERTY_NAMES = ["a", "b", "c", "TAGS"] as const;

const property = fc.constantFrom(...PROPERTY_NAMES).map((name): Sql92Node => ({ kind: "property", name }));
const intLiteral = fc
  .integer({ min: 0, max: 2_147_483_647 })
  .map((value): Sql92Node => ({ kind: "int", value }));
const longLiteral = fc
  .bigInt({ min: 2_147_483_648n, max: 2n ** 63n - 1n })
  .map((value): Sql92Node => ({ kind: "long", value }));
const doubleLiteral = fc
  .double({ min: Number.MIN_VALUE, max: Number.MAX_VALUE, noNaN: true })
  .map((value): Sql92Node => ({ kind: "double", value }));
const numberLiteral = fc.oneof(intLiteral, longLiteral, doubleLiteral);
const stringLiteral = fc.string({ maxLength: 6 }).map((value): Sql92Node => ({ kind: "string", value }));
const booleanLiteral = fc.boolean().map((value): Sql92Node => ({ kind: "boolean", value }));
const negate = (operand: fc.Arbitrary<Sql92Node>) =>
  operand.map((o): Sql92Node => ({ kind: "negate", operand: o }));
/** What may stand beside > >= < <= and BETWEEN. */
const orderable = fc.oneof(property, numberLiteral, negate(fc.oneof(property, numberLiteral)));
const relationalOp = fc.constantFrom<CompareOp>(">", ">=", "<", "<=");

/** Any AST the parser can produce for a whole selector (valid by construction). */
const { condition } = fc.letrec<{ condition: Sql92Node; value: Sql92Node }>((tie) => ({
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    property,
    numberLiteral,
    stringLiteral,
    negate(fc.oneof(property, numberLiteral)),
    tie("condition").filter((n) => n.kind !== "null"), // NULL cannot be compared with = (upstream)
  ),
  condition: fc.oneof(
    { depthSize: "small", maxDepth: 4, withCrossShrink: true },
    property,
    booleanLiteral,
    fc.constant<Sql92Node>({ kind: "null" }),
    fc
      .tuple(fc.constantFrom<CompareOp>("=", "<>"), tie("value"), fc.oneof(tie("value"), booleanLiteral))
      // upstream rejects TRUE/FALSE on the left of a string or number literal
      .filter(([, left, right]) => !(left.kind === "boolean" && isLiteral(right) && right.kind !== "boolean"))
      .map(([op, left, right]): Sql92Node => ({ kind: "compare", op, left, right })),
    fc
      .tuple(relationalOp, orderable, orderable)
      .map(([op, left, right]): Sql92Node => ({ kind: "compare", op, left, right })),
    fc
      .tuple(tie("value"), fc.boolean())
      .map(([operand, negated]): Sql92Node => ({ kind: "isNull", operand, negated })),
    fc
      .tuple(
        property,
        fc.oneof(property, negate(intLiteral)),
        fc.oneof(property, negate(intLiteral)),
        fc.boolean(),
      )
      .map(([operand, low, high, negated]): Sql92Node => ({ kind: "between", operand, low, high, negated })),
    fc
      .tuple(
        fc.constantFrom(...PROPERTY_NAMES),
        fc.array(fc.string({ maxLength: 4 }), { minLength: 1, maxLength: 4 }),
        fc.boolean(),
      )
      .map(([name, values, negated]): Sql92Node => ({ kind: "in", property: name, values, negated })),
    fc
      .tuple(
        fc.constantFrom("CONTAINS", "STARTSWITH", "ENDSWITH" as const),
        tie("value"),
        fc.string({ maxLength: 3 }),
        fc.boolean(),
      )
      .map(
        ([op, operand, pattern, negated]): Sql92Node => ({ kind: "match", op, operand, pattern, negated }),
      ),
    tie("condition").map((operand): Sql92Node => ({ kind: "not", operand })),
    fc
      .tuple(
        fc.constantFrom("and", "or" as const),
        fc.array(tie("condition"), { minLength: 2, maxLength: 3 }),
      )
      .map(([kind, operands]): Sql92Node => ({ kind, operands })),
  ),
}));

/** Property sets where any property may be missing and values may or may not look numeric. */
const anyProperties = fc.dictionary(
  fc.constantFrom(...PROPERTY_NAMES),
  fc.oneof(
    fc.constantFrom("3", "-7", "+3", "2.5", "1e3", "NaN", "true", "FALSE", "", "abc", "3000000000", " 5 "),
    fc.string({ maxLength: 4 }),
  ),
);

const complement: Record<Sql92Outcome, Sql92Outcome> = {
  TRUE: "FALSE",
  FALSE: "TRUE",
  UNKNOWN: "UNKNOWN",
  ERROR: "ERROR",
};

const toMap = (props: Record<string, string>) => new Map(Object.entries(props));

describe("SQL92 properties", () => {
  it("printing then re-parsing gives back the same AST", () => {
    fc.assert(
      fc.property(condition, (ast) => {
        const printed = printSql92(ast);
        expect(parseSql92(printed)).toEqual(ast);
      }),
      { numRuns: 400 },
    );
  });

  it("NOT (x) is the three-valued complement of x, for any properties", () => {
    fc.assert(
      fc.property(condition, anyProperties, (ast, props) => {
        const x = compileSql92Ast(ast).evaluateOutcome(toMap(props));
        const notX = compileSql92(`NOT (${printSql92(ast)})`).evaluateOutcome(toMap(props));
        expect(notX).toBe(complement[x]);
      }),
      { numRuns: 400 },
    );
  });

  it("De Morgan: NOT (x AND y) = NOT x OR NOT y, errors and UNKNOWN included", () => {
    fc.assert(
      fc.property(condition, condition, anyProperties, (x, y, props) => {
        const px = printSql92(x);
        const py = printSql92(y);
        const left = compileSql92(`NOT (${px} AND ${py})`).evaluateOutcome(toMap(props));
        const right = compileSql92(`(NOT ${px}) OR (NOT ${py})`).evaluateOutcome(toMap(props));
        expect(left).toBe(right);
      }),
      { numRuns: 300 },
    );
  });

  it("with every property defined and numeric, a selector is TRUE or FALSE and NOT flips it", () => {
    // Conditions that cannot hit NULL or a failed conversion when all properties hold integers.
    const total = fc.letrec<{ condition: Sql92Node }>((tie) => ({
      condition: fc.oneof(
        { depthSize: "small", maxDepth: 4, withCrossShrink: true },
        property,
        booleanLiteral,
        fc
          .tuple(
            fc.constantFrom<CompareOp>("=", "<>", ">", ">=", "<", "<="),
            property,
            fc.oneof(property, numberLiteral, negate(intLiteral)),
          )
          .map(([op, left, right]): Sql92Node => ({ kind: "compare", op, left, right })),
        fc
          .tuple(property, fc.integer({ min: -50, max: 50 }), fc.integer({ min: 0, max: 50 }), fc.boolean())
          .map(
            ([operand, low, width, negated]): Sql92Node => ({
              kind: "between",
              operand,
              low:
                low < 0
                  ? { kind: "negate", operand: { kind: "int", value: -low } }
                  : { kind: "int", value: low },
              high: { kind: "int", value: Math.max(low + width, 0) },
              negated,
            }),
          ),
        fc
          .tuple(
            fc.constantFrom(...PROPERTY_NAMES),
            fc.array(fc.integer({ min: -9, max: 9 }).map(String), { minLength: 1 }),
            fc.boolean(),
          )
          .map(([name, values, negated]): Sql92Node => ({ kind: "in", property: name, values, negated })),
        fc
          .tuple(
            fc.constantFrom("CONTAINS", "STARTSWITH", "ENDSWITH" as const),
            property,
            fc.string({ maxLength: 2 }),
            fc.boolean(),
          )
          .map(
            ([op, operand, pattern, negated]): Sql92Node => ({
              kind: "match",
              op,
              operand,
              pattern,
              negated,
            }),
          ),
        fc
          .tuple(property, fc.boolean())
          .map(([operand, negated]): Sql92Node => ({ kind: "isNull", operand, negated })),
        tie("condition").map((operand): Sql92Node => ({ kind: "not", operand })),
        fc
          .tuple(
            fc.constantFrom("and", "or" as const),
            fc.array(tie("condition"), { minLength: 2, maxLength: 3 }),
          )
          .map(([kind, operands]): Sql92Node => ({ kind, operands })),
      ),
    })).condition;
    const numericProperties = fc.record({
      a: fc.integer({ min: -100, max: 100 }).map(String),
      b: fc.integer({ min: -100, max: 100 }).map(String),
      c: fc.integer().map(String),
      TAGS: fc.integer({ min: 0, max: 9 }).map(String),
    });
    fc.assert(
      fc.property(total, numericProperties, (ast, props) => {
        const filter = compileSql92Ast(ast);
        const negated = compileSql92(`NOT (${printSql92(ast)})`);
        const outcome = filter.evaluateOutcome(toMap(props));
        expect(["TRUE", "FALSE"]).toContain(outcome);
        expect(negated.evaluate(toMap(props))).toBe(!filter.evaluate(toMap(props)));
      }),
      { numRuns: 400 },
    );
  });

  it("any input either compiles or fails with ILLEGAL_FILTER_EXPRESSION at a position inside it", () => {
    const soup = fc
      .array(
        fc.constantFrom(
          "a",
          "TAGS",
          "NOT",
          "and",
          "OR",
          "BETWEEN",
          "IN",
          "IS",
          "NULL",
          "TRUE",
          "CONTAINS",
          "=",
          "<>",
          ">",
          "<=",
          "(",
          ")",
          ",",
          "+",
          "-",
          "--",
          "/*",
          "*/",
          "0",
          "12L",
          "1.5",
          ".5",
          "1e",
          "'x'",
          "'",
          "''",
          "!",
          "\n",
        ),
        { maxLength: 12 },
      )
      .chain((parts) => fc.constantFrom(parts.join(" "), parts.join("")));
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 20 }), soup), anyProperties, (source, props) => {
        let compiled: ReturnType<typeof compileSql92> | undefined;
        try {
          compiled = compileSql92(source);
        } catch (e) {
          expect(e).toBeInstanceOf(FilterExpressionError);
          const position = (e as FilterExpressionError).position;
          expect(position).toBeGreaterThanOrEqual(0);
          expect(position).toBeLessThanOrEqual(source.length);
          return;
        }
        // A compiled selector never throws while evaluating, whatever the properties.
        expect(["TRUE", "FALSE", "UNKNOWN", "ERROR"]).toContain(compiled.evaluateOutcome(toMap(props)));
        expect(parseSql92(printSql92(compiled.ast))).toEqual(compiled.ast);
      }),
      { numRuns: 1500 },
    );
  });
});
