import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { readFileIfExists, readJsonFile, writeFileAtomic } from "./atomic-file.ts";
import { ErrorCode, isRmqError } from "./errors.ts";

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "rmq-atomic-"));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

describe("writeFileAtomic", () => {
  it("creates missing directories, replaces content, keeps the previous version as .bak and leaves no temp file", async () => {
    const file = path.join(dir, "config", "topics.json");
    await writeFileAtomic(file, '{"v":1}');
    expect(fs.readFileSync(file, "utf8")).toBe('{"v":1}');
    expect(fs.existsSync(`${file}.bak`)).toBe(false);
    await writeFileAtomic(file, '{"v":2}');
    expect(fs.readFileSync(file, "utf8")).toBe('{"v":2}');
    expect(fs.readFileSync(`${file}.bak`, "utf8")).toBe('{"v":1}');
    expect(fs.readdirSync(path.dirname(file)).sort()).toEqual(["topics.json", "topics.json.bak"]);
  });

  it("serializes concurrent writes to one file: the last call wins", async () => {
    const file = path.join(dir, "offsets.json");
    await Promise.all(Array.from({ length: 20 }, (_, i) => writeFileAtomic(file, JSON.stringify({ i }))));
    expect(JSON.parse(fs.readFileSync(file, "utf8"))).toEqual({ i: 19 });
  });
});

describe("reading", () => {
  it("ignores and removes a temp file left by a crash before the rename", async () => {
    const file = path.join(dir, "a.json");
    fs.writeFileSync(file, '{"ok":true}');
    fs.writeFileSync(`${file}.tmp`, '{"half');
    expect(await readJsonFile(file)).toEqual({ ok: true });
    expect(fs.existsSync(`${file}.tmp`)).toBe(false);
    fs.writeFileSync(`${path.join(dir, "b.json")}.tmp`, "{}");
    expect(await readFileIfExists(path.join(dir, "b.json"))).toBeUndefined();
  });

  it("reports a corrupt or empty file as one clear error naming the file and its backup", async () => {
    const file = path.join(dir, "topics.json");
    fs.writeFileSync(file, '{"topicConfigTable": {');
    const err = await readJsonFile(file).catch((e: unknown) => e);
    expect(isRmqError(err, ErrorCode.MetadataCorrupt)).toBe(true);
    const msg = (err as Error).message;
    expect(msg).toContain(file);
    expect(msg).toContain(`${file}.bak`);
    expect(msg).not.toContain("\n");
    fs.writeFileSync(file, "  \n");
    await expect(readJsonFile(file)).rejects.toThrow(/empty/);
  });
});
