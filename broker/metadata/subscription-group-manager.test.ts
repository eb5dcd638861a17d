import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ErrorCode, isRmqError } from "../../common/errors.ts";
import {
  createSubscriptionGroupManager,
  DEFAULT_CUSTOMIZED_RETRY_NEXT,
  nextRetryDelayMs,
} from "./subscription-group-manager.ts";

async function rejectionOf(p: Promise<unknown>): Promise<Error> {
  return p.then(
    () => {
      throw new Error("expected a rejection");
    },
    (e: unknown) => e as Error,
  );
}

let root: string;
beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), "rmq-groups-"));
});
afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

describe("retry policies", () => {
  it("customized default is upstream's level table, retry n waits level n + 3", () => {
    expect(DEFAULT_CUSTOMIZED_RETRY_NEXT.map((ms) => ms / 1000)).toEqual([
      1, 5, 10, 30, 60, 120, 180, 240, 300, 360, 420, 480, 540, 600, 1200, 1800, 3600, 7200,
    ]);
    const p = { type: "CUSTOMIZED" as const };
    expect(nextRetryDelayMs(p, 0)).toBe(10_000);
    expect(nextRetryDelayMs(p, 1)).toBe(30_000);
    expect(nextRetryDelayMs(p, 15)).toBe(7_200_000);
    expect(nextRetryDelayMs(p, 100)).toBe(7_200_000);
    expect(nextRetryDelayMs({ type: "CUSTOMIZED", customizedRetryPolicy: { next: [1, 2, 3, 4] } }, 1)).toBe(
      4,
    );
  });
  it("exponential doubles from 5 s up to 2 h; without parameters it falls back to the level table", () => {
    const p = {
      type: "EXPONENTIAL" as const,
      exponentialRetryPolicy: { initial: 5000, max: 7_200_000, multiplier: 2 },
    };
    expect([0, 1, 2, 10, 40].map((n) => nextRetryDelayMs(p, n))).toEqual([
      5000, 10_000, 20_000, 5_120_000, 7_200_000,
    ]);
    expect(nextRetryDelayMs({ type: "EXPONENTIAL" }, 0)).toBe(10_000);
  });
});

describe("SubscriptionGroupManager", () => {
  it("has upstream's built-in groups and defaults", async () => {
    const m = await createSubscriptionGroupManager({
      storePathRootDir: root,
      autoCreateSubscriptionGroup: true,
    });
    expect(m.get("TOOLS_CONSUMER")).toBeDefined();
    expect(m.get("CID_RMQ_SYS_TRANS")?.consumeBroadcastEnable).toBe(true);
    const g = await m.findOrAutoCreate("GID_test");
    expect(g).toEqual({
      groupName: "GID_test",
      consumeEnable: true,
      consumeFromMinEnable: true,
      consumeBroadcastEnable: true,
      consumeMessageOrderly: false,
      retryQueueNums: 1,
      retryMaxTimes: 16,
      groupRetryPolicy: { type: "CUSTOMIZED" },
      brokerId: 0,
      whichBrokerWhenConsumeSlowly: 1,
      notifyConsumerIdsChangedEnable: true,
      groupSysFlag: 0,
      consumeTimeoutMinute: 15,
      attributes: {},
    });
    expect(await m.findOrAutoCreate("bad group")).toBeUndefined();
    const strict = await createSubscriptionGroupManager({
      storePathRootDir: path.join(root, "s"),
      autoCreateSubscriptionGroup: false,
    });
    expect(await strict.findOrAutoCreate("GID_x")).toBeUndefined();
  });

  it("creates, updates, deletes and reloads groups from subscriptionGroup.json", async () => {
    const m = await createSubscriptionGroupManager({
      storePathRootDir: root,
      autoCreateSubscriptionGroup: true,
    });
    await m.createOrUpdate({
      groupName: "GID_fifo",
      consumeMessageOrderly: true,
      retryMaxTimes: 3,
      groupRetryPolicy: {
        type: "EXPONENTIAL",
        exponentialRetryPolicy: { initial: 1000, max: 60_000, multiplier: 3 },
      },
    });
    await m.createOrUpdate({ groupName: "GID_fifo", retryQueueNums: 2 });
    expect(m.get("GID_fifo")).toMatchObject({
      consumeMessageOrderly: true,
      retryMaxTimes: 3,
      retryQueueNums: 2,
    });
    await m.createOrUpdate({ groupName: "GID_gone" });
    expect(await m.delete("GID_gone")).toBe(true);
    const json = JSON.parse(fs.readFileSync(path.join(root, "config", "subscriptionGroup.json"), "utf8"));
    expect(Object.keys(json)).toEqual(["subscriptionGroupTable", "forbiddenTable", "dataVersion"]);
    expect(json.subscriptionGroupTable.GID_fifo.groupRetryPolicy).toEqual({
      type: "EXPONENTIAL",
      exponentialRetryPolicy: { initial: 1000, max: 60_000, multiplier: 3 },
    });
    const again = await createSubscriptionGroupManager({
      storePathRootDir: root,
      autoCreateSubscriptionGroup: true,
    });
    expect(again.get("GID_fifo")).toEqual(m.get("GID_fifo"));
    expect(again.get("GID_gone")).toBeUndefined();
    expect(again.dataVersion.counter).toBe(m.dataVersion.counter);
  });

  it("refuses bad names and values, and a corrupt file stops the start with a clear error", async () => {
    const m = await createSubscriptionGroupManager({
      storePathRootDir: root,
      autoCreateSubscriptionGroup: true,
    });
    await expect(m.createOrUpdate({ groupName: "a.b" })).rejects.toThrow(/"a\.b".*may only contain/);
    await expect(m.createOrUpdate({ groupName: "G", retryQueueNums: -1 })).rejects.toThrow(
      /retryQueueNums=-1/,
    );
    await expect(
      m.createOrUpdate({
        groupName: "G",
        groupRetryPolicy: { type: "CUSTOMIZED", customizedRetryPolicy: { next: [] } },
      }),
    ).rejects.toThrow(/customizedRetryPolicy\.next must be a non-empty list/);
    const file = path.join(root, "config", "subscriptionGroup.json");
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(
      file,
      JSON.stringify({ subscriptionGroupTable: { G: { groupName: "G", consumeEnable: "yes" } } }),
    );
    const e = await rejectionOf(
      createSubscriptionGroupManager({ storePathRootDir: root, autoCreateSubscriptionGroup: true }),
    );
    expect(isRmqError(e, ErrorCode.MetadataCorrupt)).toBe(true);
    expect(e.message).toContain('subscriptionGroupTable.G.consumeEnable="yes" must be true or false');
  });
});
