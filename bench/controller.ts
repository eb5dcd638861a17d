// `npm run bench:controller` — the Raft controller as three local node processes:
//   1. committed controller writes per second (ApplyBrokerId: one Raft entry each, answered once
//      applied on the leader) at 1, 16, 64, 256 requests in flight, with p50/p99 latency, against two
//      raw limits measured in the same run: the disk's sequential WAL append + fdatasync of one small
//      entry (a commit needs one on the leader, then one on a follower), and the RPC layer's own
//      ceiling: an empty unary call through common/rpc-server + common/rpc-client at the same
//      in-flight count (every controller request is one such call);
//   2. leader failover: N times kill -9 the leader and time until the first write succeeds through
//      the new leader, against the configured election timeout (the floor of any failover).
//
// Options: --seconds N (per concurrency level, default 5), --failovers N (default 20),
//          --dir PATH (default a temp dir; removed afterwards), --quick (1 s, 3 failovers).

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { closeRpcConnections, createRpcClient } from "../common/rpc-client.ts";
import { createRpcServer } from "../common/rpc-server.ts";
import type { ControllerClient } from "../controller/controller-client.ts";
import { CONTROLLER_CONFIG_SCHEMA } from "../controller/controller-config.ts";
import { ControllerService } from "../proto/gen/rmq/controller/v1/controller_pb.ts";
import { createRaftWal } from "../raft/wal/wal.ts";
import { ControllerCluster } from "../test/fixtures/controller-cluster.ts";
import { percentile } from "./stats.ts";

const INFLIGHT = [1, 16, 64, 256] as const;
const TICK_MS = CONTROLLER_CONFIG_SCHEMA.controllerRaftTickMs.default;
const ELECTION_TICKS = CONTROLLER_CONFIG_SCHEMA.controllerRaftElectionTicks.default;

interface Options {
  seconds: number;
  failovers: number;
  dir: string | undefined;
}

function parseArgs(argv: string[]): Options {
  const o: Options = { seconds: 5, failovers: 20, dir: undefined };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === "--seconds") o.seconds = Number(next());
    else if (a === "--failovers") o.failovers = Number(next());
    else if (a === "--dir") o.dir = next();
    else if (a === "--quick") {
      o.seconds = 1;
      o.failovers = 3;
    } else throw new Error(`unknown option ${a} (known: --seconds N, --failovers N, --dir PATH, --quick)`);
  }
  if (!(o.seconds > 0) || !(o.failovers >= 1)) throw new Error("--seconds and --failovers must be positive");
  return o;
}

/** Raw limit: one small entry appended and fdatasynced at a time, as fast as the disk allows. */
async function rawWalSyncRate(dir: string, seconds: number): Promise<number> {
  const { wal } = await createRaftWal(dir);
  const data = new Uint8Array(120);
  let n = 0;
  const end = performance.now() + seconds * 1000;
  while (performance.now() < end) {
    n++;
    await wal.append([{ index: n, term: 1, type: 0, data }], { term: 1, vote: "n0", commit: n - 1 });
  }
  await wal.close();
  return n / seconds;
}

/** Raw limit of the RPC layer: an empty unary call (server and client in this process). */
async function rawUnaryRate(inflight: number, seconds: number): Promise<number> {
  const server = await createRpcServer({
    host: "127.0.0.1",
    port: 0,
    routes: (r) => r.service(ControllerService, { getMetaData: async () => ({}) }),
  });
  const rpc = createRpcClient(ControllerService, `127.0.0.1:${server.port}`);
  let n = 0;
  const end = performance.now() + seconds * 1000;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: inflight }, async () => {
      while (performance.now() < end) {
        await rpc.getMetaData({});
        n++;
      }
    }),
  );
  const rate = n / ((performance.now() - started) / 1000);
  closeRpcConnections(`127.0.0.1:${server.port}`);
  await server.close();
  return rate;
}

async function writeLoad(
  client: ControllerClient,
  run: string,
  inflight: number,
  seconds: number,
): Promise<{ opsPerSec: number; p50: number; p99: number; failed: number }> {
  const latencies: number[] = [];
  let failed = 0;
  const end = performance.now() + seconds * 1000;
  const worker = async (w: number) => {
    const brokerName = `bench-${run}-${w}`;
    for (let id = 1; performance.now() < end; id++) {
      const t0 = performance.now();
      const r = await client.onLeader((rpc) =>
        rpc.applyBrokerId({
          clusterName: "BenchCluster",
          brokerName,
          appliedBrokerId: BigInt(id),
          registerCheckCode: `10.0.${w % 256}.${id % 256}:10911;${id}`,
        }),
      );
      if (r.status?.code === 0) latencies.push(performance.now() - t0);
      else failed++;
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: inflight }, (_, w) => worker(w)));
  const elapsed = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  return {
    opsPerSec: latencies.length / elapsed,
    p50: percentile(latencies, 0.5),
    p99: percentile(latencies, 0.99),
    failed,
  };
}

