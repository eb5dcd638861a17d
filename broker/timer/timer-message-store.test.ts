import { copyFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { afterEach, describe, expect, it } from "vitest";
import { ErrorCode, isRmqError, RmqError } from "../../common/errors.ts";
import { tempDir } from "../../test/fixtures/store-fixtures.ts";
import { PermName } from "../metadata/topic-config-manager.ts";
import { TestClock } from "../pop/test-broker.fixture.ts";
import { encodeRecallHandle } from "./recall-handle.ts";
import { timerCheckpointPath } from "./timer-checkpoint.ts";
import { TIMER_TOPIC, TimerProperty } from "./timer-properties.ts";
import {
  bodyText,
  openTimerBroker,
  TEST_BROKER,
  type TimerBroker,
  type TimerBrokerOptions,
} from "./timer-test.fixture.ts";

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const P = 100; // precision in these tests
const START = 1_700_000_000_000;

async function open(o: TimerBrokerOptions & { dir?: string } = {}): Promise<TimerBroker> {
  let dir = o.dir;
  if (dir === undefined) {
    const t = tempDir("timer");
    cleanups.push(t.remove);
    dir = t.dir;
  }
  const b = await openTimerBroker(dir, { ...o, timer: { timerPrecisionMs: P, ...o.timer } });
  let closed = false;
  cleanups.push(async () => {
    if (!closed) await b.close();
  });
  const close = b.close;
  b.close = async () => {
    closed = true;
    await close();
  };
  return b;
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return "OK";
  } catch (e) {
    if (!isRmqError(e)) throw e;
    return e.code;
  }
}

function bodies(ms: { body: Uint8Array }[]): string[] {
  return ms.map((m) => bodyText(m as Parameters<typeof bodyText>[0]));
}

