// mqadmin's value rendering: Java printf cells, Map/Double text, perm strings and time formats.

import { describe, expect, it } from "vitest";
import {
  fixed,
  formatDate,
  front,
  humanTime2,
  javaDouble,
  javaMap,
  left,
  permText,
  right,
} from "./mqadmin-format.ts";

describe("mqadmin value rendering", () => {
  it("pads like %-Ns / %Nd without cutting, and cuts like frontStringAtLeast", () => {
    expect(left("ab", 4)).toBe("ab  ");
    expect(left("abcdef", 4)).toBe("abcdef");
    expect(right(7, 4)).toBe("   7");
    expect(right(12345n, 3)).toBe("12345");
    expect(front("abcdef", 4)).toBe("abcd");
    expect(front("ab", 4)).toBe("ab");
  });

  it("prints numbers, maps and perms as Java does", () => {
    expect(fixed(12.5, 2, 9)).toBe("    12.50");
    expect(fixed(0, 4)).toBe("0.0000");
    expect(javaDouble(0)).toBe("0.0");
    expect(javaDouble(12.5)).toBe("12.5");
    expect(javaMap({})).toBe("{}");
    expect(javaMap({ "0": "127.0.0.1:10911", "1": "127.0.0.1:10921" })).toBe(
      "{0=127.0.0.1:10911, 1=127.0.0.1:10921}",
    );
    expect([permText(6), permText(4), permText(2), permText(7), permText(0)]).toEqual([
      "RW-",
      "R--",
      "-W-",
      "RWX",
      "---",
    ]);
  });

  it("formats times as timeMillisToHumanString2 and formatDate, in local time", () => {
    const t = new Date(2024, 0, 2, 3, 4, 5, 6).getTime();
    expect(humanTime2(t)).toBe("2024-01-02 03:04:05,006");
    expect(formatDate(t)).toBe("2024-01-02 03:04:05");
  });
});
