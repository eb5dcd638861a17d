// Lexer for RocketMQ's SQL92 message selectors, written as an explicit state machine over the string.
//
// The token set and the longest-match rule follow upstream's JavaCC grammar (filter/SelectorParser.jj):
// - skipped: space, \t, \n, \r, \f; `-- ...` line comments, which must END WITH a line break (at the
//   end of the input without one, `--` is simply two minus signs); `/* ... */` block comments.
// - keywords, case-insensitive: NOT AND OR BETWEEN IN TRUE FALSE NULL IS CONTAINS STARTSWITH ENDSWITH.
// - identifiers: [A-Za-z_$][A-Za-z0-9_$]*, ASCII only; a word equal to a keyword is the keyword.
// - decimal literals: `0` or [1-9][0-9]* with an optional l/L suffix (so `0L` and `007` are not one
//   token). Floating literals: `1.`, `1.5`, `.5`, `1e5`, `1.5E-3` (no sign; that is unary minus).
// - string literals: '...' with '' standing for one quote; any other character, newlines included,
//   is taken literally (no backslash escapes).
// - operators: = <> > >= < <= ( ) , + -   (there is no != and no ==).
//
// Like JavaCC's token manager, the machine runs as far as it can from a token's first character,
// remembers the last position where the text so far was a complete token, and on a dead end emits
// that token and restarts right after it (so `12e` is DECIMAL `12` followed by IDENTIFIER `e`).

import { ErrorCode, RmqError } from "../../common/errors.ts";
import { FilterExpressionError } from "./filter-expression-error.ts";

export const TokenKind = {
  Not: "NOT",
  And: "AND",
  Or: "OR",
  Between: "BETWEEN",
  In: "IN",
  True: "TRUE",
  False: "FALSE",
  Null: "NULL",
  Is: "IS",
  Contains: "CONTAINS",
  StartsWith: "STARTSWITH",
  EndsWith: "ENDSWITH",
  Decimal: "DECIMAL_LITERAL",
  Floating: "FLOATING_POINT_LITERAL",
  String: "STRING_LITERAL",
  Identifier: "IDENTIFIER",
  Eq: "=",
  Ne: "<>",
  Gt: ">",
  Ge: ">=",
  Lt: "<",
  Le: "<=",
  LParen: "(",
  RParen: ")",
  Comma: ",",
  Plus: "+",
  Minus: "-",
  Eof: "EOF",
} as const;
export type TokenKind = (typeof TokenKind)[keyof typeof TokenKind];

export interface Token {
  readonly kind: TokenKind;
  /** 0-based UTF-16 offset of the first character. */
  readonly start: number;
  /** Offset just past the last character. */
  readonly end: number;
  /** The source text of the token. */
  readonly text: string;
  /** STRING: the decoded literal (quotes removed, '' -> '); otherwise equal to text. */
  readonly value: string;
}

const KEYWORDS: ReadonlyMap<string, TokenKind> = new Map<string, TokenKind>([
  ["NOT", TokenKind.Not],
  ["AND", TokenKind.And],
  ["OR", TokenKind.Or],
  ["BETWEEN", TokenKind.Between],
  ["IN", TokenKind.In],
  ["TRUE", TokenKind.True],
  ["FALSE", TokenKind.False],
  ["NULL", TokenKind.Null],
  ["IS", TokenKind.Is],
  ["CONTAINS", TokenKind.Contains],
  ["STARTSWITH", TokenKind.StartsWith],
  ["ENDSWITH", TokenKind.EndsWith],
]);

/** Machine states. A state's accepting token (if any) is in ACCEPTS. */
const State = {
  Start: 0,
  Whitespace: 1,
  Identifier: 2,
  Zero: 3, // "0": a complete decimal; more digits can only continue a floating literal
  ZeroDigits: 4, // "0" followed by digits: not a token unless a '.' or exponent follows
  Digits: 5, // [1-9][0-9]*
  LongSuffix: 6, // [1-9][0-9]*[lL]
  Fraction: 7, // digits '.' digits*
  LeadingDot: 8, // '.'
  DotFraction: 9, // '.' digits+
  ExponentMark: 10, // ... e|E
  ExponentSign: 11, // ... e|E +|-
  ExponentDigits: 12,
  StringBody: 13, // inside '...'
  StringQuote: 14, // a quote inside a string: the end, or the first half of ''
  Minus: 15,
  LineComment: 16,
  LineCommentCr: 17, // a line comment ended by \r, which may be followed by \n
  Slash: 18,
  BlockComment: 19,
  BlockCommentStar: 20,
  CommentEnd: 21, // a complete comment (line or block)
  Less: 22,
  Greater: 23,
  Single: 24, // a one-character operator that nothing can extend
  TwoChar: 25, // <> <= >=: complete, nothing can extend them
} as const;
type State = (typeof State)[keyof typeof State];
const DEAD = -1;

