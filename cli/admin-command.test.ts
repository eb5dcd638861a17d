// The in-process parts of `rmq admin`: case-insensitive subcommand names, the NameServer address
// default, strict flag values and the -p retry-policy JSON.

import { Command } from "commander";
import { describe, expect, it } from "vitest";
import { ErrorCode, RmqError } from "../common/errors.ts";
import { DEFAULT_NAMESRV_ADDR, resolveNamesrvAddrs } from "./admin/admin-context.ts";
import { boolFlag, clusterOrBroker, intFlag } from "./admin/flag-values.ts";
import { parseRetryPolicyJson } from "./admin/group-commands.ts";
import { adminSubcommandNames, normalizeAdminArgv, registerAdminCommand } from "./admin-command.ts";

const NODE = ["/usr/bin/node", "/app/cli/rmq.ts"];

function codeOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (e instanceof RmqError) return e.code;
    throw e;
  }
  return "OK";
}

describe("normalizeAdminArgv", () => {
  const known = ["updateTopic", "topicList", "consumerProgress", "getSyncStateSet"];

  it("rewrites the admin subcommand name to its registered spelling, whatever its case", () => {
    expect(normalizeAdminArgv([...NODE, "admin", "updatetopic", "-t", "T"], known)).toEqual([
      ...NODE,
      "admin",
      "updateTopic",
      "-t",
      "T",
    ]);
    expect(normalizeAdminArgv([...NODE, "admin", "CONSUMERPROGRESS"], known)[3]).toBe("consumerProgress");
    expect(normalizeAdminArgv([...NODE, "admin", "getsyncstateset", "-a", "x"], known)[3]).toBe(
      "getSyncStateSet",
    );
  });

  it("leaves everything else alone: other roles, option values, unknown names, bare admin", () => {
    const other = [...NODE, "broker", "-c", "updatetopic"];
    expect(normalizeAdminArgv(other, known)).toEqual(other);
    const value = [...NODE, "admin", "topicList", "-n", "updatetopic"];
    expect(normalizeAdminArgv(value, known)).toEqual(value);
    const unknown = [...NODE, "admin", "nosuchcommand"];
    expect(normalizeAdminArgv(unknown, known)).toEqual(unknown);
    expect(normalizeAdminArgv([...NODE, "admin"], known)).toEqual([...NODE, "admin"]);
    expect(normalizeAdminArgv([...NODE, "admin", "--help"], known)).toEqual([...NODE, "admin", "--help"]);
    const input = [...NODE, "admin", "topiclist"];
    normalizeAdminArgv(input, known);
    expect(input[3]).toBe("topiclist"); // a copy is returned, the input is not modified
  });

  it("knows every registered admin subcommand, the controller ones included", () => {
    const program = new Command("rmq");
    registerAdminCommand(program);
    const names = adminSubcommandNames(program);
    for (const n of [
      "updateTopic",
      "deleteTopic",
      "topicList",
      "topicRoute",
      "topicStatus",
      "updateSubGroup",
      "deleteSubGroup",
      "consumerProgress",
      "clusterList",
      "brokerStatus",
      "queryMsgByKey",
      "queryMsgById",
      "getControllerMetaData",
    ]) {
      expect(names).toContain(n);
    }
    expect(normalizeAdminArgv([...NODE, "admin", "querymsgbyid"], names)[3]).toBe("queryMsgById");
  });
});

describe("NameServer addresses", () => {
  it("takes -n, else NAMESRV_ADDR, else 127.0.0.1:9876, and refuses malformed entries", () => {
    expect(resolveNamesrvAddrs("10.0.0.1:9876;10.0.0.2:9876", { NAMESRV_ADDR: "x:1" })).toEqual([
      "10.0.0.1:9876",
      "10.0.0.2:9876",
    ]);
    expect(resolveNamesrvAddrs(undefined, { NAMESRV_ADDR: "ns:9876" })).toEqual(["ns:9876"]);
    expect(resolveNamesrvAddrs(undefined, {})).toEqual([DEFAULT_NAMESRV_ADDR]);
    expect(codeOf(() => resolveNamesrvAddrs("localhost", {}))).toBe(ErrorCode.IllegalArgument);
    expect(codeOf(() => resolveNamesrvAddrs(" ; ", {}))).toBe(ErrorCode.IllegalArgument);
  });
});

describe("flag values", () => {
  it("parses integers and booleans strictly, naming the flag when refusing", () => {
    expect(intFlag("-r", " 8 ", 0, 10)).toBe(8);
    expect(() => intFlag("-r", "8x", 0)).toThrow('-r "8x" is illegal: expected an integer from 0');
    expect(() => intFlag("-r", "11", 0, 10)).toThrow(/from 0 to 10/);
    expect(boolFlag("-o", "TRUE")).toBe(true);
    expect(boolFlag("-o", "false")).toBe(false);
    expect(() => boolFlag("-o", "1")).toThrow('-o "1" is illegal: expected true or false');
  });

  it("wants exactly one of -c and -b", () => {
    expect(clusterOrBroker({ clusterName: "C" })).toEqual({ cluster: "C" });
    expect(clusterOrBroker({ brokerAddr: "h:1" })).toEqual({ broker: "h:1" });
    expect(() => clusterOrBroker({})).toThrow(/one of -c\/--clusterName or -b\/--brokerAddr is required/);
    expect(() => clusterOrBroker({ clusterName: "C", brokerAddr: "h:1" })).toThrow(/not both/);
  });

  it("reads updateSubGroup -p retry policies as upstream writes them", () => {
    expect(
      parseRetryPolicyJson(
        '{"type":"EXPONENTIAL","exponentialRetryPolicy":{"initial":5000,"max":7200000,"multiplier":2}}',
      ),
    ).toEqual({
      type: "EXPONENTIAL",
      exponentialRetryPolicy: { initial: 5000n, max: 7_200_000n, multiplier: 2n },
    });
    expect(
      parseRetryPolicyJson('{"type":"CUSTOMIZED","customizedRetryPolicy":{"next":[1000,5000]}}'),
    ).toEqual({
      type: "CUSTOMIZED",
      customizedRetryPolicy: { next: [1000n, 5000n] },
    });
    for (const bad of [
      "{",
      "[]",
      '{"type":1}',
      '{"customizedRetryPolicy":{"next":"x"}}',
      '{"exponentialRetryPolicy":{"initial":1.5}}',
    ]) {
      expect(
        codeOf(() => parseRetryPolicyJson(bad)),
        bad,
      ).toBe(ErrorCode.IllegalArgument);
    }
  });
});
