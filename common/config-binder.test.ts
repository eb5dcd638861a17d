import { describe, expect, it } from "vitest";
import { bindConfig, type ConfigNotice, def } from "./config-binder.ts";
import { ErrorCode, isRmqError } from "./errors.ts";

const schema = {
  name: def.string("default-name"),
  port: def.int(10911, { min: 1, max: 65535 }),
  big: def.long(0),
  ratio: def.double(0.5, { min: 0, max: 1 }),
  enabled: def.bool(false),
  mode: def.enum(["ASYNC", "SYNC"], "ASYNC"),
  size: def.int(1024, { aliases: ["oldSize"] }),
  typo: def.string("", { status: "ignored", note: "a known misspelling" }),
  dir: def.string("", { path: true }),
} as const;

function errorOf(fn: () => unknown): Error {
  try {
    fn();
  } catch (e) {
    return e as Error;
  }
  throw new Error("expected an error");
}

describe("bindConfig", () => {
  it("returns defaults for keys nobody set", () => {
    expect(bindConfig(schema, [])).toEqual({
      name: "default-name",
      port: 10911,
      big: 0,
      ratio: 0.5,
      enabled: false,
      mode: "ASYNC",
      size: 1024,
      typo: "",
      dir: "",
    });
  });

  it("parses each type; later layers override earlier ones (command line > file > defaults)", () => {
    const v = bindConfig(
      schema,
      [
        {
          source: "f.conf",
          entries: [
            { key: "port", value: "30911", line: 1 },
            { key: "big", value: "9007199254740991", line: 2 },
            { key: "ratio", value: "0.75", line: 3 },
            { key: "enabled", value: "TRUE", line: 4 },
            { key: "mode", value: "SYNC", line: 5 },
            { key: "name", value: "from-file", line: 6 },
            { key: "dir", value: "~/store", line: 7 },
          ],
        },
        { source: "command line", entries: { name: "from-cli", port: undefined } },
      ],
      { home: "/home/u" },
    );
    expect(v).toMatchObject({
      name: "from-cli",
      port: 30911,
      big: 9007199254740991,
      ratio: 0.75,
      enabled: true,
      mode: "SYNC",
      dir: "/home/u/store",
    });
  });

  it("reports unknown keys as warnings with a suggestion, and ignored keys and aliases as notices", () => {
    const warnings: ConfigNotice[] = [];
    const notices: ConfigNotice[] = [];
    const v = bindConfig(
      schema,
      [
        {
          source: "f.conf",
          entries: [
            { key: "prot", value: "1", line: 3 },
            { key: "typo", value: "x", line: 4 },
            { key: "oldSize", value: "2048", line: 5 },
          ],
        },
      ],
      { onWarning: (w) => warnings.push(w), onNotice: (n) => notices.push(n) },
    );
    expect(warnings.map((w) => [w.kind, w.key, w.where])).toEqual([["unknown-key", "prot", "f.conf line 3"]]);
    expect(warnings[0]?.message).toContain("did you mean port?");
    expect(notices.map((n) => [n.kind, n.key])).toEqual([
      ["ignored-key", "typo"],
      ["alias", "oldSize"],
    ]);
    expect(v.size).toBe(2048);
    expect(v.typo).toBe("");
  });

  it("rejects a bad value with one line naming key, value, origin and what is allowed", () => {
    const cases: [string, string, RegExp][] = [
      [
        "mode",
        "SOMETIMES",
        /^illegal config mode=SOMETIMES \(f\.conf line 9\): allowed values are ASYNC, SYNC$/,
      ],
      ["port", "abc", /^illegal config port=abc \(f\.conf line 9\): expected an integer from 1 to 65535$/],
      ["port", "70000", /port=70000 .*from 1 to 65535/],
      ["port", "1.5", /port=1\.5/],
      ["enabled", "yes", /enabled=yes .*allowed values are true, false/],
      ["ratio", "2", /ratio=2 .*from 0 to 1/],
      ["big", "99999999999999999999", /expected a \(long\) integer/],
    ];
    for (const [key, value, re] of cases) {
      const e = errorOf(() => bindConfig(schema, [{ source: "f.conf", entries: [{ key, value, line: 9 }] }]));
      expect(isRmqError(e, ErrorCode.IllegalConfig)).toBe(true);
      expect(e.message).toMatch(re);
      expect(e.message).not.toContain("\n");
    }
    const nl = errorOf(() => bindConfig(schema, [{ source: "cli", entries: { mode: "A\nB" } }]));
    expect(nl.message).not.toContain("\n");
  });

  it("refuses two spellings of one key with different values in the same source", () => {
    const e = errorOf(() =>
      bindConfig(schema, [
        {
          source: "f.conf",
          entries: [
            { key: "size", value: "1", line: 1 },
            { key: "oldSize", value: "2", line: 2 },
          ],
        },
      ]),
    );
    expect(e.message).toMatch(/oldSize=2 \(f\.conf line 2\): conflicts with size=1 \(f\.conf line 1\)/);
    // Same value twice, or the same spelling twice: the later one wins.
    const v = bindConfig(schema, [
      {
        source: "f.conf",
        entries: [
          { key: "size", value: "1" },
          { key: "size", value: "3" },
        ],
      },
    ]);
    expect(v.size).toBe(3);
  });
});
