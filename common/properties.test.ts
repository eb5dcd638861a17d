import { describe, expect, it } from "vitest";
import { expandHome, parseProperties, toRecord, USER_HOME_PLACEHOLDER } from "./properties.ts";

describe("parseProperties", () => {
  it("follows java.util.Properties: separators, comments, continuations, escapes, last duplicate wins", () => {
    const text = [
      "# comment",
      "! another comment",
      "a=1",
      "b = two words ",
      "c:3",
      "d 4",
      "  e=indented",
      "f=one\\",
      "   two",
      "g=\\u00e9t\\u00e9",
      "a=1b",
      "h=",
    ].join("\n");
    const doc = parseProperties(text, "t.conf");
    expect(toRecord(doc)).toEqual({
      a: "1b",
      b: "two words",
      c: "3",
      d: "4",
      e: "indented",
      f: "onetwo",
      g: "été",
      h: "",
    });
    expect(doc.entries.find((e) => e.key === "f")?.line).toBe(8);
    expect(doc.entries.filter((e) => e.key === "a").map((e) => e.line)).toEqual([3, 11]);
  });

  it("cuts inline comments after whitespace (seed files use them) but keeps # inside a value", () => {
    const doc = parseProperties(
      "brokerId=0  # 0 means master\nbrokerRole=SYNC_MASTER\t# sync\nurl=http://h/x#frag\n",
    );
    expect(toRecord(doc)).toEqual({ brokerId: "0", brokerRole: "SYNC_MASTER", url: "http://h/x#frag" });
    const java = parseProperties("brokerId=0  # 0 means master\n", "x", { javaCompatible: true });
    expect(toRecord(java)).toEqual({ brokerId: "0  # 0 means master" });
  });
});

describe("expandHome", () => {
  it("expands the user.home placeholder and a leading ~ only", () => {
    expect(expandHome(`${USER_HOME_PLACEHOLDER}/store`, "/home/u")).toBe("/home/u/store");
    expect(expandHome("~/store", "/home/u")).toBe("/home/u/store");
    expect(expandHome("~", "/home/u")).toBe("/home/u");
    const other = ["$", "{other}"].join("");
    expect(expandHome(`/data/~x/${other}`, "/home/u")).toBe(`/data/~x/${other}`);
  });
});
