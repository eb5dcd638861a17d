// Explicit bounds on subscription filter expressions. Upstream (apache/rocketmq 5.3.x, SelectorParser /
// FilterAPI) enforces none of these: a huge or deeply nested expression there costs parser time or
// ends in a StackOverflowError that surfaces as "Invalid MessageSelector". Ours are generous enough
// for any hand-written or generated filter and keep compile time and recursion depth bounded.

/** Longest TAG or SQL92 expression accepted, in UTF-16 code units (upstream: no cap; ours). */
export const MAX_FILTER_EXPRESSION_LENGTH = 65_536;

/** Most string literals in one `IN (...)` / `NOT IN (...)` list (upstream: no cap; ours). */
export const MAX_SQL92_IN_LIST_SIZE = 1_024;

/**
 * Deepest nesting of an SQL92 expression (upstream: no cap; ours): bounds both the parser's
 * recursion (parentheses and the prefix operators NOT, -, +) and the depth of the resulting AST
 * (chained comparisons such as `a = b = c` nest too), so the recursive evaluator can never
 * overflow the stack.
 */
export const MAX_SQL92_NESTING_DEPTH = 100;

/** Compiled SQL92 filters kept for reuse by expression text (upstream SelectorParser PARSE_CACHE: 100). */
export const SQL92_COMPILE_CACHE_SIZE = 100;
