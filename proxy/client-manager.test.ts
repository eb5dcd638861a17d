import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { silentLogger } from "../common/logger.ts";
import { ClientType, SettingsSchema } from "../proto/gen/apache/rocketmq/v2/definition_pb.ts";
import { type TelemetryCommand, TelemetryCommandSchema } from "../proto/gen/apache/rocketmq/v2/service_pb.ts";
import { createClientManager, type SessionEndReason, type TelemetrySink } from "./client-manager.ts";
import type { CallContext } from "./context.ts";

function call(clientId: string): CallContext {
  return {
    clientId,
    language: "HTTP",
    clientVersion: "1.0.8",
    protocolVersion: "v2",
    namespace: "",
    requestId: "",
    connection: {
      remoteAddress: "127.0.0.1",
      remotePort: 1,
      localAddress: "127.0.0.1",
      localPort: 2,
      tls: false,
    },
    peer: "127.0.0.1:1",
    remainingMs: () => Number.POSITIVE_INFINITY,
  };
}

function sink(): TelemetrySink & { pushed: TelemetryCommand[]; ended: boolean } {
  const s = {
    pushed: [] as TelemetryCommand[],
    ended: false,
    closed: false,
    push(c: TelemetryCommand) {
      if (s.closed) return false;
      s.pushed.push(c);
      return true;
    },
    end() {
      s.ended = true;
      s.closed = true;
    },
  };
  return s;
}

describe("client manager", () => {
  it("routes commands to a live producer of the topic only", () => {
    const clients = createClientManager({ sessionExpiryMs: 60_000, logger: silentLogger() });
    try {
      const producer = sink();
      const consumer = sink();
      clients.applySettings(call("p1"), producer, {
        clientType: ClientType.PRODUCER,
        topics: ["T1"],
        settings: create(SettingsSchema),
      });
      clients.applySettings(call("c1"), consumer, {
        clientType: ClientType.SIMPLE_CONSUMER,
        group: "G",
        topics: ["T1"],
        settings: create(SettingsSchema),
      });
      const command = create(TelemetryCommandSchema);
      expect(clients.sendToProducerOf("T1", command)).toBe(true);
      expect(producer.pushed).toHaveLength(1);
      expect(consumer.pushed).toHaveLength(0);
      expect(clients.sendToProducerOf("T2", command)).toBe(false);
      clients.addProducerTopic("p1", "T2");
      expect(clients.sendToProducerOf("T2", command)).toBe(true);
    } finally {
      clients.close();
    }
  });

  it("ends a session on termination without closing its stream, and on the end of its current stream", () => {
    const removed: SessionEndReason[] = [];
    const clients = createClientManager({
      sessionExpiryMs: 60_000,
      logger: silentLogger(),
      onSessionRemoved: (_s, reason) => removed.push(reason),
    });
    try {
      const first = sink();
      clients.applySettings(call("a"), first, {
        clientType: ClientType.PRODUCER,
        topics: [],
        settings: create(SettingsSchema),
      });
      expect(clients.remove("a", "terminated")).toBe(true);
      expect(first.ended).toBe(false);

      const old = sink();
      const current = sink();
      clients.applySettings(call("b"), old, {
        clientType: ClientType.PRODUCER,
        topics: [],
        settings: create(SettingsSchema),
      });
      clients.applySettings(call("b"), current, {
        clientType: ClientType.PRODUCER,
        topics: [],
        settings: create(SettingsSchema),
      });
      clients.streamEnded("b", old);
      expect(clients.get("b")).toBeDefined();
      clients.streamEnded("b", current);
      expect(clients.get("b")).toBeUndefined();
      expect(removed).toEqual(["terminated", "stream-ended"]);
    } finally {
      clients.close();
    }
  });

  it("expires sessions without signs of life and ends their streams", async () => {
    let now = 1_000;
    const clients = createClientManager({ sessionExpiryMs: 20, logger: silentLogger(), now: () => now });
    try {
      const s = sink();
      clients.applySettings(call("x"), s, {
        clientType: ClientType.PRODUCER,
        topics: [],
        settings: create(SettingsSchema),
      });
      clients.heartbeat(call("y"), ClientType.SIMPLE_CONSUMER, "G");
      now += 10;
      clients.touch("y");
      now += 15;
      await new Promise((r) => setTimeout(r, 60));
      expect(clients.get("x")).toBeUndefined();
      expect(s.ended).toBe(true);
      expect(clients.get("y")?.group).toBe("G");
    } finally {
      clients.close();
    }
  });

  it("matches a client's reply to the command that asked for it by nonce", async () => {
    const clients = createClientManager({ sessionExpiryMs: 60_000, logger: silentLogger() });
    try {
      const s = sink();
      clients.applySettings(call("z"), s, {
        clientType: ClientType.PRODUCER,
        topics: [],
        settings: create(SettingsSchema),
      });
      const reply = clients.request("z", (nonce) =>
        create(TelemetryCommandSchema, {
          command: { case: "printThreadStackTraceCommand", value: { nonce } },
        }),
      );
      const sent = s.pushed[0]?.command;
      const nonce = sent?.case === "printThreadStackTraceCommand" ? sent.value.nonce : "";
      const answer = create(TelemetryCommandSchema, {
        command: { case: "threadStackTrace", value: { nonce, threadStackTrace: "stack" } },
      });
      expect(clients.resolveReply("z", "other", answer)).toBe(false);
      expect(clients.resolveReply("z", nonce, answer)).toBe(true);
      expect(await reply).toBe(answer);
      await expect(clients.request("nobody", () => create(TelemetryCommandSchema))).rejects.toThrow(
        /no open Telemetry stream/,
      );
    } finally {
      clients.close();
    }
  });
});
