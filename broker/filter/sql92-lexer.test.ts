import { describe, expect, it } from "vitest";
import { ErrorCode, isRmqError } from "../../common/errors.ts";
import { FilterExpressionError } from "./filter-expression-error.ts";
import { Sql92Lexer, TokenKind, tokenizeSql92 } from "./sql92-lexer.ts";

/** "KIND:text" for every token but EOF. */
function lex(source: string): string[] {
  return tokenizeSql92(source)
    .filter((t) => t.kind !== TokenKind.Eof)
    .map((t) => `${t.kind}:${t.text}`);
}

function lexError(source: string): FilterExpressionError {
  try {
    tokenizeSql92(source);
  } catch (e) {
    if (e instanceof FilterExpressionError) return e;
    throw e;
  }
  throw new Error(`expected a lexical error for ${JSON.stringify(source)}`);
}

describe("tokenizeSql92", () => {
  it("recognises keywords in any case, and identifiers that merely start with one", () => {
    expect(lex("not And oR between IN true False NULL is contains StartsWith ENDSWITH")).toEqual([
      "NOT:not",
      "AND:And",
      "OR:oR",
      "BETWEEN:between",
      "IN:IN",
      "TRUE:true",
      "FALSE:False",
      "NULL:NULL",
      "IS:is",
      "CONTAINS:contains",
      "STARTSWITH:StartsWith",
      "ENDSWITH:ENDSWITH",
    ]);
    expect(lex("nota ANDY _x $y a1_$ TAGS")).toEqual([
      "IDENTIFIER:nota",
      "IDENTIFIER:ANDY",
      "IDENTIFIER:_x",
      "IDENTIFIER:$y",
      "IDENTIFIER:a1_$",
      "IDENTIFIER:TAGS",
    ]);
  });

  it("lexes operators by longest match", () => {
    expect(lex("a<=b>=c<>d<e>f=g(h,i)+-")).toEqual([
      "IDENTIFIER:a",
      "<=:<=",
      "IDENTIFIER:b",
      ">=:>=",
      "IDENTIFIER:c",
      "<>:<>",
      "IDENTIFIER:d",
      "<:<",
      "IDENTIFIER:e",
      ">:>",
      "IDENTIFIER:f",
      "=:=",
      "IDENTIFIER:g",
      "(:(",
      "IDENTIFIER:h",
      ",:,",
      "IDENTIFIER:i",
      "):)",
      "+:+",
      "-:-",
    ]);
    expect(lex("a == b")).toEqual(["IDENTIFIER:a", "=:=", "=:=", "IDENTIFIER:b"]);
  });

  it("lexes numbers as JavaCC does", () => {
    const D = TokenKind.Decimal;
    const F = TokenKind.Floating;
    expect(lex("0 7 123 12L 12l")).toEqual([`${D}:0`, `${D}:7`, `${D}:123`, `${D}:12L`, `${D}:12l`]);
    expect(lex("1.5 1. .5 1e5 1E+5 1.5e-3 1.e2 007.5")).toEqual([
      `${F}:1.5`,
      `${F}:1.`,
      `${F}:.5`,
      `${F}:1e5`,
      `${F}:1E+5`,
      `${F}:1.5e-3`,
      `${F}:1.e2`,
      `${F}:007.5`,
    ]);
    // Longest match with fallback: no token spans these, so they split.
    expect(lex("007")).toEqual([`${D}:0`, `${D}:0`, `${D}:7`]);
    expect(lex("0L")).toEqual([`${D}:0`, "IDENTIFIER:L"]);
    expect(lex("12e")).toEqual([`${D}:12`, "IDENTIFIER:e"]);
    expect(lex("12e+")).toEqual([`${D}:12`, "IDENTIFIER:e", "+:+"]);
    expect(lex("1.2.3")).toEqual([`${F}:1.2`, `${F}:.3`]);
    expect(lex("12abc")).toEqual([`${D}:12`, "IDENTIFIER:abc"]);
    expect(lex("-5")).toEqual(["-:-", `${D}:5`]); // the sign is an operator
  });

  it("decodes string literals, '' being one quote, everything else literal", () => {
    const tokens = tokenizeSql92("'abc' '' 'it''s' '''' 'a\nb' 'back\\slash' '中文'");
    expect(tokens.filter((t) => t.kind === TokenKind.String).map((t) => t.value)).toEqual([
      "abc",
      "",
      "it's",
      "'",
      "a\nb",
      "back\\slash",
      "中文",
    ]);
    expect(tokens[2]?.text).toBe("'it''s'");
  });

  it("skips white space and comments", () => {
    expect(lex(" \t\n\r\f a /* block \n comment */ = -- line comment\n 1 /***/")).toEqual([
      "IDENTIFIER:a",
      "=:=",
      `${TokenKind.Decimal}:1`,
    ]);
    expect(lex("a -- comment ended by CR\r= 1")).toEqual(["IDENTIFIER:a", "=:=", `${TokenKind.Decimal}:1`]);
    expect(lex("a /* ** / * */ b")).toEqual(["IDENTIFIER:a", "IDENTIFIER:b"]);
  });

  it("reads '--' without a following line break as two minus signs", () => {
    expect(lex("a > --5")).toEqual(["IDENTIFIER:a", ">:>", "-:-", "-:-", `${TokenKind.Decimal}:5`]);
    expect(lex("a > --5\n")).toEqual(["IDENTIFIER:a", ">:>"]);
  });

  it("records token positions", () => {
    const tokens = tokenizeSql92("  ab >= 'x'");
    expect(tokens.map((t) => [t.kind, t.start, t.end])).toEqual([
      [TokenKind.Identifier, 2, 4],
      [TokenKind.Ge, 5, 7],
      [TokenKind.String, 8, 11],
      [TokenKind.Eof, 11, 11],
    ]);
  });

  it("reports lexical errors with their position", () => {
    const cases: [string, number, RegExp][] = [
      ["a = 'abc", 4, /unterminated string literal/],
      ["a = ''' ", 6, /unterminated string literal/], // '' is a complete (empty) literal
      ["a /* never closed", 2, /unterminated comment/],
      ["a != 1", 2, /unexpected character '!'/],
      ["a = 1 ; b", 6, /unexpected character ';'/],
      ['a = "x"', 4, /unexpected character '"'/],
      ["a = .", 4, /expected a digit/],
      ["a / b", 2, /expected \/\*/],
      ["a\u00a0= 1", 1, /U\+00A0/], // only ASCII white space is skipped
      ["é = 1", 0, /unexpected character 'é'/], // identifiers are ASCII only
    ];
    for (const [source, position, message] of cases) {
      const e = lexError(source);
      expect(e.position, source).toBe(position);
      expect(e.message, source).toMatch(message);
      expect(e.message, source).toContain(`position ${position}`);
      expect(isRmqError(e, ErrorCode.IllegalFilterExpression)).toBe(true);
    }
  });

  it("produces tokens lazily, so text after the point of interest is not examined", () => {
    const lexer = new Sql92Lexer("a = 1 'unterminated");
    expect(lexer.next().kind).toBe(TokenKind.Identifier);
    expect(lexer.next().kind).toBe(TokenKind.Eq);
    expect(lexer.next().kind).toBe(TokenKind.Decimal);
    expect(() => lexer.next()).toThrow(/unterminated/);
  });

  it("returns EOF for empty input and keeps returning it", () => {
    const lexer = new Sql92Lexer("");
    expect(lexer.next().kind).toBe(TokenKind.Eof);
    expect(lexer.next().kind).toBe(TokenKind.Eof);
    expect(lex("  /* only a comment */  ")).toEqual([]);
  });
});
