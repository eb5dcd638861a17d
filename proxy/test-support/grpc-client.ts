// A raw @grpc/grpc-js client for apache.rocketmq.v2.MessagingService (no SDK), for protocol tests:
// plaintext or TLS, arbitrary metadata and deadlines, unary, server-streaming and bidi calls.

import {
  create,
  type DescMessage,
  fromBinary,
  type MessageInitShape,
  type MessageShape,
  toBinary,
} from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { MessagingService } from "../../proto/gen/apache/rocketmq/v2/service_pb.ts";

type Methods = typeof MessagingService.method;
type MethodName = keyof Methods;
type In<M extends MethodName> = Methods[M]["input"];
type Out<M extends MethodName> = Methods[M]["output"];

export interface RawClientOptions {
  tls?: boolean;
  /** Metadata sent with every call (x-mq-client-id etc.); per-call metadata is merged over it. */
  metadata?: Record<string, string>;
  channelOptions?: grpc.ChannelOptions;
}

export interface RawClient {
  unary<M extends MethodName>(
    method: M,
    request: MessageInitShape<In<M>>,
    options?: { metadata?: Record<string, string>; deadlineMs?: number },
  ): Promise<MessageShape<Out<M>>>;
  serverStream<M extends MethodName>(
    method: M,
    request: MessageInitShape<In<M>>,
    options?: { metadata?: Record<string, string>; deadlineMs?: number },
  ): Promise<MessageShape<Out<M>>[]>;
  /** A server stream left to the caller (to cancel it, read it as it comes). */
  openServerStream<M extends MethodName>(
    method: M,
    request: MessageInitShape<In<M>>,
    options?: { metadata?: Record<string, string>; deadlineMs?: number },
  ): grpc.ClientReadableStream<MessageShape<Out<M>>>;
  bidi<M extends MethodName>(
    method: M,
    options?: { metadata?: Record<string, string> },
  ): grpc.ClientDuplexStream<MessageInitShape<In<M>>, MessageShape<Out<M>>>;
  close(): void;
}

export const DEFAULT_TEST_METADATA: Readonly<Record<string, string>> = Object.freeze({
  "x-mq-client-id": "test-host@1@0@raw",
  "x-mq-language": "HTTP",
  "x-mq-client-version": "5.0.8",
  "x-mq-protocol": "v2",
});

export function createRawClient(address: string, options: RawClientOptions = {}): RawClient {
  const definition: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const [localName, m] of Object.entries(MessagingService.method) as [
    string,
    { name: string; methodKind: string; input: DescMessage; output: DescMessage },
  ][]) {
    definition[localName] = {
      path: `/${MessagingService.typeName}/${m.name}`,
      requestStream: m.methodKind === "bidi_streaming",
      responseStream: m.methodKind === "server_streaming" || m.methodKind === "bidi_streaming",
      // create() accepts plain init objects too (and returns real messages unchanged)
      requestSerialize: (value) =>
        Buffer.from(toBinary(m.input, create(m.input, value as MessageInitShape<DescMessage>))),
      requestDeserialize: (bytes) => fromBinary(m.input, bytes),
      responseSerialize: (value) => Buffer.from(toBinary(m.output, value as MessageShape<DescMessage>)),
      responseDeserialize: (bytes) => fromBinary(m.output, bytes),
    };
  }
  const Client = grpc.makeGenericClientConstructor(definition as grpc.ServiceDefinition, "MessagingService");
  const credentials = options.tls
    ? grpc.credentials.createSsl(null, null, null, {
        rejectUnauthorized: false,
        checkServerIdentity: () => undefined,
      })
    : grpc.credentials.createInsecure();
  // SNI must be a host name, not the IP literal of the address.
  const channelOptions = options.tls
    ? { "grpc.ssl_target_name_override": "localhost", ...options.channelOptions }
    : options.channelOptions;
  const client = new Client(address, credentials, channelOptions ?? {});
  const invoke = (name: string, ...args: unknown[]): unknown => {
    const fn = (client as unknown as Record<string, ((...a: unknown[]) => unknown) | undefined>)[name];
    if (fn === undefined) throw new Error(`no method ${name}`);
    return fn.apply(client, args);
  };

  const metadataOf = (extra?: Record<string, string>) => {
    const md = new grpc.Metadata();
    for (const [k, v] of Object.entries({ ...(options.metadata ?? DEFAULT_TEST_METADATA), ...extra })) {
      if (v !== "") md.set(k, v);
    }
    return md;
  };
  const callOptions = (deadlineMs?: number): grpc.CallOptions =>
    deadlineMs === undefined ? {} : { deadline: new Date(Date.now() + deadlineMs) };

  return {
    unary(method, request, o = {}) {
      const m = MessagingService.method[method];
      return new Promise((resolve, reject) => {
        invoke(
          method,
          create(m.input, request),
          metadataOf(o.metadata),
          callOptions(o.deadlineMs),
          (error: grpc.ServiceError | null, response: MessageShape<Out<typeof method>>) => {
            if (error) reject(error);
            else resolve(response);
          },
        );
      });
    },
    serverStream(method, request, o = {}) {
      const m = MessagingService.method[method];
      return new Promise((resolve, reject) => {
        const out: MessageShape<Out<typeof method>>[] = [];
        const call = invoke(
          method,
          create(m.input, request),
          metadataOf(o.metadata),
          callOptions(o.deadlineMs),
        ) as grpc.ClientReadableStream<MessageShape<Out<typeof method>>>;
        call.on("data", (d) => out.push(d));
        call.on("error", reject);
        call.on("end", () => resolve(out));
      });
    },
    openServerStream(method, request, o = {}) {
      const m = MessagingService.method[method];
      return invoke(
        method,
        create(m.input, request),
        metadataOf(o.metadata),
        callOptions(o.deadlineMs),
      ) as grpc.ClientReadableStream<MessageShape<Out<typeof method>>>;
    },
    bidi(method, o = {}) {
      return invoke(method, metadataOf(o.metadata), {}) as grpc.ClientDuplexStream<
        MessageInitShape<In<typeof method>>,
        MessageShape<Out<typeof method>>
      >;
    },
    close() {
      client.close();
    },
  };
}
