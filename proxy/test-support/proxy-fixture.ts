// A proxy on 127.0.0.1 (OS-chosen port) over the in-memory backend, with raw grpc-js clients for
// both transports of its one port.

import { Registry } from "prom-client";
import { silentLogger } from "../../common/logger.ts";
import type { ProxyLimits } from "../limits.ts";
import { createProxyServer, type ProxyServer } from "../server.ts";
import { createRawClient, type RawClient } from "./grpc-client.ts";
import { createMemoryBackend, type MemoryBackend } from "./memory-backend.ts";

export interface ProxyFixture {
  server: ProxyServer;
  backend: MemoryBackend;
  registry: Registry;
  address: string;
  client(tls: boolean, metadata?: Record<string, string>): RawClient;
  close(): Promise<void>;
}

export async function startProxyFixture(
  options: { limits?: Partial<ProxyLimits>; backend?: MemoryBackend } = {},
): Promise<ProxyFixture> {
  const backend = options.backend ?? createMemoryBackend();
  const registry = new Registry();
  const server = await createProxyServer({
    port: 0,
    host: "127.0.0.1",
    backend,
    logger: silentLogger(),
    metrics: registry,
    limits: options.limits,
  });
  const address = `127.0.0.1:${server.port}`;
  const clients: RawClient[] = [];
  return {
    server,
    backend,
    registry,
    address,
    client(tls, metadata) {
      const c = createRawClient(address, { tls, metadata });
      clients.push(c);
      return c;
    },
    async close() {
      for (const c of clients) c.close();
      await server.close();
    },
  };
}
