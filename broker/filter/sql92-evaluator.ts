// Compiles an SQL92 selector once into a tree of closures and evaluates it against message
// properties with upstream's semantics (apache/rocketmq filter/expression/*, broker
// ExpressionMessageFilter.isMatchedByCommitLog):
//
// - Values: every property value is a string (or missing = NULL). A message matches only when the
//   selector evaluates to TRUE; FALSE, UNKNOWN (NULL) and an evaluation error all mean "no match".
// - Which properties are visible: all properties stored with the message, under their stored names:
//   user properties plus system ones such as TAGS (the tag), KEYS, UNIQ_KEY, __SHARDINGKEY,
//   RECONSUME_TIME, ... Only names that are valid identifiers can be written in a selector. Topic,
//   queue id, offsets and timestamps are not properties and are not visible.
// - Numbers: a string is converted to the Java type of the number literal it meets: Integer.valueOf
//   for an int literal (so `a > 5` fails on a = "5.5" or "3000000000"), Long.valueOf for a long
//   literal, Double.valueOf for a floating literal (so `a > 5.0` accepts "5.5", " 7 ", "1e3", "NaN").
//   `>`, `>=`, `<`, `<=` between two strings (two properties) compare both as doubles. When a string
//   does not convert, upstream throws and the broker logs and skips the message: here the whole
//   selector evaluates to "no match" at once, even inside OR / NOT (`a > 5 OR b = 'x'` does not
//   match a = "abc" even if b = 'x'), exactly as upstream.
// - `=`: two strings compare as strings ('3' = '3.0' is FALSE); a string against a number literal
//   converts as above (a = 3 matches "3", "+3", "003"); against TRUE/FALSE the string goes through
//   Boolean.valueOf, so `a = FALSE` matches any value other than "true" (any case).
//   NULL handling is upstream's, asymmetric: left NULL -> UNKNOWN; right NULL (left not) -> FALSE;
//   both NULL -> TRUE. `<>` is NOT of that.
// - `>`, `>=`, `<`, `<=`: UNKNOWN when either side is NULL.
// - IS NULL / IS NOT NULL: never UNKNOWN.
// - IN / NOT IN: UNKNOWN when the property is missing, else exact string membership.
// - CONTAINS / STARTSWITH / ENDSWITH and their NOT forms: FALSE (not UNKNOWN) when the value is
//   missing or not a string, and FALSE whenever the pattern is '' -- for the NOT forms too.
// - BETWEEN = (x >= low AND x <= high); NOT BETWEEN = (x < low OR x > high).
// - AND / OR / NOT: SQL three-valued logic, evaluated left to right with short-circuit (AND stops
//   at the first FALSE, OR at the first TRUE); a bare property used as a condition is FALSE when
//   present (a string is not a boolean) and UNKNOWN when missing.
// - Unary minus: negates a number; anything else (a property, a string) gives NULL.
//
// The hot path allocates nothing for typical selectors: literals are built at compile time and
// property values are compared in place.

import { ErrorCode, RmqError } from "../../common/errors.ts";
import type { CompareOp, MatchOp, Sql92Node } from "./sql92-ast.ts";
import {
  compareValues,
  convertString,
  EVALUATION_FAILED,
  javaDoubleCompare,
  NumberKind,
  SqlNumber,
  type SqlValue,
} from "./sql92-compare.ts";
import { parseSql92 } from "./sql92-parser.ts";
import { printSql92 } from "./sql92-printer.ts";

/** Where the evaluator reads property values (a ReadonlyMap<string, string> fits). */
export interface PropertySource {
  get(name: string): string | undefined;
}

/** The full result of one evaluation; only TRUE means the message matches. */
export const Sql92Outcome = { True: "TRUE", False: "FALSE", Unknown: "UNKNOWN", Error: "ERROR" } as const;
export type Sql92Outcome = (typeof Sql92Outcome)[keyof typeof Sql92Outcome];

export interface CompiledSql92 {
  /** The selector text it was compiled from. */
  readonly expression: string;
  readonly ast: Sql92Node;
  /** True when the message with these properties matches (the selector is TRUE). */
  evaluate(properties: PropertySource): boolean;
  /** TRUE / FALSE / UNKNOWN, or ERROR where upstream's evaluation throws. */
  evaluateOutcome(properties: PropertySource): Sql92Outcome;
}

