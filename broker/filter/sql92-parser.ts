// Recursive-descent parser for RocketMQ SQL92 message selectors, producing a Sql92Node AST.
//
// Grammar and precedence follow upstream's JavaCC grammar (filter/SelectorParser.jj), lowest first:
//   or         := and ( OR and )*
//   and        := equality ( AND equality )*
//   equality   := comparison ( "=" comparison | "<>" comparison | IS NULL | IS NOT NULL )*
//   comparison := unary ( (">"|">="|"<"|"<=") unary
//                       | [NOT] (CONTAINS|STARTSWITH|ENDSWITH) string
//                       | [NOT] BETWEEN unary AND unary
//                       | [NOT] IN "(" string ("," string)* ")" )*
//   unary      := "+" unary | "-" unary | NOT unary | primary
//   primary    := literal | identifier | "(" or ")"
// Note what this implies, exactly as upstream: NOT binds tighter than every comparison, so
// `NOT a = 1` means `(NOT a) = 1` and `NOT a > 1` is rejected; write `NOT (a = 1)`.
//
// The semantic checks upstream performs while building its expression tree are applied here too,
// so that exactly the same selectors are rejected:
// - operands of AND, OR, NOT and the whole selector must be boolean (a bare property is allowed
//   and treated as a boolean cast);
// - `=`/`<>`: neither side may be the NULL literal; TRUE/FALSE on the left of a string or number
//   literal is rejected;
// - `>`, `>=`, `<`, `<=`, BETWEEN: no string/boolean/NULL literal and no boolean expression as an
//   operand; `BETWEEN low AND high` with two numeric literals requires low <= high (not NOT BETWEEN);
// - IN needs a property on its left;
// - decimal literals must fit a Java long; floating literals must be finite and, an upstream quirk
//   kept for compatibility, not below Double.MIN_VALUE, so `0.0` is rejected (use `0`).
// One deliberate difference: upstream stops after the longest valid prefix and silently ignores
// whatever follows (`a = 1 b = 2` is accepted there as `a = 1`); we reject trailing tokens.

import { FilterExpressionError } from "./filter-expression-error.ts";
import {
  MAX_FILTER_EXPRESSION_LENGTH,
  MAX_SQL92_IN_LIST_SIZE,
  MAX_SQL92_NESTING_DEPTH,
} from "./filter-limits.ts";
import type { CompareOp, MatchOp, Sql92Node } from "./sql92-ast.ts";
import { childrenOf, isBooleanNode, isLiteral, isNumericLiteral } from "./sql92-ast.ts";
import { compareNumbers, NumberKind } from "./sql92-compare.ts";
import { Sql92Lexer, type Token, TokenKind } from "./sql92-lexer.ts";

const INT_MAX = 2_147_483_647n;
const LONG_MAX = 9_223_372_036_854_775_807n;

/** Parses a selector; throws FilterExpressionError (code ILLEGAL_FILTER_EXPRESSION) when it is invalid. */
export function parseSql92(source: string): Sql92Node {
  if (source.length > MAX_FILTER_EXPRESSION_LENGTH) {
    throw new FilterExpressionError(
      `SQL92 expression is ${source.length} characters long; at most ${MAX_FILTER_EXPRESSION_LENGTH} are allowed`,
      -1,
    );
  }
  return new Sql92Parser(new Sql92Lexer(source)).parseSelector();
}

class Sql92Parser {
  private readonly lexer: Sql92Lexer;
  /** Tokens pulled from the lexer and not consumed yet (at most two: the grammar is LL(2)). */
  private readonly lookahead: Token[] = [];
  /** Current recursion depth through parentheses and prefix operators. */
  private nesting = 0;
  /** Height of each node built so far (a leaf is 1). */
  private readonly heights = new WeakMap<Sql92Node, number>();

  constructor(lexer: Sql92Lexer) {
    this.lexer = lexer;
  }

  parseSelector(): Sql92Node {
    const first = this.peek();
    if (first.kind === TokenKind.Eof) throw fail(0, "empty expression: expected a boolean expression");
    const node = this.parseOr();
    const rest = this.peek();
    if (rest.kind !== TokenKind.Eof) {
      throw fail(
        rest.start,
        `unexpected ${describeToken(rest)} after a complete expression: expected AND, OR, a comparison ` +
          "operator or the end of the expression",
      );
    }
    return this.requireBoolean(node, first.start, "the whole selector");
  }

  private parseOr(): Sql92Node {
    return this.parseChain(TokenKind.Or, "or", () => this.parseAnd());
  }