async function waitCaughtUp(
  cluster: ControllerCluster,
  client: ControllerClient,
  i: number,
  leader: number,
): Promise<void> {
  const end = Date.now() + 30_000;
  for (;;) {
    const md = await client.metaData(cluster.nodes[i]?.address).catch(() => undefined);
    const lmd = await client.metaData(cluster.nodes[leader]?.address).catch(() => undefined);
    if (md !== undefined && lmd !== undefined && md.leaderId !== "" && md.appliedIndex >= lmd.commitIndex)
      return;
    if (Date.now() > end) throw new Error(`node ${i} did not catch up\n${cluster.logs()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const root = o.dir ?? mkdtempSync(join(tmpdir(), "rmq-bench-controller-"));
  const fmt = (v: number, d = 0) => v.toFixed(d).padStart(9);
  try {
    console.log(`controller benchmark: 3 node processes on 127.0.0.1, data in ${root}`);
    const rawRate = await rawWalSyncRate(join(root, "raw-wal"), Math.min(o.seconds, 3));
    console.log(`raw limit: WAL append + fdatasync of one entry, sequential: ${rawRate.toFixed(0)}/s`);

    const cluster = await ControllerCluster.start({
      dir: join(root, "cluster"),
      conf: { controllerRaftTickMs: TICK_MS, controllerRaftElectionTicks: ELECTION_TICKS },
    });
    try {
      await cluster.waitForLeader();
      const client = cluster.client({ callDeadlineMs: 20_000, retryPauseMs: 10 });

      console.log("\n1. committed writes (ApplyBrokerId, one Raft entry each)");
      const h = ["in flight", "ops/s", "p50 ms", "p99 ms", "raw rpc/s", "vs rpc", "vs fsync"];
      console.log(h.map((x) => x.padStart(9)).join(" "));
      for (const c of INFLIGHT) {
        const r = await writeLoad(client, `c${c}`, c, o.seconds);
        const rpcRate = await rawUnaryRate(c, Math.min(o.seconds, 2));
        console.log(
          `${fmt(c)} ${fmt(r.opsPerSec)} ${fmt(r.p50, 2)} ${fmt(r.p99, 2)} ${fmt(rpcRate)} ${fmt(r.opsPerSec / rpcRate, 2)}x ${fmt(r.opsPerSec / rawRate, 2)}x${r.failed > 0 ? `  (${r.failed} refused)` : ""}`,
        );
      }

      console.log(
        `\n2. leader failover: kill -9 the leader, time to the first committed write through the new leader`,
      );
      const electionMin = TICK_MS * ELECTION_TICKS;
      console.log(
        `   floor: election timeout ${electionMin}-${2 * electionMin} ms (randomized), tick ${TICK_MS} ms`,
      );
      const times: number[] = [];
      for (let k = 0; k < o.failovers; k++) {
        const leader = await cluster.waitForLeader(30_000);
        const killedAt = performance.now();
        await cluster.signal(leader, "SIGKILL");
        client.resetLeader();
        const r = await client.onLeader((rpc) =>
          rpc.applyBrokerId({
            clusterName: "BenchCluster",
            brokerName: `failover-${k}`,
            appliedBrokerId: 1n,
            registerCheckCode: `x;${k}`,
          }),
        );
        const ms = performance.now() - killedAt;
        if (r.status?.code !== 0)
          throw new Error(`write after failover ${k} refused: ${r.status?.name} ${r.status?.remark}`);
        times.push(ms);
        console.log(
          `   #${String(k + 1).padStart(2)}  killed ${cluster.nodes[leader]?.id}: ${ms.toFixed(0)} ms`,
        );
        cluster.startNode(leader);
        const newLeader = await cluster.waitForLeader(30_000);
        await waitCaughtUp(cluster, client, leader, newLeader);
      }
      const sorted = [...times].sort((a, b) => a - b);
      const median = percentile(sorted, 0.5);
      const max = sorted[sorted.length - 1] as number;
      console.log(
        `   failover over ${times.length} kills: median ${median.toFixed(0)} ms, max ${max.toFixed(0)} ms; ` +
          `median / election-timeout floor = ${(median / electionMin).toFixed(2)}x`,
      );
    } finally {
      await cluster.close();
      closeRpcConnections();
    }
  } finally {
    if (o.dir === undefined) rmSync(root, { recursive: true, force: true });
  }
}

await main();
