// Calling a controller group from outside (admin CLI, brokers, tests, benchmarks): finds the leader
// with GetMetaData, sends leader-only requests there, and follows CONTROLLER_NOT_LEADER answers
// (which name the leader) and connection failures to the next leader until a deadline.

import type { MessageInitShape } from "@bufbuild/protobuf";
import type { Client } from "@connectrpc/connect";
import { ErrorCode, isRmqError, RmqError } from "../common/errors.ts";
import { createRpcClient, parseRpcAddress } from "../common/rpc-client.ts";
import {
  type BrokerHeartbeatRequestSchema,
  ControllerService,
  type ControllerStatus,
  type GetMetaDataResponse,
} from "../proto/gen/rmq/controller/v1/controller_pb.ts";
import { ControllerResponseCode } from "./response-code.ts";

export type ControllerRpc = Client<typeof ControllerService>;

/** How long a leader-only call keeps looking for a leader (an election takes 0.5-1 s, more when a pre-vote is refused). */
export const DEFAULT_CONTROLLER_CALL_DEADLINE_MS = 10_000;
/** Deadline of one RPC (the controller itself waits up to 5 s for a commit). */
export const DEFAULT_CONTROLLER_RPC_TIMEOUT_MS = 6_000;
/** Pause between rounds while no leader is known. */
export const DEFAULT_RETRY_PAUSE_MS = 100;

export interface ControllerClientOptions {
  /** Deadline of one RPC. */
  rpcTimeoutMs?: number;
  /** How long a leader-only call retries across leader changes. */
  callDeadlineMs?: number;
  /** Pause between rounds while no leader is known. */
  retryPauseMs?: number;
}

/** Splits upstream's `"h:p;h:p"` controller address list. Throws RmqError(IllegalArgument). */
export function parseControllerAddresses(text: string): string[] {
  const list = text
    .split(";")
    .map((s) => s.trim())
    .filter((s) => s !== "")
    .map(parseRpcAddress);
  if (list.length === 0) {
    throw new RmqError(
      ErrorCode.IllegalArgument,
      `no controller address in ${JSON.stringify(text)}: expected "host:port;host:port"`,
    );
  }
  return list;
}

export class ControllerClient {
  readonly addresses: readonly string[];
  private readonly rpcTimeoutMs: number;
  private readonly callDeadlineMs: number;
  private readonly retryPauseMs: number;
  private readonly clients = new Map<string, ControllerRpc>();
  private leaderAddress: string | undefined;

  constructor(addresses: readonly string[], opts: ControllerClientOptions = {}) {
    if (addresses.length === 0) throw new RmqError(ErrorCode.IllegalArgument, "no controller address given");
    this.addresses = addresses.map(parseRpcAddress);
    this.rpcTimeoutMs = opts.rpcTimeoutMs ?? DEFAULT_CONTROLLER_RPC_TIMEOUT_MS;
    this.callDeadlineMs = opts.callDeadlineMs ?? DEFAULT_CONTROLLER_CALL_DEADLINE_MS;
    this.retryPauseMs = opts.retryPauseMs ?? DEFAULT_RETRY_PAUSE_MS;
  }

  /** The RPC client of one address. */
  rpc(address: string): ControllerRpc {
    let c = this.clients.get(address);
    if (c === undefined) {
      c = createRpcClient(ControllerService, address, { timeoutMs: this.rpcTimeoutMs });
      this.clients.set(address, c);
    }
    return c;
  }

  /** GetMetaData from one node (default: the first that answers). */
  async metaData(address?: string): Promise<GetMetaDataResponse & { answeredBy: string }> {
    const tried: string[] = [];
    for (const a of address === undefined ? this.addresses : [address]) {
      try {
        const md = await this.rpc(a).getMetaData({});
        return Object.assign(md, { answeredBy: a });
      } catch (e) {
        tried.push(`${a}: ${(e as Error).message}`);
      }
    }
    throw new RmqError(ErrorCode.RpcUnavailable, `no controller answered GetMetaData (${tried.join("; ")})`);
  }

  /** Asks every address for its view and returns the address of a leader that is serving. */
  async findLeader(): Promise<string | undefined> {
    const answers = await Promise.allSettled(
      this.addresses.map((a) => this.rpc(a).getMetaData({}, { timeoutMs: 2000 })),
    );
    for (const [i, r] of answers.entries()) {
      if (r.status === "fulfilled" && r.value.isLeader && r.value.leaderServing) return this.addresses[i];
    }
    for (const r of answers) {
      if (r.status === "fulfilled" && r.value.leaderAddress !== "") return r.value.leaderAddress;
    }
    return undefined;
  }

  /**
   * Runs a leader-only call on the leader, retrying on CONTROLLER_NOT_LEADER and on unreachable
   * nodes until the deadline. Returns the last answer (its status may be a refusal).
   */
  async onLeader<T extends { status?: ControllerStatus }>(
    call: (rpc: ControllerRpc, address: string) => Promise<T>,
  ): Promise<T> {
    const deadline = Date.now() + this.callDeadlineMs;
    let last: T | undefined;
    let lastError: unknown;
    for (;;) {
      const address = this.leaderAddress ?? (await this.findLeader());
      if (address !== undefined) {
        try {
          const res = await call(this.rpc(address), address);
          if (res.status?.code !== ControllerResponseCode.CONTROLLER_NOT_LEADER) {
            this.leaderAddress = address;
            return res;
          }
          last = res;
          this.leaderAddress =
            res.status.leaderAddress !== "" && res.status.leaderAddress !== address
              ? res.status.leaderAddress
              : undefined;
          if (this.leaderAddress !== undefined) continue;
        } catch (e) {
          if (!isRmqError(e) || !e.code.startsWith("RPC_")) throw e;
          lastError = e;
          this.leaderAddress = undefined;
        }
      }
      if (Date.now() + this.retryPauseMs > deadline) break;
      await new Promise((r) => setTimeout(r, this.retryPauseMs));
    }
    if (last !== undefined) return last;
    throw new RmqError(
      ErrorCode.RpcUnavailable,
      `no controller leader reachable at ${this.addresses.join(";")} within ${this.callDeadlineMs} ms${lastError === undefined ? "" : `: ${(lastError as Error).message}`}`,
    );
  }

  /** Sends a broker heartbeat to every node (as brokers do); resolves with how many accepted it. */
  async heartbeatAll(req: MessageInitShape<typeof BrokerHeartbeatRequestSchema>): Promise<number> {
    const answers = await Promise.allSettled(
      this.addresses.map((a) => this.rpc(a).brokerHeartbeat(req, { timeoutMs: 2000 })),
    );
    return answers.filter((r) => r.status === "fulfilled" && r.value.status?.code === 0).length;
  }

  /** Forgets the cached leader (after a failover in tests). */
  resetLeader(): void {
    this.leaderAddress = undefined;
  }
}
