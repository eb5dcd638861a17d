// `rmq bench`: flag validation (one clear line, non-zero exit) and short producer + consumer runs
// against a real gRPC proxy on 127.0.0.1 (in-memory backend), checking the tool's own accounting
// against what the backend stored. No assertion on speed.

import { spawnSync } from "node:child_process";
import { createServer } from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Command } from "commander";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorCode, isRmqError } from "../common/errors.ts";
import { type ProxyFixture, startProxyFixture } from "../proxy/test-support/proxy-fixture.ts";
import { registerBenchCommand } from "./bench-command.ts";

const REPO = join(dirname(fileURLToPath(import.meta.url)), "..");

async function runBench(args: string[]): Promise<string[]> {
  const lines: string[] = [];
  const program = new Command("rmq")
    .exitOverride()
    .configureOutput({ writeErr: () => {}, writeOut: () => {} });
  registerBenchCommand(program, { out: (line) => lines.push(line) });
  await program.parseAsync(["bench", ...args], { from: "user" });
  return lines;
}

async function benchError(args: string[]): Promise<unknown> {
  try {
    await runBench(args);
  } catch (error) {
    return error;
  }
  throw new Error(`bench ${args.join(" ")} did not fail`);
}

function counter(lines: string[], prefix: string, key: string): number {
  const line = lines.find((l) => l.startsWith(prefix) && l.includes(` ${key}=`));
  const m = line === undefined ? null : new RegExp(` ${key}=(\\d+)`).exec(line);
  if (m === null) throw new Error(`no ${key}= in a "${prefix}" line:\n${lines.join("\n")}`);
  return Number(m[1]);
}

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