  private parseAnd(): Sql92Node {
    return this.parseChain(TokenKind.And, "and", () => this.parseEquality());
  }

  private parseChain(separator: TokenKind, kind: "and" | "or", parseOperand: () => Sql92Node): Sql92Node {
    const start = this.peek().start;
    const first = parseOperand();
    if (this.peek().kind !== separator) return first;
    const operands = [this.requireBoolean(first, start, separator)];
    while (this.peek().kind === separator) {
      this.advance();
      const operandStart = this.peek().start;
      operands.push(this.requireBoolean(parseOperand(), operandStart, separator));
    }
    return this.make({ kind, operands }, start);
  }

  private parseEquality(): Sql92Node {
    const start = this.peek().start;
    let left = this.parseComparison();
    for (;;) {
      const token = this.peek();
      if (token.kind === TokenKind.Eq || token.kind === TokenKind.Ne) {
        this.advance();
        const rightStart = this.peek().start;
        const right = this.parseComparison();
        checkEqualityOperands(left, start, right, rightStart, token.kind);
        left = this.make({ kind: "compare", op: token.kind, left, right }, token.start);
      } else if (token.kind === TokenKind.Is) {
        this.advance();
        let negated = false;
        if (this.peek().kind === TokenKind.Not) {
          this.advance();
          negated = true;
        }
        this.expect(
          TokenKind.Null,
          negated ? "expected NULL after IS NOT" : "expected NULL or NOT NULL after IS",
        );
        left = this.make({ kind: "isNull", operand: left, negated }, token.start);
      } else {
        return left;
      }
    }
  }

  private parseComparison(): Sql92Node {
    const start = this.peek().start;
    let left = this.parseUnary();
    for (;;) {
      const token = this.peek();
      switch (token.kind) {
        case TokenKind.Gt:
        case TokenKind.Ge:
        case TokenKind.Lt:
        case TokenKind.Le: {
          this.advance();
          const rightStart = this.peek().start;
          const right = this.parseUnary();
          checkRelationalOperand(left, start, token.kind);
          checkRelationalOperand(right, rightStart, token.kind);
          left = this.make({ kind: "compare", op: token.kind as CompareOp, left, right }, token.start);
          break;
        }
        case TokenKind.Contains:
        case TokenKind.StartsWith:
        case TokenKind.EndsWith:
        case TokenKind.Between:
        case TokenKind.In:
          this.advance();
          left = this.parsePostfix(left, start, token, false);
          break;
        case TokenKind.Not: {
          const next = this.peekAt(1);
          if (!isNegatablePostfix(next.kind)) {
            throw fail(
              next.start,
              `expected CONTAINS, STARTSWITH, ENDSWITH, BETWEEN or IN after NOT, found ${describeToken(next)}`,
            );
          }
          this.advance();
          this.advance();
          left = this.parsePostfix(left, start, next, true);
          break;
        }
        default:
          return left;
      }
    }
  }

  /** The part after [NOT] CONTAINS/STARTSWITH/ENDSWITH/BETWEEN/IN (the keyword is consumed). */
  private parsePostfix(left: Sql92Node, leftStart: number, keyword: Token, negated: boolean): Sql92Node {
    const what = negated ? `NOT ${keyword.kind}` : keyword.kind;
    if (keyword.kind === TokenKind.Between) {
      const lowStart = this.peek().start;
      const low = this.parseUnary();
      this.expect(TokenKind.And, `expected AND between the bounds of ${what}`);
      const highStart = this.peek().start;
      const high = this.parseUnary();
      checkRelationalOperand(left, leftStart, what);
      checkRelationalOperand(low, lowStart, what);
      checkRelationalOperand(high, highStart, what);
      if (!negated && isNumericLiteral(low) && isNumericLiteral(high) && compareLiterals(high, low) < 0) {
        throw fail(lowStart, `illegal BETWEEN bounds: the low bound is greater than the high bound`);
      }
      return this.make({ kind: "between", operand: left, low, high, negated }, keyword.start);
    }
    if (keyword.kind === TokenKind.In) {
      if (left.kind !== "property") {
        throw fail(leftStart, `${what} needs a property on its left, found ${describeNode(left)}`);
      }
      this.expect(TokenKind.LParen, `expected '(' after ${what}`);
      const values = [this.expectString(`a string literal in the ${what} list`)];
      while (this.peek().kind === TokenKind.Comma) {
        this.advance();
        if (values.length === MAX_SQL92_IN_LIST_SIZE) {
          throw fail(this.peek().start, `the ${what} list has more than ${MAX_SQL92_IN_LIST_SIZE} values`);
        }
        values.push(this.expectString(`a string literal in the ${what} list`));
      }
      this.expect(TokenKind.RParen, `expected ',' or ')' in the ${what} list`);
      return this.make({ kind: "in", property: left.name, values, negated }, keyword.start);
    }
    const pattern = this.expectString(`a string literal after ${what}`);
    return this.make(
      { kind: "match", op: keyword.kind as MatchOp, operand: left, pattern, negated },
      keyword.start,
    );
  }

