// Start-up of a benchmark client, as an SDK starts: QueryRoute of the topic on the access point, then
// Telemetry with the client's Settings until the proxy answers. A failure here is one clear RmqError
// (proxy unreachable, topic missing, settings refused) instead of a run full of errors.

import type { MessageInitShape } from "@bufbuild/protobuf";
import { ConnectError, Code as GrpcCode } from "@connectrpc/connect";
import {
  type BenchClient,
  BenchStatusError,
  createBenchClient,
  type TelemetrySession,
} from "../../bench/grpc-client.ts";
import { ErrorCode, RmqError } from "../../common/errors.ts";
import type { MessageQueue, SettingsSchema } from "../../proto/gen/apache/rocketmq/v2/definition_pb.ts";

export interface BenchSession {
  client: BenchClient;
  /** The route's queue 0 (what the SDKs pick), when the route has one. */
  queue: MessageQueue | undefined;
  close(): Promise<void>;
}

export async function openBenchSession(options: {
  endpoint: string;
  connections: number;
  topic: string;
  settings: (client: BenchClient) => MessageInitShape<typeof SettingsSchema>;
}): Promise<BenchSession> {
  const client = createBenchClient({ endpoint: options.endpoint, connections: options.connections });
  let telemetry: TelemetrySession | undefined;
  try {
    const queues = await client.queryRoute(options.topic).catch((error: unknown) => {
      throw setupError(`QueryRoute of topic ${options.topic} at ${options.endpoint}`, error);
    });
    telemetry = await client.openTelemetry(options.settings(client)).catch((error: unknown) => {
      throw setupError(`Telemetry Settings handshake with ${options.endpoint}`, error);
    });
    const opened = telemetry;
    return {
      client,
      queue: queues.find((q) => q.id === 0) ?? queues[0],
      async close() {
        await opened.close();
        client.close();
      },
    };
  } catch (error) {
    client.close();
    throw error;
  }
}

function setupError(what: string, error: unknown): RmqError {
  if (error instanceof BenchStatusError) {
    return new RmqError(ErrorCode.RpcFailed, `bench cannot start: ${error.message}`, { cause: error });
  }
  if (error instanceof ConnectError) {
    const code = error.code === GrpcCode.Unavailable ? ErrorCode.RpcUnavailable : ErrorCode.RpcFailed;
    return new RmqError(code, `bench cannot start: ${what} failed: ${error.rawMessage}`, { cause: error });
  }
  const message = error instanceof Error ? error.message : String(error);
  return new RmqError(ErrorCode.RpcFailed, `bench cannot start: ${what} failed: ${message}`, {
    cause: error,
  });
}