describe("rmq bench flag validation", () => {
  const cases: [string[], RegExp][] = [
    [["producer", "--concurrency", "0"], /^--concurrency must be a positive integer, got "0"$/],
    [["producer", "--size", "1k"], /^--size must be a positive integer, got "1k"$/],
    [["producer", "--duration", "1.5"], /^--duration must be a positive integer, got "1.5"$/],
    [["producer", "--connections", "0"], /^--connections must be a positive integer/],
    [["producer", "--report-interval", "x"], /^--report-interval must be a positive integer/],
    [
      ["producer", "--endpoint", "localhost"],
      /^--endpoint must be host:port \(e\.g\. 127\.0\.0\.1:8081\), got "localhost"$/,
    ],
    [["producer", "--endpoint", "127.0.0.1:70000"], /^--endpoint must be host:port/],
    [["producer", "--size", "5000000"], /^--size must be at most 4194304, got 5000000$/],
    [["producer", "--size", "1048576", "--batch", "64"], /exceeds the proxy's \d+-byte request limit/],
    [["consumer", "--batch", "33"], /^--batch must be at most 32, got 33$/],
    [["consumer", "--invisible-ms", "5000"], /^--invisible-ms must be between 10000 and 43200000/],
    [["consumer", "--messages", "0"], /^--messages must be a positive integer/],
    [["consumer", "--group", " "], /^--group must not be empty$/],
  ];
  for (const [args, message] of cases) {
    it(`rejects ${args.join(" ")}`, async () => {
      const error = await benchError(args);
      expect(isRmqError(error, ErrorCode.IllegalArgument)).toBe(true);
      expect((error as Error).message).toMatch(message);
    });
  }

  it("prints one line and exits 1 from the rmq executable", () => {
    const result = spawnSync(
      process.execPath,
      [join(REPO, "cli", "rmq.ts"), "bench", "producer", "--concurrency", "0"],
      { encoding: "utf8", timeout: 30_000 },
    );
    expect(result.status).toBe(1);
    expect(result.stderr.trim().split("\n")).toEqual([
      'rmq: --concurrency must be a positive integer, got "0"',
    ]);
    expect(result.stdout).toBe("");
  });

  it("fails with one clear error when the proxy cannot be reached", async () => {
    const port = await closedPort();
    const error = await benchError(["producer", "--endpoint", `127.0.0.1:${port}`, "--duration", "1"]);
    expect(isRmqError(error, ErrorCode.RpcUnavailable)).toBe(true);
    expect((error as Error).message).toMatch(
      new RegExp(`^bench cannot start: QueryRoute of topic BenchmarkTest at 127\\.0\\.0\\.1:${port} failed`),
    );
  });
});

describe("rmq bench against a real proxy", () => {
  let fx: ProxyFixture;

  beforeAll(async () => {
    fx = await startProxyFixture();
    fx.backend.createTopic("BenchTopic");
    fx.backend.createTopic("BenchLargeTopic");
  });

  afterAll(async () => {
    await fx?.close();
  });

  it("fails with the proxy's status when the topic does not exist", async () => {
    const error = await benchError([
      "producer",
      "--endpoint",
      fx.address,
      "--topic",
      "NoSuchTopic",
      "--duration",
      "1",
    ]);
    expect(isRmqError(error, ErrorCode.RpcFailed)).toBe(true);
    expect((error as Error).message).toMatch(/QueryRoute of NoSuchTopic failed: TOPIC_NOT_FOUND\(40402\)/);
  });

  it("a 2 s producer run, then a consumer run, account for every message and print the summaries", async () => {
    const produced = await runBench([
      "producer",
      ...["--endpoint", fx.address, "--topic", "BenchTopic"],
      ...["--concurrency", "2", "--batch", "4", "--size", "256", "--duration", "2"],
      ...["--report-interval", "1", "--raw-duration", "1"],
    ]);
    const sent = counter(produced, "producer summary:", "sent");
    expect(sent).toBeGreaterThan(0);
    expect(counter(produced, "producer summary:", "failed")).toBe(0);
    expect(counter(produced, "producer summary:", "rpcs") * 4).toBe(sent);
    // what the proxy stored is exactly what the tool reports: 4 messages of 256 B per SendMessage
    const calls = fx.backend.sendCalls.filter((c) => c.topic === "BenchTopic");
    expect(calls.reduce((n, c) => n + c.messages.length, 0)).toBe(sent);
    expect(
      calls.every((c) => c.messages.length === 4 && c.messages.every((m) => m.body.byteLength === 256)),
    ).toBe(true);
    expect(produced.some((l) => l.startsWith("producer [1 s] tps "))).toBe(true);
    expect(produced).toContain("producer errors: none");
    expect(produced.find((l) => l.startsWith("producer summary: tps "))).toMatch(
      /msg\/s, rpc \d+\/s, [\d.]+ MB\/s, rpc latency p50 [\d.]+ ms p99 [\d.]+ ms p999 [\d.]+ ms/,
    );
    expect(produced.find((l) => l.startsWith("raw ceiling: node:http2 unary"))).toMatch(
      /256 B request, tiny response \+ trailers\), 2 in flight over 1 connection\(s\), [\d.]+ s: \d+ rps/,
    );
    expect(produced.find((l) => l.startsWith("ratio: "))).toMatch(
      /^ratio: SendMessage rpc\/s \d+ vs raw unary rps \d+ = [\d.]+ %$/,
    );

    const consumed = await runBench([
      "consumer",
      ...["--endpoint", fx.address, "--topic", "BenchTopic", "--group", "BenchGroup"],
      ...["--concurrency", "2", "--duration", "60", "--messages", String(sent)],
      ...["--report-interval", "1", "--raw-duration", "1"],
    ]);
    expect(counter(consumed, "consumer summary:", "received")).toBe(sent);
    expect(counter(consumed, "consumer summary:", "acked")).toBe(sent);
    expect(counter(consumed, "consumer summary:", "ack-failed")).toBe(0);
    expect(consumed).toContain("consumer errors: none");
    expect(consumed.find((l) => l.startsWith("consumer summary: tps "))).toMatch(
      /msg\/s, [\d.]+ MB\/s, e2e latency p50 [\d.]+ ms p99 [\d.]+ ms p999 [\d.]+ ms/,
    );
    expect(consumed.find((l) => l.startsWith("raw ceiling: node:http2 one server stream"))).toMatch(
      /of 256 B length-prefixed frames, [\d.]+ s: \d+ frames\/s/,
    );
    expect(consumed.find((l) => l.startsWith("ratio: "))).toMatch(
      /^ratio: ReceiveMessage msg\/s \d+ vs raw stream frames\/s \d+ = [\d.]+ %$/,
    );
    // nothing is left for the group: a second consumer run finds no message
    const again = await runBench([
      "consumer",
      ...["--endpoint", fx.address, "--topic", "BenchTopic", "--group", "BenchGroup"],
      ...["--concurrency", "1", "--duration", "1", "--no-raw-ceiling"],
    ]);
    expect(counter(again, "consumer summary:", "received")).toBe(0);
    expect(again.some((l) => l.startsWith("raw ceiling:"))).toBe(false);
  });

  it("carries messages larger than one HTTP/2 frame both ways", async () => {
    const size = 100_000;
    const produced = await runBench([
      "producer",
      ...["--endpoint", fx.address, "--topic", "BenchLargeTopic"],
      ...[
        "--concurrency",
        "1",
        "--batch",
        "3",
        "--size",
        String(size),
        "--duration",
        "1",
        "--no-raw-ceiling",
      ],
    ]);
    const sent = counter(produced, "producer summary:", "sent");
    expect(sent).toBeGreaterThan(0);
    const consumed = await runBench([
      "consumer",
      ...["--endpoint", fx.address, "--topic", "BenchLargeTopic", "--group", "BenchLargeGroup"],
      ...[
        "--concurrency",
        "1",
        "--batch",
        "8",
        "--duration",
        "60",
        "--messages",
        String(sent),
        "--no-raw-ceiling",
      ],
    ]);
    expect(counter(consumed, "consumer summary:", "acked")).toBe(sent);
    const stored = fx.backend.sendCalls
      .filter((c) => c.topic === "BenchLargeTopic")
      .flatMap((c) => c.messages);
    expect(stored.length).toBe(sent);
    expect(stored.every((m) => m.body.byteLength === size && m.body.every((b) => b === 0x61))).toBe(true);
  });
});
