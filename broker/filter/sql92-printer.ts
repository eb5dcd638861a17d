// Prints an SQL92 AST back to selector text. Every composite node is parenthesised, so the output
// re-parses to the very same AST (used for logging compiled filters and for round-trip tests).

import type { Sql92Node } from "./sql92-ast.ts";

export function printSql92(node: Sql92Node): string {
  switch (node.kind) {
    case "string":
      return quote(node.value);
    case "int":
      return String(node.value);
    case "long":
      return node.value.toString();
    case "double":
      return printDouble(node.value);
    case "boolean":
      return node.value ? "TRUE" : "FALSE";
    case "null":
      return "NULL";
    case "property":
      return node.name;
    case "negate":
      return `(-${printSql92(node.operand)})`;
    case "not":
      return `(NOT ${printSql92(node.operand)})`;
    case "and":
      return `(${node.operands.map(printSql92).join(" AND ")})`;
    case "or":
      return `(${node.operands.map(printSql92).join(" OR ")})`;
    case "compare":
      return `(${printSql92(node.left)} ${node.op} ${printSql92(node.right)})`;
    case "isNull":
      return `(${printSql92(node.operand)} IS ${node.negated ? "NOT " : ""}NULL)`;
    case "between":
      return (
        `(${printSql92(node.operand)} ${node.negated ? "NOT " : ""}BETWEEN ` +
        `${printSql92(node.low)} AND ${printSql92(node.high)})`
      );
    case "in":
      return `(${node.property} ${node.negated ? "NOT " : ""}IN (${node.values.map(quote).join(", ")}))`;
    case "match":
      return `(${printSql92(node.operand)} ${node.negated ? "NOT " : ""}${node.op} ${quote(node.pattern)})`;
  }
}

function quote(s: string): string {
  return `'${s.replaceAll("'", "''")}'`;
}

/** Shortest text that reads back as the same double AND lexes as a floating literal (has . or e). */
function printDouble(v: number): string {
  const s = String(v);
  return /[.e]/.test(s) ? s : `${s}.0`;
}
