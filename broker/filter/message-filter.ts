// The one entry point the broker's pop/receive path uses to filter messages for a subscription
// (upstream broker ExpressionMessageFilter + proxy FilterUtils.isTagMatched):
//
//   const filter = createMessageFilter({ type: "TAG", expression: "a || b" });
//   for each ConsumeQueue unit:  if (!filter.matchesConsumeQueueUnit(unit.tagsCode)) skip it
//   after reading the message:   if (!filter.matchesMessage(tag, properties)) skip it
//
// TAG: the ConsumeQueue test compares the tag hash code only; matchesMessage makes the exact string
// test that removes hash collisions (upstream leaves that to the client or proxy).
// SQL92: the ConsumeQueue test always passes (upstream's optional bloom-filter pre-check, which
// needs ConsumeQueueExt, is not implemented); matchesMessage evaluates the compiled selector on the
// message's stored properties. Whether SQL92 is allowed at all (upstream BrokerConfig
// enablePropertyFilter) and how retry topics are filtered are the caller's decisions.
//
// Creating a filter validates the expression and throws FilterExpressionError (RmqError with code
// ILLEGAL_FILTER_EXPRESSION) when it is bad. SQL92 compilations are cached by expression text, so
// creating a filter per receive request costs a map lookup after the first time.

import { FilterExpressionError } from "./filter-expression-error.ts";
import { SQL92_COMPILE_CACHE_SIZE } from "./filter-limits.ts";
import { type CompiledSql92, compileSql92, type PropertySource } from "./sql92-evaluator.ts";
import { parseTagExpression } from "./tag-filter.ts";

export const FilterType = { TAG: "TAG", SQL92: "SQL92" } as const;
export type FilterType = (typeof FilterType)[keyof typeof FilterType];

/** Name of the property holding a message's tag. */
const TAGS_PROPERTY = "TAGS";

export interface FilterSpec {
  readonly type: FilterType;
  readonly expression: string;
}

export interface MessageFilter {
  readonly type: FilterType;
  readonly expression: string;
  /** Stage 1, on a ConsumeQueue unit: false means skip without reading the CommitLog. */
  matchesConsumeQueueUnit(tagsCode: number): boolean;
  /**
   * Stage 2, on the message read from the CommitLog: its tag (undefined when none) and its stored
   * properties. For SQL92, when `properties` has no TAGS entry, `tag` is visible to the selector as
   * TAGS (upstream stores the tag in that property, so both are normally the same).
   */
  matchesMessage(tag: string | undefined, properties: PropertySource): boolean;
}

export function createMessageFilter(spec: FilterSpec): MessageFilter {
  if (spec.type === FilterType.TAG) return createTagMessageFilter(spec.expression);
  if (spec.type === FilterType.SQL92) return createSql92MessageFilter(spec.expression);
  throw new FilterExpressionError(`unknown filter type ${String(spec.type)}: expected TAG or SQL92`, -1);
}

function createTagMessageFilter(expression: string): MessageFilter {
  const tags = parseTagExpression(expression);
  return {
    type: FilterType.TAG,
    expression,
    matchesConsumeQueueUnit: tags.matchTagsCode,
    matchesMessage: (tag) => tags.matchTag(tag),
  };
}

function createSql92MessageFilter(expression: string): MessageFilter {
  const compiled = compileCached(expression);
  // Reused view that adds TAGS from the `tag` argument; evaluation is synchronous, so one instance
  // per filter is safe and nothing is allocated per message.
  const withTag = new TagFallbackProperties();
  return {
    type: FilterType.SQL92,
    expression,
    matchesConsumeQueueUnit: () => true,
    matchesMessage(tag, properties) {
      if (tag === undefined || properties.get(TAGS_PROPERTY) !== undefined)
        return compiled.evaluate(properties);
      withTag.properties = properties;
      withTag.tag = tag;
      try {
        return compiled.evaluate(withTag);
      } finally {
        withTag.properties = EMPTY_PROPERTIES;
        withTag.tag = undefined;
      }
    },
  };
}

const EMPTY_PROPERTIES: PropertySource = { get: () => undefined };

class TagFallbackProperties implements PropertySource {
  properties: PropertySource = EMPTY_PROPERTIES;
  tag: string | undefined;
  get(name: string): string | undefined {
    return name === TAGS_PROPERTY ? (this.properties.get(name) ?? this.tag) : this.properties.get(name);
  }
}

/** Least-recently-used cache of compilations, failures included (as upstream's PARSE_CACHE). */
const compileCache = new Map<string, CompiledSql92 | FilterExpressionError>();

function compileCached(expression: string): CompiledSql92 {
  let entry = compileCache.get(expression);
  if (entry === undefined) {
    try {
      entry = compileSql92(expression);
    } catch (e) {
      if (!(e instanceof FilterExpressionError)) throw e;
      entry = e;
    }
    if (compileCache.size >= SQL92_COMPILE_CACHE_SIZE) {
      const oldest = compileCache.keys().next();
      if (oldest.done !== true) compileCache.delete(oldest.value);
    }
  } else {
    compileCache.delete(expression); // re-insert below to mark it most recently used
  }
  compileCache.set(expression, entry);
  if (entry instanceof FilterExpressionError) throw entry;
  return entry;
}
