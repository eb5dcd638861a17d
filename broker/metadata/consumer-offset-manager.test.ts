import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ErrorCode, isRmqError } from "../../common/errors.ts";
import { createConsumerOffsetManager } from "./consumer-offset-manager.ts";

async function rejectionOf(p: Promise<unknown>): Promise<Error> {
  return p.then(
    () => {
      throw new Error("expected a rejection");
    },
    (e: unknown) => e as Error,
  );
}

let root: string;
const file = () => path.join(root, "config", "consumerOffset.json");
beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), "rmq-offsets-"));
});
afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

describe("ConsumerOffsetManager", () => {
  it("commits forward only; reset may go back; unknown queues answer -1", async () => {
    const m = await createConsumerOffsetManager({ storePathRootDir: root });
    expect(m.query("G", "T", 0)).toBe(-1);
    expect(m.commit("G", "T", 0, 10)).toBe(true);
    expect(m.commit("G", "T", 0, 7)).toBe(false);
    expect(m.commit("G", "T", 0, 10)).toBe(true);
    expect(m.query("G", "T", 0)).toBe(10);
    m.reset("G", "T", 0, 3);
    expect(m.query("G", "T", 0)).toBe(3);
    expect(() => m.commit("G", "T", -1, 1)).toThrow(/queueId -1 is illegal/);
    expect(() => m.commit("G", "T", 0, 1.5)).toThrow(/offset 1.5 is illegal/);
  });

  it("removes by group and by topic", async () => {
    const m = await createConsumerOffsetManager({ storePathRootDir: root });
    m.commit("G1", "T1", 0, 1);
    m.commit("G1", "T2", 0, 1);
    m.commit("G2", "T1", 3, 9);
    expect(m.topicsOf("G1").sort()).toEqual(["T1", "T2"]);
    expect(m.groupsOf("T1").sort()).toEqual(["G1", "G2"]);
    expect(m.removeGroup("G1")).toBe(2);
    expect(m.query("G1", "T1", 0)).toBe(-1);
    expect(m.removeTopic("T1")).toBe(1);
    expect(m.groupsOf("T1")).toEqual([]);
  });

  it("persists only when changed, in upstream's shape, and reloads", async () => {
    const m = await createConsumerOffsetManager({ storePathRootDir: root });
    await m.persist();
    expect(fs.existsSync(file())).toBe(false); // nothing to write yet
    m.commit("G", "%RETRY%G", 0, 5);
    m.commit("G", "T", 2, 42);
    m.commit("G", "T", 10, 7);
    await m.close();
    const json = JSON.parse(fs.readFileSync(file(), "utf8"));
    expect(json.offsetTable).toEqual({ "%RETRY%G@G": { "0": 5 }, "T@G": { "2": 42, "10": 7 } });
    expect(json.dataVersion).toHaveProperty("counter");
    const mtime = fs.statSync(file()).mtimeMs;
    await m.persist();
    expect(fs.statSync(file()).mtimeMs).toBe(mtime);
    const again = await createConsumerOffsetManager({ storePathRootDir: root });
    expect(again.queryAll("G", "T")).toEqual(
      new Map([
        [2, 42],
        [10, 7],
      ]),
    );
  });

  it("persists periodically", async () => {
    const m = await createConsumerOffsetManager({ storePathRootDir: root });
    m.startPeriodicPersist(20);
    m.commit("G", "T", 0, 1);
    for (let i = 0; i < 100 && !fs.existsSync(file()); i++) await new Promise((r) => setTimeout(r, 10));
    expect(JSON.parse(fs.readFileSync(file(), "utf8")).offsetTable["T@G"]).toEqual({ "0": 1 });
    await m.close();
  });

  it("reads upstream fastjson files with unquoted queue ids; refuses corrupt ones clearly", async () => {
    fs.mkdirSync(path.dirname(file()), { recursive: true });
    fs.writeFileSync(
      file(),
      '{"offsetTable":{"TopicTest@please_rename_unique_group_name_4":{0:250,1:249,3:251}},"dataVersion":{"counter":2,"stateVersion":0,"timestamp":1}}',
    );
    const m = await createConsumerOffsetManager({ storePathRootDir: root });
    expect(m.query("please_rename_unique_group_name_4", "TopicTest", 3)).toBe(251);
    fs.writeFileSync(file(), '{"offsetTable":{"no-separator":{"0":1}}}');
    const e = await rejectionOf(createConsumerOffsetManager({ storePathRootDir: root }));
    expect(isRmqError(e, ErrorCode.MetadataCorrupt)).toBe(true);
    expect(e.message).toMatch(/"no-separator" is not topic@group/);
    fs.writeFileSync(file(), '{"offsetTable":{"T@G":{"0":"x"}}}');
    await expect(createConsumerOffsetManager({ storePathRootDir: root })).rejects.toThrow(/T@G\.0="x"/);
  });
});
