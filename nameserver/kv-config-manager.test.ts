import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ErrorCode, isRmqError } from "../common/errors.ts";
import { createKvConfigManager } from "./kv-config-manager.ts";

describe("KvConfigManager", () => {
  let dir: string;
  let file: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "namesrv-kv-"));
    file = path.join(dir, "namesrv", "kvConfig.json");
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("persists every change in upstream's kvConfig.json shape and reloads it", async () => {
    const kv = await createKvConfigManager(file);
    expect(kv.get("ORDER_TOPIC_CONFIG", "T")).toBeUndefined();
    await kv.put("ORDER_TOPIC_CONFIG", "T", "broker-a:4;broker-b:4");
    await kv.put("ns", "k1", "v1");
    await kv.put("ns", "k2", "v2");
    await kv.put("ns", "k1", "v1b");
    await kv.delete("ns", "k2");
    await kv.delete("ns", "missing");
    expect(JSON.parse(fs.readFileSync(file, "utf8"))).toEqual({
      configTable: { ORDER_TOPIC_CONFIG: { T: "broker-a:4;broker-b:4" }, ns: { k1: "v1b" } },
    });

    const again = await createKvConfigManager(file);
    expect(again.get("ns", "k1")).toBe("v1b");
    expect(again.get("ns", "k2")).toBeUndefined();
    expect(Object.fromEntries(again.list("ORDER_TOPIC_CONFIG"))).toEqual({ T: "broker-a:4;broker-b:4" });
    expect(again.list("unknown").size).toBe(0);

    await again.delete("ns", "k1");
    expect(JSON.parse(fs.readFileSync(file, "utf8"))).toEqual({
      configTable: { ORDER_TOPIC_CONFIG: { T: "broker-a:4;broker-b:4" } },
    });
  });

  it("reads a file written by upstream", async () => {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, '{"configTable":{"ORDER_TOPIC_CONFIG":{"TopicOrder":"broker-a:8"}}}');
    const kv = await createKvConfigManager(file);
    expect(kv.get("ORDER_TOPIC_CONFIG", "TopicOrder")).toBe("broker-a:8");
  });

  it("refuses a corrupt file with one line naming it", async () => {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, '{"configTable":{"ns":{"k":1}}}');
    let err: unknown;
    try {
      await createKvConfigManager(file);
    } catch (e) {
      err = e;
    }
    expect(isRmqError(err, ErrorCode.MetadataCorrupt)).toBe(true);
    expect((err as Error).message).toContain(file);
    expect((err as Error).message).toContain("configTable.ns.k");
  });

  it("rejects an empty namespace or key", async () => {
    const kv = await createKvConfigManager(file);
    await expect(kv.put("", "k", "v")).rejects.toMatchObject({ code: ErrorCode.IllegalArgument });
    await expect(kv.put("ns", "", "v")).rejects.toMatchObject({ code: ErrorCode.IllegalArgument });
    expect(fs.existsSync(file)).toBe(false);
  });
});