  private parseUnary(): Sql92Node {
    const token = this.peek();
    switch (token.kind) {
      case TokenKind.Plus: {
        this.advance();
        this.enter(token.start);
        const operand = this.parseUnary();
        this.nesting--;
        return operand;
      }
      case TokenKind.Minus: {
        this.advance();
        this.enter(token.start);
        const operand = this.parseUnary();
        this.nesting--;
        return this.make({ kind: "negate", operand }, token.start);
      }
      case TokenKind.Not: {
        this.advance();
        this.enter(token.start);
        const operandStart = this.peek().start;
        const operand = this.requireBoolean(this.parseUnary(), operandStart, "NOT");
        this.nesting--;
        return this.make({ kind: "not", operand }, token.start);
      }
      default:
        return this.parsePrimary();
    }
  }

  private parsePrimary(): Sql92Node {
    const token = this.peek();
    switch (token.kind) {
      case TokenKind.String:
        this.advance();
        return this.make({ kind: "string", value: token.value }, token.start);
      case TokenKind.Decimal:
        this.advance();
        return this.make(decimalLiteral(token), token.start);
      case TokenKind.Floating:
        this.advance();
        return this.make(floatingLiteral(token), token.start);
      case TokenKind.True:
      case TokenKind.False:
        this.advance();
        return this.make({ kind: "boolean", value: token.kind === TokenKind.True }, token.start);
      case TokenKind.Null:
        this.advance();
        return this.make({ kind: "null" }, token.start);
      case TokenKind.Identifier:
        this.advance();
        return this.make({ kind: "property", name: token.text }, token.start);
      case TokenKind.LParen: {
        this.advance();
        this.enter(token.start);
        const inner = this.parseOr();
        this.nesting--;
        const close = this.peek();
        if (close.kind !== TokenKind.RParen) {
          throw fail(
            close.start,
            `expected ')' to close the '(' at position ${token.start}, found ${describeToken(close)}`,
          );
        }
        this.advance();
        return inner;
      }
      default:
        throw fail(
          token.start,
          `expected a property, a literal, '(', NOT or '-', found ${describeToken(token)}`,
        );
    }
  }

  /** Upstream asBooleanExpression: a boolean node, or a property (evaluated as a boolean cast). */
  private requireBoolean(node: Sql92Node, position: number, context: string): Sql92Node {
    if (isBooleanNode(node) || node.kind === "property") return node;
    throw fail(
      position,
      `expected a boolean expression as operand of ${context}, found ${describeNode(node)}`,
    );
  }

  /** Records a node's height and enforces the nesting limit on the tree. */
  private make(node: Sql92Node, position: number): Sql92Node {
    let height = 1;
    for (const child of childrenOf(node)) {
      const h = (this.heights.get(child) ?? 1) + 1;
      if (h > height) height = h;
    }
    if (height > MAX_SQL92_NESTING_DEPTH) {
      throw fail(position, `expression nests deeper than ${MAX_SQL92_NESTING_DEPTH} levels`);
    }
    this.heights.set(node, height);
    return node;
  }

  private enter(position: number): void {
    this.nesting++;
    if (this.nesting > MAX_SQL92_NESTING_DEPTH) {
      throw fail(position, `expression nests deeper than ${MAX_SQL92_NESTING_DEPTH} levels`);
    }
  }

  private peek(): Token {
    return this.peekAt(0);
  }

  private peekAt(ahead: number): Token {
    while (this.lookahead.length <= ahead) this.lookahead.push(this.lexer.next());
    return this.lookahead[ahead] as Token;
  }

  private advance(): void {
    if (this.peek().kind !== TokenKind.Eof) this.lookahead.shift();
  }

  private expect(kind: TokenKind, message: string): Token {
    const token = this.peek();
    if (token.kind !== kind) throw fail(token.start, `${message}, found ${describeToken(token)}`);
    this.advance();
    return token;
  }

