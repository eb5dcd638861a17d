import { describe, expect, it } from "vitest";
import { ErrorCode, isRmqError } from "../../common/errors.ts";
import type { MessageInput } from "../store/message-store-types.ts";
import { decodeRecallHandle } from "./recall-handle.ts";
import { TIMER_TOPIC } from "./timer-properties.ts";
import { isTimerMessage, transformTimerMessage } from "./timer-transform.ts";

const NOW = 1_700_000_000_000;
const CFG = { timerPrecisionMs: 1000, timerMaxDelaySec: 3600, brokerName: "broker-a" };

function msg(props: Record<string, string>, topic = "TopicA", queueId = 3): MessageInput {
  return {
    topic,
    queueId,
    flag: 0,
    body: Buffer.from("x"),
    properties: new Map(Object.entries(props)),
    bornTimestamp: NOW,
    bornHost: { address: "127.0.0.1", port: 1 },
    sysFlag: 0,
    reconsumeTimes: 0,
    preparedTransactionOffset: 0,
  };
}

function codeOf(f: () => unknown): string {
  try {
    f();
    return "OK";
  } catch (e) {
    if (!isRmqError(e)) throw e;
    return e.code;
  }
}

describe("transformTimerMessage (upstream HookUtils.transformTimerMessage)", () => {
  it("rewrites to the timer topic, rounding down to the precision (an exact multiple one step lower)", () => {
    const input = msg({ TIMER_DELIVER_MS: String(NOW + 5500), UNIQ_KEY: "U1", TAGS: "t" });
    const r = transformTimerMessage(input, CFG, NOW);
    expect(r?.timerOutMs).toBe(NOW + 5000);
    expect(r?.message.topic).toBe(TIMER_TOPIC);
    expect(r?.message.queueId).toBe(0);
    const p = r?.message.properties;
    expect(p?.get("REAL_TOPIC")).toBe("TopicA");
    expect(p?.get("REAL_QID")).toBe("3");
    expect(p?.get("TIMER_OUT_MS")).toBe(String(NOW + 5000));
    expect(p?.get("TIMER_DELIVER_MS")).toBe(String(NOW + 5500));
    expect(p?.get("TAGS")).toBe("t");
    expect(r?.uniqKey).toBe("U1");
    // The caller's map is left alone.
    expect(input.properties.has("REAL_TOPIC")).toBe(false);
    expect(decodeRecallHandle(r?.recallHandle ?? "")).toEqual({
      topic: "TopicA",
      brokerName: "broker-a",
      timestampMs: NOW + 5001,
      messageId: "U1",
    });
    expect(transformTimerMessage(msg({ TIMER_DELIVER_MS: String(NOW + 6000) }), CFG, NOW)?.timerOutMs).toBe(
      NOW + 5000,
    );
    expect(transformTimerMessage(msg({ TIMER_DELAY_SEC: "10" }), CFG, NOW)?.timerOutMs).toBe(NOW + 9000);
    expect(transformTimerMessage(msg({ TIMER_DELAY_MS: "10500" }), CFG, NOW)?.timerOutMs).toBe(NOW + 10_000);
  });

  it("gives a message without UNIQ_KEY one, so the recall handle can name it", () => {
    const r = transformTimerMessage(msg({ TIMER_DELAY_SEC: "5" }), CFG, NOW);
    expect(r?.uniqKey).toMatch(/^[0-9A-F]{32,}$/);
    expect(r?.message.properties.get("UNIQ_KEY")).toBe(r?.uniqKey);
    expect(decodeRecallHandle(r?.recallHandle ?? "").messageId).toBe(r?.uniqKey);
  });

  it("leaves non-timer and already-due messages alone; retry topics get no recall handle", () => {
    expect(transformTimerMessage(msg({ KEYS: "k" }), CFG, NOW)).toBeUndefined();
    expect(transformTimerMessage(msg({ TIMER_DELIVER_MS: String(NOW) }), CFG, NOW)).toBeUndefined();
    expect(transformTimerMessage(msg({ TIMER_DELAY_SEC: "0" }), CFG, NOW)).toBeUndefined();
    // Delivered by the timer already (TIMER_OUT_MS kept): not delayed again.
    const again = msg({ TIMER_DELIVER_MS: String(NOW + 5000), TIMER_OUT_MS: String(NOW + 4000) });
    expect(isTimerMessage(again)).toBe(false);
    expect(transformTimerMessage(msg({ TIMER_DELAY_SEC: "5" }, TIMER_TOPIC), CFG, NOW)).toBeUndefined();
    const retry = transformTimerMessage(msg({ TIMER_DELAY_SEC: "5" }, "%RETRY%g_TopicA"), CFG, NOW);
    expect(retry?.message.topic).toBe(TIMER_TOPIC);
    expect(retry?.recallHandle).toBeUndefined();
  });

  it("refuses a delay above timerMaxDelaySec, a non-integer time and a past delete marker", () => {
    expect(codeOf(() => transformTimerMessage(msg({ TIMER_DELAY_SEC: "3601" }), CFG, NOW))).toBe(
      ErrorCode.IllegalDeliveryTime,
    );
    expect(codeOf(() => transformTimerMessage(msg({ TIMER_DELAY_SEC: "3600" }), CFG, NOW))).toBe("OK");
    for (const bad of ["", "1e3", "12.5", "0x10", "abc", "99999999999999999999"]) {
      expect(
        codeOf(() => transformTimerMessage(msg({ TIMER_DELIVER_MS: bad }), CFG, NOW)),
        bad,
      ).toBe(ErrorCode.IllegalDeliveryTime);
    }
    expect(
      codeOf(() =>
        transformTimerMessage(
          msg({ TIMER_DELIVER_MS: String(NOW - 1), TIMER_DEL_UNIQKEY: "TopicA+U" }),
          CFG,
          NOW,
        ),
      ),
    ).toBe(ErrorCode.IllegalDeliveryTime);
  });
});
