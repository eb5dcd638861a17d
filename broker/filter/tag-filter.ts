// TAG subscription expressions: "*" (or empty) subscribes to everything, otherwise "tagA || tagB".
//
// Upstream (FilterAPI.buildSubscriptionData): split on "||", trim each part (Java trim), drop empty
// parts; the subscription keeps the tag strings and their Java String.hashCode() codes. The broker
// then filters ConsumeQueue units by tagsCode alone (ExpressionMessageFilter.isMatchedByConsumeQueue,
// comparing the unit's long tagsCode truncated to int), and the exact string test happens once the
// message is read (proxy FilterUtils.isTagMatched) because different tags can share a hash code.
//
// Differences from upstream, both deliberate:
// - The whole expression is trimmed before the "*"/empty test, so " * " and "  " mean everything.
//   Upstream treats " * " as the literal tag "*" and a blank expression as an empty tag set, which
//   matches nothing at the broker.
// - Expressions longer than MAX_FILTER_EXPRESSION_LENGTH are rejected (upstream has no cap).
// Kept as upstream: an expression with no tags left after splitting (e.g. "||") matches nothing,
// and "*" inside a list ("a || *") is the literal tag "*", not a wildcard.

import { FilterExpressionError } from "./filter-expression-error.ts";
import { MAX_FILTER_EXPRESSION_LENGTH } from "./filter-limits.ts";
import { javaStringHashCode } from "./java-hash.ts";
import { javaTrim } from "./java-trim.ts";

/** The subscription-wide wildcard (upstream SubscriptionData.SUB_ALL). */
export const TAG_SUBSCRIBE_ALL = "*";
const TAG_SEPARATOR = "||";

export interface TagFilter {
  /** True for "*" / empty: every message matches, with or without a tag. */
  readonly matchesAll: boolean;
  /** The subscribed tags (empty when matchesAll). */
  readonly tags: ReadonlySet<string>;
  /** Java String.hashCode() of each subscribed tag. */
  readonly tagsCodes: ReadonlySet<number>;
  /**
   * Cheap pre-filter on a ConsumeQueue unit's tagsCode. A false answer is final; a true answer may
   * be a hash collision, so confirm with matchTag once the message is read.
   */
  matchTagsCode(tagsCode: number): boolean;
  /** Exact test on the message's tag (undefined when the message has none). */
  matchTag(tag: string | undefined): boolean;
}

export function parseTagExpression(expression: string): TagFilter {
  if (expression.length > MAX_FILTER_EXPRESSION_LENGTH) {
    throw new FilterExpressionError(
      `TAG expression is ${expression.length} characters long; at most ${MAX_FILTER_EXPRESSION_LENGTH} are allowed`,
      -1,
    );
  }
  const trimmed = javaTrim(expression);
  if (trimmed.length === 0 || trimmed === TAG_SUBSCRIBE_ALL) return MATCH_ALL;
  const tags = new Set<string>();
  const tagsCodes = new Set<number>();
  for (const part of trimmed.split(TAG_SEPARATOR)) {
    const tag = javaTrim(part);
    if (tag.length === 0) continue;
    tags.add(tag);
    tagsCodes.add(javaStringHashCode(tag));
  }
  return {
    matchesAll: false,
    tags,
    tagsCodes,
    // `| 0` is Java's long.intValue(): keep the low 32 bits, two's complement.
    matchTagsCode: (tagsCode) => tagsCodes.has(tagsCode | 0),
    matchTag: (tag) => tag !== undefined && tags.has(tag),
  };
}

const MATCH_ALL: TagFilter = {
  matchesAll: true,
  tags: new Set<string>(),
  tagsCodes: new Set<number>(),
  matchTagsCode: () => true,
  matchTag: () => true,
};