describe("timer delivery", () => {
  it("delivers each message to its real topic and queue at the end of its slot, in order, with the same id", async () => {
    const clock = new TestClock(START);
    const b = await open({ clock: clock.read });
    const a = await b.send("T1", "a", { TIMER_DELIVER_MS: String(START + 1000), KEYS: "ka" }, 2);
    const bb = await b.send("T1", "b", { TIMER_DELIVER_MS: String(START + 1050) }, 2);
    const c = await b.send("T1", "c", { TIMER_DELAY_MS: "1030" }, 2);
    const d = await b.send("T1", "d", { TIMER_DELAY_SEC: "2" }, 1);
    // An exact multiple goes one slot lower, so it is due exactly at its time.
    expect(a.timerOutMs).toBe(START + 900);
    expect(bb.timerOutMs).toBe(START + 1000);
    expect(await b.delivered(TIMER_TOPIC)).toHaveLength(4);
    await b.timer.tick();
    expect(b.timer.pendingCount()).toBe(4);
    expect(await b.delivered("T1", 2)).toHaveLength(0);

    clock.advance(999);
    await b.timer.tick();
    expect(await b.delivered("T1", 2)).toHaveLength(0);
    clock.advance(1);
    await b.timer.tick();
    expect(bodies(await b.delivered("T1", 2))).toEqual(["a"]);
    clock.advance(100);
    await b.timer.tick();
    const q2 = await b.delivered("T1", 2);
    expect(bodies(q2)).toEqual(["a", "b", "c"]);
    expect(b.timer.pendingCount()).toBe(1);

    const first = q2[0];
    expect(first?.topic).toBe("T1");
    expect(first?.queueId).toBe(2);
    expect(first?.properties.get("UNIQ_KEY")).toBe(a.messageId);
    expect(first?.properties.get("KEYS")).toBe("ka");
    expect(first?.properties.get(TimerProperty.TIMER_DELIVER_MS)).toBe(String(START + 1000));
    expect(first?.properties.has(TimerProperty.REAL_TOPIC)).toBe(false);
    expect(first?.properties.has(TimerProperty.REAL_QID)).toBe(false);
    expect(first?.bornHost).toEqual({ address: "10.0.0.1", port: 5000 });

    clock.advance(1000);
    await b.timer.tick();
    expect(bodies(await b.delivered("T1", 1))).toEqual(["d"]);
    expect(b.timer.pendingCount()).toBe(0);
    // Nothing is delivered twice however often the worker runs.
    clock.advance(5000);
    await b.timer.tick();
    expect(await b.delivered("T1", 2)).toHaveLength(3);
    expect(await b.delivered("T1", 1)).toHaveLength(1);
    expect(c.messageId).not.toBe(d.messageId);
  });

  it("delivers a slot of many messages (several write batches) once each, in send order", async () => {
    const clock = new TestClock(START);
    const b = await open({ clock: clock.read });
    const n = 700;
    for (let i = 0; i < n; i++) await b.send("Big", `m${i}`, { TIMER_DELIVER_MS: String(START + 500) });
    await b.timer.tick();
    expect(b.timer.pendingCount()).toBe(n);
    clock.advance(500);
    await b.timer.tick();
    expect(bodies(await b.delivered("Big"))).toEqual(Array.from({ length: n }, (_, i) => `m${i}`));
    expect(b.timer.pendingCount()).toBe(0);
  });

  it("a message stored after its slot was read goes out at once; a past time is delivered as a normal message", async () => {
    const clock = new TestClock(START);
    const b = await open({ clock: clock.read });
    // Stored for START+300, but the timer has already read past it when it sees it.
    const late = b.timer.transform({
      topic: "Late",
      queueId: 0,
      flag: 0,
      body: Buffer.from("late"),
      properties: new Map([[TimerProperty.TIMER_DELIVER_MS, String(START + 300)]]),
      bornTimestamp: START,
      bornHost: { address: "10.0.0.1", port: 1 },
      sysFlag: 0,
      reconsumeTimes: 0,
      preparedTransactionOffset: 0,
    });
    clock.advance(1000);
    await b.timer.tick();
    await b.store.putMessages([late?.message as NonNullable<typeof late>["message"]]);
    await b.timer.tick();
    expect(bodies(await b.delivered("Late"))).toEqual([]);
    clock.advance(100);
    await b.timer.tick();
    expect(bodies(await b.delivered("Late"))).toEqual(["late"]);

    const past = await b.send("Past", "p", { TIMER_DELIVER_MS: String(START - 5000) });
    expect(past.recallHandle).toBeUndefined();
    expect(bodies(await b.delivered("Past"))).toEqual(["p"]);
  });

  it("refuses a delay above timerMaxDelaySec and a time that is not an integer", async () => {
    const clock = new TestClock(START);
    const b = await open({ clock: clock.read, timer: { timerMaxDelaySec: 60 } });
    expect(await codeOf(b.send("T", "x", { TIMER_DELIVER_MS: String(START + 60_001) }))).toBe(
      ErrorCode.IllegalDeliveryTime,
    );
    expect(await codeOf(b.send("T", "x", { TIMER_DELAY_SEC: "61" }))).toBe(ErrorCode.IllegalDeliveryTime);
    expect(await codeOf(b.send("T", "x", { TIMER_DELAY_MS: "1.5" }))).toBe(ErrorCode.IllegalDeliveryTime);
    expect(await codeOf(b.send("T", "x", { TIMER_DELIVER_MS: "soon" }))).toBe(ErrorCode.IllegalDeliveryTime);
    expect(await codeOf(b.send("T", "x", { TIMER_DELIVER_MS: String(START + 60_000) }))).toBe("OK");
  });

  it("rolls a delay beyond the roll window through nearer slots and delivers it once, on time", async () => {
    const clock = new TestClock(START);
    // Window of 10 slots = 1 s at 100 ms.
    const b = await open({ clock: clock.read, timer: { timerRollWindowSlot: 10 } });
    const s = await b.send("Roll", "far", { TIMER_DELIVER_MS: String(START + 3050) });
    await b.send("Roll", "near", { TIMER_DELIVER_MS: String(START + 550) });
    await b.timer.tick();
    for (let t = 0; t < 3000; t += 100) {
      clock.advance(100);
      await b.timer.tick();
    }
    expect(bodies(await b.delivered("Roll"))).toEqual(["near"]);
    clock.advance(100);
    await b.timer.tick();
    const got = await b.delivered("Roll");
    expect(bodies(got)).toEqual(["near", "far"]);
    expect(got[1]?.properties.get("UNIQ_KEY")).toBe(s.messageId);
    expect(got[1]?.properties.has(TimerProperty.TIMER_ROLL_TIMES)).toBe(false);
    // The far one went through the timer topic again at least twice (rolled copies).
    const copies = (await b.delivered(TIMER_TOPIC)).filter((m) => bodyText(m) === "far");
    expect(copies.length).toBeGreaterThanOrEqual(3);
    expect(copies.at(-1)?.properties.get(TimerProperty.TIMER_ROLL_TIMES)).toBe(String(copies.length - 1));
    clock.advance(5000);
    await b.timer.tick();
    expect(await b.delivered("Roll")).toHaveLength(2);
    expect(b.timer.pendingCount()).toBe(0);
  });

  it("keeps the timer topic write-only so no pop can consume it", async () => {
    const b = await open();
    const tc = b.topics.get(TIMER_TOPIC);
    expect(tc?.perm).toBe(PermName.PERM_WRITE);
    expect(tc?.writeQueueNums).toBe(1);
  });

  it("a 3 s delay arrives after at least 3 s and within 4.5 s (real clock, 1 s precision)", async () => {
    const b = await open({ timer: { timerPrecisionMs: 1000 } });
    const sentAt = Date.now();
    await b.send("RealTime", "rt", { TIMER_DELIVER_MS: String(sentAt + 3000) });
    let arrivedAt = 0;
    while (Date.now() - sentAt < 6000) {
      if ((await b.delivered("RealTime")).length > 0) {
        arrivedAt = Date.now();
        break;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(arrivedAt - sentAt).toBeGreaterThanOrEqual(3000);
    expect(arrivedAt - sentAt).toBeLessThanOrEqual(4500);
  });
});

describe("timer restart", () => {
  it("after a clean restart pending messages are delivered on time and overdue ones right away, none twice", async () => {
    const clock = new TestClock(START);
    const t = tempDir("timer-restart");
    cleanups.push(t.remove);
    const b1 = await open({ dir: t.dir, clock: clock.read });
    await b1.send("R", "due-early", { TIMER_DELIVER_MS: String(START + 1000) });
    await b1.send("R", "due-mid", { TIMER_DELIVER_MS: String(START + 5000) });
    await b1.send("R", "due-late", { TIMER_DELIVER_MS: String(START + 60_000) });
    clock.advance(1000);
    await b1.timer.tick();
    expect(bodies(await b1.delivered("R"))).toEqual(["due-early"]);
    // One more sent just before the stop: stored, maybe not enqueued yet.
    await b1.send("R", "sent-last", { TIMER_DELIVER_MS: String(START + 3000) });
    await b1.close();

    // Down for 10 s: due-mid and sent-last came due meanwhile.
    clock.advance(10_000);
    const b2 = await open({ dir: t.dir, clock: clock.read });
    expect(b2.timer.pendingCount()).toBeGreaterThanOrEqual(2);
    await b2.timer.tick();
    expect(bodies(await b2.delivered("R"))).toEqual(["due-early", "sent-last", "due-mid"]);
    clock.advance(50_000);
    await b2.timer.tick();
    expect(bodies(await b2.delivered("R"))).toEqual(["due-early", "sent-last", "due-mid", "due-late"]);
    expect(b2.timer.pendingCount()).toBe(0);
  });

  it("restarting from an older checkpoint (timer log units and deliveries after it) delivers everything once", async () => {
    const clock = new TestClock(START);
    const t = tempDir("timer-oldcp");
    cleanups.push(t.remove);
    const cpFile = timerCheckpointPath(t.dir);
    const saved = join(t.dir, "timercheck.saved");
    const b1 = await open({ dir: t.dir, clock: clock.read });
    await b1.send("O", "A", { TIMER_DELIVER_MS: String(START + 1000) });
    await b1.send("O", "B", { TIMER_DELIVER_MS: String(START + 3000) });
    await b1.timer.tick();
    await b1.timer.flush();
    copyFileSync(cpFile, saved);
    // After the saved checkpoint: more units, a delivery, a roll-free slot walk.
    await b1.send("O", "C", { TIMER_DELIVER_MS: String(START + 2000) });
    await b1.timer.tick();
    clock.advance(1500);
    await b1.timer.tick();
    expect(bodies(await b1.delivered("O"))).toEqual(["A"]);
    await b1.close();
    // As if the process had died right after the saved checkpoint was written.
    copyFileSync(saved, cpFile);

    const b2 = await open({ dir: t.dir, clock: clock.read });
    await b2.timer.tick();
    expect(bodies(await b2.delivered("O"))).toEqual(["A"]);
    clock.advance(2000);
    await b2.timer.tick();
    expect(bodies(await b2.delivered("O"))).toEqual(["A", "C", "B"]);
    expect(b2.timer.pendingCount()).toBe(0);
  });
});

describe("recall", () => {
  it("a recalled message is never delivered; its id comes back", async () => {
    const clock = new TestClock(START);
    const b = await open({ clock: clock.read });
    const keep = await b.send("Rc", "keep", { TIMER_DELIVER_MS: String(START + 2000) });
    const drop = await b.send("Rc", "drop", { TIMER_DELIVER_MS: String(START + 2000) });
    await b.timer.tick();
    expect(b.timer.pendingCount()).toBe(2);
    expect(await b.timer.recall("Rc", drop.recallHandle as string)).toEqual({ messageId: drop.messageId });
    expect(b.timer.pendingCount()).toBe(1);
    // A second recall of the same handle is accepted too (as upstream).
    expect(await b.timer.recall("Rc", drop.recallHandle as string)).toEqual({ messageId: drop.messageId });
    clock.advance(3000);
    await b.timer.tick();
    const got = await b.delivered("Rc");
    expect(bodies(got)).toEqual(["keep"]);
    expect(got[0]?.properties.get("UNIQ_KEY")).toBe(keep.messageId);
  });

  it("a recall survives a restart", async () => {
    const clock = new TestClock(START);
    const t = tempDir("timer-recall-restart");
    cleanups.push(t.remove);
    const b1 = await open({ dir: t.dir, clock: clock.read });
    const m = await b1.send("Rr", "x", { TIMER_DELIVER_MS: String(START + 2000) });
    await b1.timer.recall("Rr", m.recallHandle as string);
    await b1.close();
    clock.advance(5000);
    const b2 = await open({ dir: t.dir, clock: clock.read });
    await b2.timer.tick();
    expect(await b2.delivered("Rr")).toHaveLength(0);
  });

  it("refuses a recall once the message is due or delivered", async () => {
    const clock = new TestClock(START);
    const b = await open({ clock: clock.read });
    const m = await b.send("Rd", "x", { TIMER_DELIVER_MS: String(START + 1000) });
    clock.advance(1000);
    await b.timer.tick();
    expect(await b.delivered("Rd")).toHaveLength(1);
    expect(await codeOf(b.timer.recall("Rd", m.recallHandle as string))).toBe(ErrorCode.MessageNotFound);
  });

  it("refuses bad handles with IllegalArgument or MessageNotFound, never another error", async () => {
    const clock = new TestClock(START);
    const b = await open({ clock: clock.read });
    const m = await b.send("Rb", "x", { TIMER_DELIVER_MS: String(START + 5000) });
    const h = m.recallHandle as string;
    const handle = (
      over: Partial<{ topic: string; brokerName: string; timestampMs: number; messageId: string }>,
    ) =>
      encodeRecallHandle({
        topic: "Rb",
        brokerName: TEST_BROKER,
        timestampMs: START + 4901,
        messageId: m.messageId,
        ...over,
      });
    expect(handle({})).toBe(h);
    expect(await codeOf(b.timer.recall("Rb", ""))).toBe(ErrorCode.IllegalArgument);
    expect(await codeOf(b.timer.recall("Rb", "not a handle!"))).toBe(ErrorCode.IllegalArgument);
    expect(await codeOf(b.timer.recall("Rb", Buffer.from("v2 Rb broker-a 1 id").toString("base64url")))).toBe(
      ErrorCode.IllegalArgument,
    );
    expect(await codeOf(b.timer.recall("Rb", Buffer.from("v1 Rb broker-a x id").toString("base64url")))).toBe(
      ErrorCode.IllegalArgument,
    );
    expect(await codeOf(b.timer.recall("NoSuchTopic", h))).toBe(ErrorCode.TopicNotFound);
    await b.topics.createOrUpdate({ topicName: "Other", readQueueNums: 1, writeQueueNums: 1 });
    expect(await codeOf(b.timer.recall("Other", h))).toBe(ErrorCode.IllegalArgument);
    expect(await codeOf(b.timer.recall("Rb", handle({ brokerName: "broker-b" })))).toBe(
      ErrorCode.IllegalArgument,
    );
    expect(await codeOf(b.timer.recall("Rb", handle({ timestampMs: START + 4 * 24 * 3600 * 1000 })))).toBe(
      ErrorCode.IllegalArgument,
    );
    expect(await codeOf(b.timer.recall("Rb", handle({ timestampMs: START - 1 })))).toBe(
      ErrorCode.MessageNotFound,
    );
    // Unknown id, or a known id with another time: nothing waits under that handle.
    expect(
      await codeOf(b.timer.recall("Rb", handle({ messageId: "7F00000100002A9F0000000000000000" }))),
    ).toBe(ErrorCode.MessageNotFound);
    expect(await codeOf(b.timer.recall("Rb", handle({ timestampMs: START + 3001 })))).toBe(
      ErrorCode.MessageNotFound,
    );
    await fc.assert(
      fc.asyncProperty(fc.string({ maxLength: 200 }), async (s) => {
        try {
          await b.timer.recall("Rb", s);
          return false;
        } catch (e) {
          return e instanceof RmqError;
        }
      }),
      { numRuns: 200 },
    );
    await fc.assert(
      fc.asyncProperty(fc.string({ maxLength: 120 }), async (s) => {
        try {
          await b.timer.recall("Rb", Buffer.from(`v1 ${s}`).toString("base64url"));
          return false;
        } catch (e) {
          return e instanceof RmqError;
        }
      }),
      { numRuns: 200 },
    );
    // None of that touched the real message.
    clock.advance(5000);
    await b.timer.tick();
    expect(bodies(await b.delivered("Rb"))).toEqual(["x"]);
  });
});
