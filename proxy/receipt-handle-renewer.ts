// Background renewal of receipt handles for receives with auto_renew (push consumers), as the
// upstream proxy's ReceiptHandleManager does: such messages are popped with a short invisible time
// (60 s) and, while the client holds them, made invisible again shortly before they would expire,
// with growing steps (1 m, 3 m, 5 m, 10 m, 30 m, 1 h), for at most renewMaxMs (3 h). Every renewal
// yields a new backend handle, but the client keeps acking with the handle it received, so ack,
// change-invisible and DLQ calls first exchange the client's handle for the current one (take()).
// When a client goes away its messages are made visible again after releaseInvisibleMs.
//
// The renewal is the proxy's job here, not the backend's: the proxy knows which client holds which
// message and when that client leaves.

import { ErrorCode, isRmqError } from "../common/errors.ts";
import type { Logger } from "../common/logger.ts";
import type { MessagingBackend } from "./backend.ts";

/** How often due renewals are looked for. */
export const RENEW_SCAN_INTERVAL_MS = 1000;

export interface RenewerOptions {
  backend: MessagingBackend;
  logger: Logger;
  renewAheadMs: number;
  renewMaxMs: number;
  renewStepsMs: readonly number[];
  releaseInvisibleMs: number;
  now?: () => number;
  scanIntervalMs?: number;
}

export interface TrackedDelivery {
  clientId: string;
  group: string;
  topic: string;
  messageId: string;
  /** The handle the client received. */
  receiptHandle: string;
  invisibleTimeMs: number;
}

export interface ReceiptHandleRenewer {
  track(delivery: TrackedDelivery): void;
  /**
   * The handle to use now in place of the one the client presented, and stop renewing that message.
   * A handle that is not tracked is returned unchanged.
   */
  take(group: string, messageId: string, receiptHandle: string): Promise<string>;
  /** Stop renewing a departed client's messages and let them come back soon. */
  releaseClient(clientId: string): void;
  /** Number of messages being renewed. */
  size(): number;
  close(): void;
}

interface Tracked {
  key: string;
  clientId: string;
  group: string;
  topic: string;
  messageId: string;
  currentHandle: string;
  expiresAtMs: number;
  firstDeliveredAtMs: number;
  renewals: number;
  inflight?: Promise<void>;
}

export function createReceiptHandleRenewer(options: RenewerOptions): ReceiptHandleRenewer {
  const now = options.now ?? Date.now;
  const tracked = new Map<string, Tracked>();
  const { backend, logger } = options;

  const keyOf = (group: string, messageId: string, handle: string) =>
    `${group}\u0000${messageId}\u0000${handle}`;

  const renew = (t: Tracked) => {
    const steps = options.renewStepsMs;
    const invisibleTimeMs = steps[Math.min(t.renewals, steps.length - 1)] ?? options.renewAheadMs * 2;
    t.inflight = backend
      .changeInvisibleTime({
        group: t.group,
        topic: t.topic,
        receiptHandle: t.currentHandle,
        messageId: t.messageId,
        invisibleTimeMs,
      })
      .then(
        (result) => {
          t.currentHandle = result.receiptHandle;
          t.expiresAtMs = now() + invisibleTimeMs;
          t.renewals++;
        },
        (error: unknown) => {
          if (
            isRmqError(error, ErrorCode.InvalidReceiptHandle) ||
            isRmqError(error, ErrorCode.MessageNotFound)
          ) {
            tracked.delete(t.key); // acked elsewhere or already expired: nothing left to renew
            return;
          }
          logger.warn(
            { err: error, group: t.group, messageId: t.messageId },
            "receipt handle renewal failed; will retry",
          );
        },
      )
      .finally(() => {
        t.inflight = undefined;
      });
  };

  const scan = () => {
    const t0 = now();
    for (const t of tracked.values()) {
      if (t.inflight !== undefined) continue;
      if (t0 - t.firstDeliveredAtMs >= options.renewMaxMs) {
        tracked.delete(t.key); // held too long: let it become visible when the current handle expires
        continue;
      }
      if (t.expiresAtMs - options.renewAheadMs <= t0) renew(t);
    }
  };

  const timer = setInterval(scan, options.scanIntervalMs ?? RENEW_SCAN_INTERVAL_MS);
  timer.unref();

  return {
    track(delivery) {
      const key = keyOf(delivery.group, delivery.messageId, delivery.receiptHandle);
      const t0 = now();
      tracked.set(key, {
        key,
        clientId: delivery.clientId,
        group: delivery.group,
        topic: delivery.topic,
        messageId: delivery.messageId,
        currentHandle: delivery.receiptHandle,
        expiresAtMs: t0 + delivery.invisibleTimeMs,
        firstDeliveredAtMs: t0,
        renewals: 0,
      });
    },

    async take(group, messageId, receiptHandle) {
      const key = keyOf(group, messageId, receiptHandle);
      const t = tracked.get(key);
      if (t === undefined) return receiptHandle;
      tracked.delete(key);
      if (t.inflight !== undefined) await t.inflight;
      return t.currentHandle;
    },

    releaseClient(clientId) {
      for (const t of [...tracked.values()]) {
        if (t.clientId !== clientId) continue;
        tracked.delete(t.key);
        const release = () =>
          backend
            .changeInvisibleTime({
              group: t.group,
              topic: t.topic,
              receiptHandle: t.currentHandle,
              messageId: t.messageId,
              invisibleTimeMs: options.releaseInvisibleMs,
            })
            .then(
              () => undefined,
              (error: unknown) =>
                logger.debug({ err: error, messageId: t.messageId }, "releasing a receipt handle failed"),
            );
        void (t.inflight === undefined ? release() : t.inflight.then(release));
      }
    },

    size: () => tracked.size,

    close() {
      clearInterval(timer);
      tracked.clear();
    },
  };
}