type ValueFn = (p: PropertySource) => SqlValue;
type BoolFn = (p: PropertySource) => boolean | null;

/** Parses and compiles a selector; throws FilterExpressionError (ILLEGAL_FILTER_EXPRESSION) if invalid. */
export function compileSql92(expression: string): CompiledSql92 {
  return compileSql92Ast(parseSql92(expression), expression);
}

/** Compiles an already parsed (hence already validated) AST. */
export function compileSql92Ast(ast: Sql92Node, expression: string = printSql92(ast)): CompiledSql92 {
  const root = compileCondition(ast);
  return {
    expression,
    ast,
    evaluate(properties) {
      try {
        return root(properties) === true;
      } catch (e) {
        if (e === EVALUATION_FAILED) return false;
        throw e;
      }
    },
    evaluateOutcome(properties) {
      try {
        const v = root(properties);
        return v === true ? Sql92Outcome.True : v === false ? Sql92Outcome.False : Sql92Outcome.Unknown;
      } catch (e) {
        if (e === EVALUATION_FAILED) return Sql92Outcome.Error;
        throw e;
      }
    },
  };
}

/** A node in a boolean position: the whole selector, or an operand of AND / OR / NOT. */
function compileCondition(node: Sql92Node): BoolFn {
  switch (node.kind) {
    case "property": {
      // Upstream's boolean cast of a property: a present value is a String, not a Boolean -> FALSE.
      const name = node.name;
      return (p) => (p.get(name) === undefined ? null : false);
    }
    case "string":
    case "int":
    case "long":
    case "double":
    case "negate":
      throw new RmqError(ErrorCode.Internal, `sql92: a ${node.kind} node cannot be a condition`); // parser prevents
    default:
      return compileBoolean(node);
  }
}

/** Nodes that produce TRUE / FALSE / NULL. */
function compileBoolean(node: Sql92Node): BoolFn {
  switch (node.kind) {
    case "boolean": {
      const value = node.value;
      return () => value;
    }
    case "null":
      return () => null;
    case "not": {
      const operand = compileCondition(node.operand);
      return (p) => {
        const v = operand(p);
        return v === null ? null : !v;
      };
    }
    case "and":
      return compileAnd(node.operands.map(compileCondition));
    case "or":
      return compileOr(node.operands.map(compileCondition));
    case "compare":
      return compileCompare(node.op, compileValue(node.left), compileValue(node.right));
    case "isNull": {
      const operand = compileValue(node.operand);
      return node.negated ? (p) => operand(p) !== null : (p) => operand(p) === null;
    }
    case "between": {
      const operand = compileValue(node.operand);
      const low = compileValue(node.low);
      const high = compileValue(node.high);
      return node.negated
        ? compileOr([compileRelational("<", operand, low), compileRelational(">", operand, high)])
        : compileAnd([compileRelational(">=", operand, low), compileRelational("<=", operand, high)]);
    }
    case "in": {
      const name = node.property;
      const values = new Set(node.values);
      const negated = node.negated;
      return (p) => {
        const v = p.get(name);
        return v === undefined ? null : values.has(v) !== negated;
      };
    }
    case "match":
      return compileMatch(node.op, compileValue(node.operand), node.pattern, node.negated);
    default:
      throw new RmqError(ErrorCode.Internal, `sql92: a ${node.kind} node is not boolean`);
  }
}

/** Nodes in a value position (operands of comparisons, IS NULL, BETWEEN, CONTAINS, unary minus). */
function compileValue(node: Sql92Node): ValueFn {
  switch (node.kind) {
    case "string": {
      const value = node.value;
      return () => value;
    }
    case "int":
    case "long":
    case "double": {
      const value = new SqlNumber(NUMBER_KINDS[node.kind], node.value);
      return () => value;
    }
    case "property": {
      const name = node.name;
      return (p) => p.get(name) ?? null;
    }
    case "negate": {
      const folded = foldNegation(node);
      if (folded !== undefined) return () => folded;
      const operand = compileValue(node.operand);
      return (p) => {
        const v = operand(p);
        return v instanceof SqlNumber ? negateNumber(v) : null;
      };
    }
    default:
      return compileBoolean(node);
  }
}

