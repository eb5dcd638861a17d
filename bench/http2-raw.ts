// Raw node:http2 limits of this machine, measured with nothing but node:http2 (no gRPC library, no
// protobuf), so `rmq bench` can print in the same run what the transport itself does next to what the
// proxy does (DESIGN.md §7, anchors.md §2.3):
//
//   (a) unary: a POST with a 1 KiB gRPC-framed body answered by a tiny framed response plus trailers
//       (grpc-status), with C calls in flight over K connections — the ceiling of SendMessage RPC/s;
//   (b) one server stream of 1 KiB length-prefixed frames, read and split into frames by the client —
//       the ceiling of messages/s delivered over ReceiveMessage.
//
// The server runs in a child process (`node bench/http2-raw.ts` prints its port), so, like the proxy,
// it has its own event loop while the client runs in the benchmark process; both share the box.

import { type ChildProcess, spawn } from "node:child_process";
import {
  type ClientHttp2Session,
  connect,
  createServer,
  type Http2Server,
  type Http2Session,
  constants as http2Constants,
  type ServerHttp2Stream,
} from "node:http2";
import type { AddressInfo } from "node:net";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { HTTP2_INITIAL_WINDOW_BYTES, HTTP2_SESSION_WINDOW_BYTES } from "../proxy/server.ts";
import { BENCH_HTTP2_CLIENT_SETTINGS } from "./grpc-client.ts";
import { percentile } from "./stats.ts";

/** Bytes of a gRPC length prefix (compressed flag + 4-byte big-endian length). */
const GRPC_PREFIX_BYTES = 5;
/** The unary response body: about what a small protobuf reply is (anchors.md measured 37 B). */
const UNARY_RESPONSE_PAYLOAD_BYTES = 32;
export const RAW_UNARY_PATH = "/bench.RawHttp2/Unary";
export const RAW_STREAM_PATH = "/bench.RawHttp2/Stream";
/** Default message size of both probes. */
export const RAW_PAYLOAD_BYTES = 1024;
/** How long the server process may take to print its port, and the stream to start. */
const SERVER_START_TIMEOUT_MS = 10_000;
/** Unary probe: pause before retrying after a failed call, so a dead server does not spin the loop. */
const FAILED_CALL_PAUSE_MS = 20;

export interface RawUnaryOptions {
  concurrency: number;
  connections: number;
  durationMs: number;
  /** Request message size without the 5-byte prefix (default RAW_PAYLOAD_BYTES). */
  requestBytes?: number;
}

export interface RawUnaryResult {
  requests: number;
  errors: number;
  seconds: number;
  rps: number;
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
}

export interface RawStreamOptions {
  durationMs: number;
  /** Frame payload size without the 5-byte prefix (default RAW_PAYLOAD_BYTES). */
  frameBytes?: number;
}

export interface RawStreamResult {
  frames: number;
  seconds: number;
  framesPerSec: number;
  /** Payload megabytes (10^6 bytes) per second. */
  mbPerSec: number;
}

export interface RawHttp2Server {
  readonly port: number;
  close(): Promise<void>;
}

function grpcFrame(payloadBytes: number, fill: number): Buffer {
  const frame = Buffer.alloc(GRPC_PREFIX_BYTES + payloadBytes, fill);
  frame.writeUInt8(0, 0);
  frame.writeUInt32BE(payloadBytes, 1);
  return frame;
}