/**
 * What a state yields when the machine stops there: a token kind, SKIP (white space, comments),
 * OPERATOR (a fixed operator, looked up by its text), or nothing (not a complete token).
 */
const SKIP = "SKIP";
const OPERATOR = "OPERATOR";
type Accept = TokenKind | typeof SKIP | typeof OPERATOR | undefined;

function accepts(state: State): Accept {
  switch (state) {
    case State.Whitespace:
    case State.LineCommentCr:
    case State.CommentEnd:
      return SKIP;
    case State.Identifier:
      return TokenKind.Identifier;
    case State.Zero:
    case State.Digits:
    case State.LongSuffix:
      return TokenKind.Decimal;
    case State.Fraction:
    case State.DotFraction:
    case State.ExponentDigits:
      return TokenKind.Floating;
    case State.StringQuote:
      return TokenKind.String;
    case State.Minus:
      return TokenKind.Minus;
    case State.Less:
      return TokenKind.Lt;
    case State.Greater:
      return TokenKind.Gt;
    case State.Single:
    case State.TwoChar:
      return OPERATOR;
    default: // includes LineComment: a line comment is complete only once its line break is read
      return undefined;
  }
}

const OPERATORS: ReadonlyMap<string, TokenKind> = new Map<string, TokenKind>([
  ["=", TokenKind.Eq],
  ["(", TokenKind.LParen],
  [")", TokenKind.RParen],
  [",", TokenKind.Comma],
  ["+", TokenKind.Plus],
  ["<>", TokenKind.Ne],
  ["<=", TokenKind.Le],
  [">=", TokenKind.Ge],
]);