  private expectString(what: string): string {
    return this.expect(TokenKind.String, `expected ${what}`).value;
  }
}

function isNegatablePostfix(kind: TokenKind): boolean {
  return (
    kind === TokenKind.Contains ||
    kind === TokenKind.StartsWith ||
    kind === TokenKind.EndsWith ||
    kind === TokenKind.Between ||
    kind === TokenKind.In
  );
}

/** Upstream ComparisonExpression.checkEqualOperand / checkEqualOperandCompatability. */
function checkEqualityOperands(
  left: Sql92Node,
  leftStart: number,
  right: Sql92Node,
  rightStart: number,
  op: string,
): void {
  if (left.kind === "null")
    throw fail(leftStart, `NULL cannot be compared with ${op}; use IS NULL or IS NOT NULL`);
  if (right.kind === "null")
    throw fail(rightStart, `NULL cannot be compared with ${op}; use IS NULL or IS NOT NULL`);
  if (left.kind === "boolean" && isLiteral(right) && right.kind !== "boolean") {
    throw fail(rightStart, `${left.value ? "TRUE" : "FALSE"} cannot be compared with ${describeNode(right)}`);
  }
}

/** Upstream ComparisonExpression.checkLessThanOperand: what may stand on either side of > >= < <= BETWEEN. */
function checkRelationalOperand(node: Sql92Node, position: number, op: string): void {
  if (isLiteral(node)) {
    if (!isNumericLiteral(node)) {
      throw fail(
        position,
        `${describeNode(node)} cannot be an operand of ${op}; only numbers can be ordered`,
      );
    }
  } else if (isBooleanNode(node)) {
    throw fail(position, `a boolean expression cannot be an operand of ${op}`);
  }
}

function compareLiterals(a: Sql92Node, b: Sql92Node): number {
  return compareNumbers(numberKindOf(a), literalValue(a), numberKindOf(b), literalValue(b));
}

function numberKindOf(node: Sql92Node): NumberKind {
  if (node.kind === "int") return NumberKind.Int;
  return node.kind === "long" ? NumberKind.Long : NumberKind.Double;
}

function literalValue(node: Sql92Node): number | bigint {
  return node.kind === "int" || node.kind === "long" || node.kind === "double" ? node.value : 0;
}

/** Upstream ConstantExpression.createFromDecimal: strip l/L, must fit a long, int when it fits an int. */
function decimalLiteral(token: Token): Sql92Node {
  const digits = token.text.endsWith("l") || token.text.endsWith("L") ? token.text.slice(0, -1) : token.text;
  const value = BigInt(digits);
  if (value > LONG_MAX) {
    throw fail(token.start, `the number ${token.text} is out of range: at most ${LONG_MAX} is allowed`);
  }
  return value <= INT_MAX ? { kind: "int", value: Number(value) } : { kind: "long", value };
}

/** Upstream ConstantExpression.createFloat: a double in [Double.MIN_VALUE, Double.MAX_VALUE]. */
function floatingLiteral(token: Token): Sql92Node {
  const value = Number(token.text);
  if (value === Infinity) {
    throw fail(token.start, `the number ${token.text} is out of range: it exceeds ${Number.MAX_VALUE}`);
  }
  if (value < Number.MIN_VALUE) {
    throw fail(
      token.start,
      `the number ${token.text} is below the smallest floating literal allowed (${Number.MIN_VALUE}); ` +
        "for zero write the integer 0",
    );
  }
  return { kind: "double", value };
}

function describeToken(token: Token): string {
  switch (token.kind) {
    case TokenKind.Eof:
      return "end of expression";
    case TokenKind.String:
      return `string literal ${token.text}`;
    case TokenKind.Identifier:
      return `identifier ${token.text}`;
    case TokenKind.Decimal:
    case TokenKind.Floating:
      return `number ${token.text}`;
    default:
      return /^[A-Z]/.test(token.kind) ? `keyword ${token.kind}` : `'${token.text}'`;
  }
}

function describeNode(node: Sql92Node): string {
  switch (node.kind) {
    case "string":
      return "a string literal";
    case "int":
    case "long":
    case "double":
      return "a number";
    case "boolean":
      return node.value ? "TRUE" : "FALSE";
    case "null":
      return "NULL";
    case "property":
      return `the property ${node.name}`;
    case "negate":
      return "a negation (unary -)";
    default:
      return "a boolean expression";
  }
}

function fail(position: number, message: string): FilterExpressionError {
  return new FilterExpressionError(`illegal SQL92 expression at position ${position}: ${message}`, position);
}