/** The probe server in this process, on 127.0.0.1 (port chosen by the OS). */
export async function startRawHttp2Server(): Promise<RawHttp2Server> {
  const unaryResponse = grpcFrame(UNARY_RESPONSE_PAYLOAD_BYTES, 0x72);
  const frames = new Map<number, Buffer>();
  // The same HTTP/2 settings the proxy grants its clients (proxy/server.ts).
  const server: Http2Server = createServer({
    settings: { initialWindowSize: HTTP2_INITIAL_WINDOW_BYTES },
  });
  const sessions = new Set<Http2Session>();
  server.on("session", (session: Http2Session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
    try {
      session.setLocalWindowSize(HTTP2_SESSION_WINDOW_BYTES);
    } catch {
      // the session died before it could be configured
    }
  });
  server.on("stream", (stream: ServerHttp2Stream, headers) => {
    stream.on("error", () => {});
    const path = headers[":path"];
    if (path === RAW_UNARY_PATH) {
      stream.on("data", () => {});
      stream.once("end", () => {
        if (stream.destroyed) return;
        stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
        stream.once("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
        stream.end(unaryResponse);
      });
    } else if (path === RAW_STREAM_PATH) {
      const size = Number(headers["x-frame-bytes"] ?? RAW_PAYLOAD_BYTES);
      let frame = frames.get(size);
      if (frame === undefined) {
        frame = grpcFrame(size, 0x73);
        frames.set(size, frame);
      }
      const chunk = frame;
      stream.on("data", () => {});
      stream.respond({ ":status": 200, "content-type": "application/grpc" });
      // One write per frame, as a gRPC server writes one message at a time, until the client cancels.
      const pump = () => {
        while (!stream.destroyed && !stream.closed) {
          if (!stream.write(chunk)) {
            stream.once("drain", pump);
            return;
          }
        }
      };
      pump();
    } else {
      stream.respond({ ":status": 404 });
      stream.end();
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // close() waits for open sessions; end them so it does not
        for (const s of sessions) s.destroy();
      }),
  };
}

/** The probe server in a child process (what the probes should measure against). */
export async function spawnRawHttp2Server(): Promise<RawHttp2Server> {
  const child: ChildProcess = spawn(process.execPath, [fileURLToPath(import.meta.url)], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  let timer: NodeJS.Timeout | undefined;
  try {
    const port = await new Promise<number>((resolve, reject) => {
      const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
      lines.once("line", (line) => {
        lines.close();
        const port = Number(line.trim());
        if (Number.isInteger(port) && port > 0) resolve(port);
        else reject(new Error(`raw http2 server printed ${JSON.stringify(line)} instead of its port`));
      });
      child.once("error", reject);
      child.once("exit", (code) =>
        reject(new Error(`raw http2 server exited with ${code} before listening`)),
      );
      timer = setTimeout(
        () => reject(new Error(`raw http2 server did not start within ${SERVER_START_TIMEOUT_MS} ms`)),
        SERVER_START_TIMEOUT_MS,
      );
    });
    return {
      port,
      async close() {
        child.stdin?.end();
        const kill = setTimeout(() => child.kill("SIGKILL"), 2000);
        await exited;
        clearTimeout(kill);
      },
    };
  } catch (error) {
    child.kill("SIGKILL");
    await exited;
    throw error;
  } finally {
    clearTimeout(timer);
  }
}

function connectSession(port: number): Promise<ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const session = connect(`http://127.0.0.1:${port}`, { settings: BENCH_HTTP2_CLIENT_SETTINGS });
    session.once("connect", () => {
      session.off("error", reject);
      session.on("error", () => {});
      resolve(session);
    });
    session.once("error", reject);
  });
}

const UNARY_REQUEST_HEADERS = Object.freeze({
  ":method": "POST",
  ":path": RAW_UNARY_PATH,
  "content-type": "application/grpc",
  te: "trailers",
});

function unaryCall(session: ClientHttp2Session, body: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = session.request(UNARY_REQUEST_HEADERS);
    let status = "";
    req.once("trailers", (trailers) => {
      status = String(trailers["grpc-status"] ?? "");
    });
    req.once("end", () => (status === "0" ? resolve() : reject(new Error(`grpc-status ${status}`))));
    req.once("error", reject);
    req.resume();
    req.end(body);
  });
}

/** Probe (a): C loops of unary calls over K connections for `durationMs`. */
export async function measureRawUnary(port: number, options: RawUnaryOptions): Promise<RawUnaryResult> {
  const body = grpcFrame(options.requestBytes ?? RAW_PAYLOAD_BYTES, 0x71);
  const sessions = await Promise.all(Array.from({ length: options.connections }, () => connectSession(port)));
  const latencies: number[] = [];
  let errors = 0;
  const start = performance.now();
  const deadline = start + options.durationMs;
  const loop = async (i: number) => {
    const session = sessions[i % sessions.length] as ClientHttp2Session;
    while (performance.now() < deadline) {
      const t0 = performance.now();
      try {
        await unaryCall(session, body);
        latencies.push(performance.now() - t0);
      } catch {
        errors++;
        await new Promise((r) => setTimeout(r, FAILED_CALL_PAUSE_MS));
      }
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, (_, i) => loop(i)));
  const seconds = (performance.now() - start) / 1000;
  for (const s of sessions) s.close();
  latencies.sort((a, b) => a - b);
  return {
    requests: latencies.length,
    errors,
    seconds,
    rps: latencies.length / seconds,
    p50Ms: percentile(latencies, 0.5),
    p99Ms: percentile(latencies, 0.99),
    p999Ms: percentile(latencies, 0.999),
  };
}

