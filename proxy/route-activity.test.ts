import { describe, expect, it } from "vitest";
import { MessageType } from "../proto/gen/apache/rocketmq/v2/definition_pb.ts";
import { resolveResource, unwrapNamespace, wrapNamespace } from "./resource.ts";
import { acceptMessageTypes, parseAuthority } from "./route-activity.ts";

describe("route details", () => {
  it("advertises IPv4 and DNS authorities only", () => {
    expect(parseAuthority("127.0.0.1:8081", 1)).toEqual({ host: "127.0.0.1", port: 8081 });
    expect(parseAuthority("proxy.example:9000", 1)).toEqual({ host: "proxy.example", port: 9000 });
    expect(parseAuthority("localhost", 8081)).toEqual({ host: "localhost", port: 8081 });
    expect(parseAuthority("[::1]:8081", 1)).toBeUndefined();
    expect(parseAuthority("::1", 1)).toBeUndefined();
    expect(parseAuthority("host:0", 1)).toBeUndefined();
    expect(parseAuthority("bad host:1", 1)).toBeUndefined();
    expect(parseAuthority(undefined, 1)).toBeUndefined();
  });

  it("accepts the topic's own message type, or all of them for MIXED and untyped topics", () => {
    expect(acceptMessageTypes("FIFO")).toEqual([MessageType.FIFO]);
    expect(acceptMessageTypes("MIXED")).toHaveLength(4);
    expect(acceptMessageTypes("UNSPECIFIED")).toHaveLength(4);
  });

  it("puts the namespace in front of names, preferring the resource's own over the header", () => {
    expect(resolveResource({ name: "T", resourceNamespace: "" } as never, { namespace: "ns" }).fullName).toBe(
      "ns%T",
    );
    expect(
      resolveResource({ name: "T", resourceNamespace: "own" } as never, { namespace: "ns" }).fullName,
    ).toBe("own%T");
    expect(resolveResource(undefined, { namespace: "" }).fullName).toBe("");
    expect(wrapNamespace("ns", "ns%T")).toBe("ns%T");
    expect(unwrapNamespace("ns", "ns%T")).toBe("T");
    expect(unwrapNamespace("", "ns%T")).toBe("ns%T");
  });
});
