// The AST of an SQL92 message selector. It mirrors the source syntax (NOT BETWEEN stays one node,
// parentheses and unary + disappear); the evaluator gives each node upstream's meaning.
//
// Numeric literals keep Java's types, because upstream converts a string property to the type of
// the literal it is compared with: a decimal literal within int range is an `int`, a larger one a
// `long` (an l/L suffix does not force long), and every floating literal is a `double`.

export type CompareOp = "=" | "<>" | ">" | ">=" | "<" | "<=";
export type MatchOp = "CONTAINS" | "STARTSWITH" | "ENDSWITH";

export type Sql92Node =
  | { readonly kind: "string"; readonly value: string }
  | { readonly kind: "int"; readonly value: number }
  | { readonly kind: "long"; readonly value: bigint }
  | { readonly kind: "double"; readonly value: number }
  | { readonly kind: "boolean"; readonly value: boolean }
  | { readonly kind: "null" }
  | { readonly kind: "property"; readonly name: string }
  /** Unary minus. */
  | { readonly kind: "negate"; readonly operand: Sql92Node }
  | { readonly kind: "not"; readonly operand: Sql92Node }
  /** A chain `x AND y AND z` (left to right, two or more operands). */
  | { readonly kind: "and"; readonly operands: readonly Sql92Node[] }
  | { readonly kind: "or"; readonly operands: readonly Sql92Node[] }
  | { readonly kind: "compare"; readonly op: CompareOp; readonly left: Sql92Node; readonly right: Sql92Node }
  /** `x IS NULL` / `x IS NOT NULL` (negated). */
  | { readonly kind: "isNull"; readonly operand: Sql92Node; readonly negated: boolean }
  | {
      readonly kind: "between";
      readonly operand: Sql92Node;
      readonly low: Sql92Node;
      readonly high: Sql92Node;
      readonly negated: boolean;
    }
  /** `prop IN ('a', 'b')`: only a property on the left, only string literals in the list. */
  | {
      readonly kind: "in";
      readonly property: string;
      readonly values: readonly string[];
      readonly negated: boolean;
    }
  /** `x CONTAINS 'abc'` and friends: the pattern is always a string literal. */
  | {
      readonly kind: "match";
      readonly op: MatchOp;
      readonly operand: Sql92Node;
      readonly pattern: string;
      readonly negated: boolean;
    };

export type Sql92NodeKind = Sql92Node["kind"];

/** Literal nodes (upstream ConstantExpression, including TRUE/FALSE/NULL). */
export function isLiteral(node: Sql92Node): boolean {
  switch (node.kind) {
    case "string":
    case "int":
    case "long":
    case "double":
    case "boolean":
    case "null":
      return true;
    default:
      return false;
  }
}

/** Numeric literal nodes. */
export function isNumericLiteral(node: Sql92Node): boolean {
  return node.kind === "int" || node.kind === "long" || node.kind === "double";
}

/**
 * Nodes that yield TRUE/FALSE/UNKNOWN (upstream BooleanExpression): everything except properties,
 * string and numeric literals, and negations. TRUE, FALSE and NULL literals count as boolean.
 */
export function isBooleanNode(node: Sql92Node): boolean {
  switch (node.kind) {
    case "string":
    case "int":
    case "long":
    case "double":
    case "property":
    case "negate":
      return false;
    default:
      return true;
  }
}

/** Child nodes, for generic walks. */
export function childrenOf(node: Sql92Node): readonly Sql92Node[] {
  switch (node.kind) {
    case "negate":
    case "not":
    case "isNull":
    case "match":
      return [node.operand];
    case "and":
    case "or":
      return node.operands;
    case "compare":
      return [node.left, node.right];
    case "between":
      return [node.operand, node.low, node.high];
    default:
      return [];
  }
}