/** Probe (b): read ONE server stream of length-prefixed frames for `durationMs`. */
export async function measureRawStream(port: number, options: RawStreamOptions): Promise<RawStreamResult> {
  const frameBytes = options.frameBytes ?? RAW_PAYLOAD_BYTES;
  const session = await connectSession(port);
  try {
    return await new Promise<RawStreamResult>((resolve, reject) => {
      const req = session.request({
        ":method": "POST",
        ":path": RAW_STREAM_PATH,
        "content-type": "application/grpc",
        te: "trailers",
        "x-frame-bytes": String(frameBytes),
      });
      let frames = 0;
      let payloadBytes = 0;
      // Length-prefix parser: bytes of the current prefix still to read, then of the payload.
      let prefixLeft = GRPC_PREFIX_BYTES;
      let length = 0;
      let payloadLeft = 0;
      let start = 0;
      let timer: NodeJS.Timeout | undefined;
      const silence = setTimeout(() => {
        req.close(http2Constants.NGHTTP2_CANCEL);
        reject(new Error(`raw stream sent nothing within ${SERVER_START_TIMEOUT_MS} ms`));
      }, SERVER_START_TIMEOUT_MS);
      const finish = () => {
        const seconds = (performance.now() - start) / 1000;
        req.close(http2Constants.NGHTTP2_CANCEL);
        resolve({
          frames,
          seconds,
          framesPerSec: frames / seconds,
          mbPerSec: payloadBytes / 1e6 / seconds,
        });
      };
      req.on("data", (chunk: Buffer) => {
        if (start === 0) {
          clearTimeout(silence);
          start = performance.now();
          timer = setTimeout(finish, options.durationMs);
        }
        let off = 0;
        while (off < chunk.length) {
          if (prefixLeft > 0) {
            // bytes 1..4 of the prefix are the big-endian length
            const index = GRPC_PREFIX_BYTES - prefixLeft;
            if (index > 0) length = length * 256 + (chunk[off] as number);
            off++;
            prefixLeft--;
            if (prefixLeft === 0) {
              payloadLeft = length;
              length = 0;
            }
          } else {
            const take = Math.min(payloadLeft, chunk.length - off);
            off += take;
            payloadLeft -= take;
          }
          if (prefixLeft === 0 && payloadLeft === 0) {
            frames++;
            payloadBytes += frameBytes;
            prefixLeft = GRPC_PREFIX_BYTES;
          }
        }
      });
      req.once("error", (error) => {
        clearTimeout(timer);
        clearTimeout(silence);
        reject(error);
      });
      req.once("end", () => {
        if (timer !== undefined) return;
        clearTimeout(silence);
        reject(new Error("raw stream ended before any data"));
      });
      req.end(grpcFrame(0, 0));
    });
  } finally {
    session.close();
  }
}

/** Spawn the server, run probe (a), stop the server. */
export async function runRawUnaryCeiling(options: RawUnaryOptions): Promise<RawUnaryResult> {
  const server = await spawnRawHttp2Server();
  try {
    return await measureRawUnary(server.port, options);
  } finally {
    await server.close();
  }
}

/** Spawn the server, run probe (b), stop the server. */
export async function runRawStreamCeiling(options: RawStreamOptions): Promise<RawStreamResult> {
  const server = await spawnRawHttp2Server();
  try {
    return await measureRawStream(server.port, options);
  } finally {
    await server.close();
  }
}

if (import.meta.main) {
  // Child mode: serve until the parent closes our stdin (or dies).
  const server = await startRawHttp2Server();
  process.stdout.write(`${server.port}\n`);
  process.stdin.resume();
  process.stdin.once("close", () => process.exit(0));
  process.stdin.once("end", () => process.exit(0));
}
