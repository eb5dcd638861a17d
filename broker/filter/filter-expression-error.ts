// The error a bad subscription filter expression raises. It is an RmqError with code
// ILLEGAL_FILTER_EXPRESSION (the proxy maps that to v2 Code.ILLEGAL_FILTER_EXPRESSION = 40010), and
// carries the 0-based UTF-16 offset in the expression where the problem was found (-1 when the
// problem is not tied to a place, e.g. the whole expression is too long).

import { ErrorCode, RmqError } from "../../common/errors.ts";

export class FilterExpressionError extends RmqError {
  readonly position: number;
  constructor(message: string, position: number) {
    super(ErrorCode.IllegalFilterExpression, message);
    this.name = "FilterExpressionError";
    this.position = position;
  }
}