const NUMBER_KINDS = { int: NumberKind.Int, long: NumberKind.Long, double: NumberKind.Double } as const;

/** `-5`, `--5.5`: negations of number literals become constants. */
function foldNegation(node: Sql92Node): SqlNumber | undefined {
  if (node.kind === "int" || node.kind === "long" || node.kind === "double") {
    return new SqlNumber(NUMBER_KINDS[node.kind], node.value);
  }
  if (node.kind !== "negate") return undefined;
  const inner = foldNegation(node.operand);
  return inner === undefined ? undefined : negateNumber(inner);
}

function negateNumber(n: SqlNumber): SqlNumber {
  if (n.kind === NumberKind.Double) return new SqlNumber(n.kind, -(n.value as number));
  // Integers have a single zero; -(0) must stay 0, or a later widening to double would give -0.0.
  return new SqlNumber(n.kind, n.value === 0 || n.value === 0n ? n.value : -n.value);
}

function compileAnd(operands: readonly BoolFn[]): BoolFn {
  return (p) => {
    let unknown = false;
    for (const operand of operands) {
      const v = operand(p);
      if (v === false) return false;
      if (v === null) unknown = true;
    }
    return unknown ? null : true;
  };
}

function compileOr(operands: readonly BoolFn[]): BoolFn {
  return (p) => {
    let unknown = false;
    for (const operand of operands) {
      const v = operand(p);
      if (v === true) return true;
      if (v === null) unknown = true;
    }
    return unknown ? null : false;
  };
}

function compileCompare(op: CompareOp, left: ValueFn, right: ValueFn): BoolFn {
  if (op === "=") return (p) => equals(left(p), right(p));
  if (op === "<>") {
    return (p) => {
      const eq = equals(left(p), right(p));
      return eq === null ? null : !eq;
    };
  }
  return compileRelational(op, left, right);
}

/** Upstream's `=`, NULLs included (see the header). */
function equals(l: SqlValue, r: SqlValue): boolean | null {
  if (l === null) return r === null ? true : null;
  if (r === null) return false;
  return compareValues(l, r) === 0;
}

function compileRelational(op: "<" | "<=" | ">" | ">=", left: ValueFn, right: ValueFn): BoolFn {
  switch (op) {
    case "<":
      return (p) => {
        const c = relationalCompare(left, right, p);
        return c === null ? null : c < 0;
      };
    case "<=":
      return (p) => {
        const c = relationalCompare(left, right, p);
        return c === null ? null : c <= 0;
      };
    case ">":
      return (p) => {
        const c = relationalCompare(left, right, p);
        return c === null ? null : c > 0;
      };
    case ">=":
      return (p) => {
        const c = relationalCompare(left, right, p);
        return c === null ? null : c >= 0;
      };
  }
}

/** Sign of left - right for `<`-style operators, or null (UNKNOWN). The right side is not read when the left is NULL. */
function relationalCompare(left: ValueFn, right: ValueFn, p: PropertySource): number | null {
  const l = left(p);
  if (l === null) return null;
  const r = right(p);
  if (r === null) return null;
  if (typeof l === "string" && typeof r === "string") {
    return javaDoubleCompare(
      convertString(NumberKind.Double, l) as number,
      convertString(NumberKind.Double, r) as number,
    );
  }
  return compareValues(l, r);
}

function compileMatch(op: MatchOp, operand: ValueFn, pattern: string, negated: boolean): BoolFn {
  if (pattern.length === 0) return () => false; // upstream: an empty pattern never matches, negated or not
  const test =
    op === "CONTAINS"
      ? (s: string) => s.includes(pattern)
      : op === "STARTSWITH"
        ? (s: string) => s.startsWith(pattern)
        : (s: string) => s.endsWith(pattern);
  return (p) => {
    const v = operand(p);
    return typeof v === "string" ? test(v) !== negated : false;
  };
}