const isDigit = (c: number): boolean => c >= 0x30 && c <= 0x39;
const isIdentifierStart = (c: number): boolean =>
  (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || c === 0x5f || c === 0x24;
const isIdentifierPart = (c: number): boolean => isIdentifierStart(c) || isDigit(c);
const isExponentMark = (c: number): boolean => c === 0x65 || c === 0x45;
const QUOTE = 0x27;
const LF = 0x0a;
const CR = 0x0d;
const STAR = 0x2a;
const SLASH = 0x2f;

/** One transition; DEAD when the character cannot extend the current token. */
function step(state: State, c: number): State | typeof DEAD {
  switch (state) {
    case State.Start:
      if (c === 0x20 || c === 0x09 || c === LF || c === CR || c === 0x0c) return State.Whitespace;
      if (isIdentifierStart(c)) return State.Identifier;
      if (c === 0x30) return State.Zero;
      if (isDigit(c)) return State.Digits;
      if (c === 0x2e) return State.LeadingDot;
      if (c === QUOTE) return State.StringBody;
      if (c === 0x2d) return State.Minus;
      if (c === SLASH) return State.Slash;
      if (c === 0x3c) return State.Less;
      if (c === 0x3e) return State.Greater;
      if (c === 0x3d || c === 0x28 || c === 0x29 || c === 0x2c || c === 0x2b) return State.Single;
      return DEAD;
    case State.Identifier:
      return isIdentifierPart(c) ? State.Identifier : DEAD;
    case State.Zero:
    case State.ZeroDigits:
      if (isDigit(c)) return State.ZeroDigits;
      if (c === 0x2e) return State.Fraction;
      if (isExponentMark(c)) return State.ExponentMark;
      return DEAD;
    case State.Digits:
      if (isDigit(c)) return State.Digits;
      if (c === 0x6c || c === 0x4c) return State.LongSuffix;
      if (c === 0x2e) return State.Fraction;
      if (isExponentMark(c)) return State.ExponentMark;
      return DEAD;
    case State.Fraction:
    case State.DotFraction:
      if (isDigit(c)) return state;
      if (isExponentMark(c)) return State.ExponentMark;
      return DEAD;
    case State.LeadingDot:
      return isDigit(c) ? State.DotFraction : DEAD;
    case State.ExponentMark:
      if (c === 0x2b || c === 0x2d) return State.ExponentSign;
      return isDigit(c) ? State.ExponentDigits : DEAD;
    case State.ExponentSign:
    case State.ExponentDigits:
      return isDigit(c) ? State.ExponentDigits : DEAD;
    case State.StringBody:
      return c === QUOTE ? State.StringQuote : State.StringBody;
    case State.StringQuote:
      return c === QUOTE ? State.StringBody : DEAD;
    case State.Minus:
      return c === 0x2d ? State.LineComment : DEAD;
    case State.LineComment:
      if (c === LF) return State.CommentEnd;
      if (c === CR) return State.LineCommentCr;
      return State.LineComment;
    case State.LineCommentCr:
      return c === LF ? State.CommentEnd : DEAD;
    case State.Slash:
      return c === STAR ? State.BlockComment : DEAD;
    case State.BlockComment:
      return c === STAR ? State.BlockCommentStar : State.BlockComment;
    case State.BlockCommentStar:
      if (c === SLASH) return State.CommentEnd;
      return c === STAR ? State.BlockCommentStar : State.BlockComment;
    case State.Less:
      return c === 0x3e || c === 0x3d ? State.TwoChar : DEAD;
    case State.Greater:
      return c === 0x3d ? State.TwoChar : DEAD;
    default:
      return DEAD;
  }
}

/**
 * Produces tokens on demand, as JavaCC's token manager does: the parser pulls only as many as it
 * needs, so the first error reported is always the leftmost one.
 */
export class Sql92Lexer {
  private readonly source: string;
  private pos = 0;
  /**
   * No line break exists at or after this offset (learned when a "--" scan ran off the end). A
   * later "--" there cannot become a comment, so it is not scanned again: this keeps lexing linear
   * on inputs full of "--" without line breaks (JavaCC rescans each time).
   */
  private noLineBreakFrom = Number.POSITIVE_INFINITY;

  constructor(source: string) {
    this.source = source;
  }

  /** The next token; EOF once the input is exhausted (and on every later call). Throws on a lexical error. */
  next(): Token {
    const source = this.source;
    while (this.pos < source.length) {
      const pos = this.pos;
      let state: State = State.Start;
      let i = pos;
      let lastAccept: Accept;
      let lastEnd = -1;
      while (i < source.length) {
        const next = step(state, source.charCodeAt(i));
        if (next === DEAD) break;
        if (next === State.LineComment && state === State.Minus && i >= this.noLineBreakFrom) break;
        state = next;
        i++;
        // An unterminated "--x" never reaches an accepting comment state, so at the end of the
        // input the machine falls back to the last accepted token, the first "-".
        const accept = accepts(state);
        if (accept !== undefined) {
          lastAccept = accept;
          lastEnd = i;
        }
      }
      if (state === State.LineComment && i === source.length)
        this.noLineBreakFrom = Math.min(this.noLineBreakFrom, pos);
      if (lastAccept === undefined) throw lexicalError(source, pos, state);
      this.pos = lastEnd;
      if (lastAccept !== SKIP) {
        const text = source.slice(pos, lastEnd);
        const kind = tokenKindOf(lastAccept, text);
        const value = kind === TokenKind.String ? decodeStringLiteral(text) : text;
        return { kind, start: pos, end: lastEnd, text, value };
      }
    }
    return { kind: TokenKind.Eof, start: source.length, end: source.length, text: "", value: "" };
  }
}

/** All tokens of a selector, ending with one EOF token. Throws on the first lexical error. */
export function tokenizeSql92(source: string): Token[] {
  const lexer = new Sql92Lexer(source);
  const tokens: Token[] = [];
  for (;;) {
    const token = lexer.next();
    tokens.push(token);
    if (token.kind === TokenKind.Eof) return tokens;
  }
}

function tokenKindOf(accept: TokenKind | typeof OPERATOR, text: string): TokenKind {
  if (accept === OPERATOR) {
    const op = OPERATORS.get(text);
    if (op === undefined) throw new RmqError(ErrorCode.Internal, `sql92 lexer: no operator ${text}`); // unreachable
    return op;
  }
  return accept === TokenKind.Identifier ? (KEYWORDS.get(text.toUpperCase()) ?? accept) : accept;
}

/** '...' -> its content, with each '' turned into one quote. */
function decodeStringLiteral(text: string): string {
  return text.slice(1, -1).replaceAll("''", "'");
}

function lexicalError(source: string, pos: number, state: State): FilterExpressionError {
  switch (state) {
    case State.StringBody:
      return fail(pos, "unterminated string literal: expected a closing quote (')");
    case State.BlockComment:
    case State.BlockCommentStar:
      return fail(pos, "unterminated comment: expected */");
    case State.Slash:
      return fail(pos, "unexpected '/': expected /* to start a comment");
    case State.LeadingDot:
      return fail(pos, "unexpected '.': expected a digit after it");
    default:
      return fail(
        pos,
        `unexpected character ${describeChar(source, pos)}: expected an identifier, a literal, ` +
          "an operator (= <> > >= < <= + -), '(', ')' or ','",
      );
  }
}

function fail(position: number, message: string): FilterExpressionError {
  return new FilterExpressionError(`illegal SQL92 expression at position ${position}: ${message}`, position);
}

function describeChar(source: string, pos: number): string {
  const cp = source.codePointAt(pos) ?? 0;
  const hex = `U+${cp.toString(16).toUpperCase().padStart(4, "0")}`;
  return cp >= 0x21 && cp !== 0x7f ? `'${String.fromCodePoint(cp)}' (${hex})` : hex;
}
