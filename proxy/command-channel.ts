// The write side of a server stream that several producers feed: a FIFO of items consumed as an
// AsyncIterable by the RPC handler. Writers push from anywhere (the request reader, timers, a
// transaction check); end() finishes the stream normally, fail() ends it with an error.

export interface CommandChannel<T> extends AsyncIterable<T> {
  /** Queue an item; false when the channel has already ended. */
  push(item: T): boolean;
  /** Finish after the queued items. */
  end(): void;
  /** Finish with an error after the queued items. */
  fail(error: unknown): void;
  readonly closed: boolean;
}

export function createCommandChannel<T>(): CommandChannel<T> {
  const queue: T[] = [];
  let closed = false;
  let failure: { error: unknown } | undefined;
  let wake: (() => void) | undefined;

  const notify = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };

  return {
    get closed() {
      return closed;
    },
    push(item) {
      if (closed) return false;
      queue.push(item);
      notify();
      return true;
    },
    end() {
      closed = true;
      notify();
    },
    fail(error) {
      if (closed) return;
      failure = { error };
      closed = true;
      notify();
    },
    async *[Symbol.asyncIterator]() {
      for (;;) {
        const item = queue.shift();
        if (item !== undefined) {
          yield item;
          continue;
        }
        if (closed) {
          if (failure !== undefined) throw failure.error;
          return;
        }
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
      }
    },
  };
}
