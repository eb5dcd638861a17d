// Admin subcommands that talk to a controller group (mqadmin's controller commands). Output keeps
// mqadmin's `#Key\tValue` layout so scripts written for it keep working. A refusal or an unreachable
// group ends in an RmqError with a one-line message (rmq prints it and exits 1).
//
//   getControllerMetaData -a "h:p;h:p"
//   getSyncStateSet       -a ... -b brokerName
//   getBrokerEpoch        -a ... -b brokerName
//   electMaster           -a ... -b brokerName -i brokerId [-c clusterName]
//   cleanBrokerMetadata   -a ... -b brokerName [-c clusterName] [--brokerControllerIdsToClean "1;2"] [--cleanLivingBroker]

import type { Command } from "commander";
import { ErrorCode, RmqError } from "../common/errors.ts";
import { closeRpcConnections } from "../common/rpc-client.ts";
import { ControllerClient, parseControllerAddresses } from "../controller/controller-client.ts";
import type { ControllerStatus, ReplicaIdentity } from "../proto/gen/rmq/controller/v1/controller_pb.ts";

type Out = (text: string) => void;

interface AddressOpts {
  controllerAddress: string;
}

function refused(what: string, st: ControllerStatus | undefined): RmqError {
  const code = st === undefined ? "no status" : `${st.name} (${st.code})`;
  return new RmqError(
    ErrorCode.ControllerRefused,
    `${what} failed: ${code}${st?.remark ? `: ${st.remark}` : ""}`,
  );
}

function ok(st: ControllerStatus | undefined): boolean {
  return st?.code === 0;
}

function parseBrokerId(text: string): number {
  if (!/^-?\d+$/.test(text.trim())) {
    throw new RmqError(ErrorCode.IllegalArgument, `brokerId must be an integer, got ${JSON.stringify(text)}`);
  }
  return Number(text.trim());
}

function replicaText(r: ReplicaIdentity): string {
  return `ReplicaIdentity{brokerName='${r.brokerName}', brokerId=${r.brokerId}, brokerAddress='${r.brokerAddress}'}`;
}

/** Runs an admin action with a client, closing connections afterwards so the process can exit. */
async function withClient(
  addressText: string,
  run: (client: ControllerClient) => Promise<void>,
): Promise<void> {
  const client = new ControllerClient(parseControllerAddresses(addressText));
  try {
    await run(client);
  } finally {
    closeRpcConnections();
  }
}

export async function getControllerMetaData(addressText: string, out: Out): Promise<void> {
  await withClient(addressText, async (client) => {
    const md = await client.metaData();
    out(`#ControllerGroup\t${md.group}\n`);
    out(`#ControllerLeaderId\t${md.leaderId}\n`);
    out(`#ControllerLeaderAddress\t${md.leaderAddress}\n`);
    for (const p of md.peers) out(`#Peer:\t${p.id}-${p.address}\n`);
  });
}

export async function getSyncStateSet(addressText: string, brokerNames: string[], out: Out): Promise<void> {
  await withClient(addressText, async (client) => {
    const res = await client.onLeader((rpc) => rpc.getSyncStateData({ brokerNames }));
    if (!ok(res.status)) throw refused("getSyncStateSet", res.status);
    const names = Object.keys(res.replicasInfoTable);
    if (names.length === 0)
      throw new RmqError(
        ErrorCode.ControllerRefused,
        `broker set ${brokerNames.join(", ")} is unknown to the controller`,
      );
    for (const name of names) {
      const info = res.replicasInfoTable[name];
      if (info === undefined) continue;
      out(`\n#brokerName\t${name}\n`);
      out(`#MasterBrokerId\t${info.masterBrokerId ?? ""}\n`);
      out(`#MasterAddr\t${info.masterAddress}\n`);
      out(`#MasterEpoch\t${info.masterEpoch}\n`);
      out(`#SyncStateSetEpoch\t${info.syncStateSetEpoch}\n`);
      out(`#SyncStateSetNums\t${info.inSyncReplicas.length}\n`);
      for (const r of info.inSyncReplicas)
        out(`\n InSyncReplica:\t${replicaText(r)}\t${r.alive ? "online" : "offline"}\n`);
      for (const r of info.notInSyncReplicas)
        out(`\n NotInSyncReplica:\t${replicaText(r)}\t${r.alive ? "online" : "offline"}\n`);
    }
  });
}

export async function getBrokerEpoch(addressText: string, brokerName: string, out: Out): Promise<void> {
  await withClient(addressText, async (client) => {
    // Heartbeats live on every node; ask the leader, which is the node that elects.
    const res = await client.onLeader((rpc) => rpc.getBrokerLiveInfo({ brokerName }));
    if (!ok(res.status)) throw refused("getBrokerEpoch", res.status);
    for (const b of res.brokers) {
      out(
        `\n#clusterName\t${b.clusterName}\n#brokerName\t${b.brokerName}\n#brokerAddr\t${b.brokerAddress}\n#brokerId\t${b.brokerId}\n`,
      );
      if (b.epochEntries.length > 0) {
        b.epochEntries.forEach((e, i) => {
          const end = i === b.epochEntries.length - 1 ? b.maxOffset : e.endOffset;
          out(`#Epoch: EpochEntry{epoch=${e.epoch}, startOffset=${e.startOffset}, endOffset=${end}}\n`);
        });
      } else if (b.epoch >= 0) {
        // Only the last epoch is known (from the heartbeat); its start offset is not.
        out(`#Epoch: EpochEntry{epoch=${b.epoch}, startOffset=-1, endOffset=${b.maxOffset}}\n`);
      } else {
        out(`#Epoch: (no heartbeat from this broker)\n`);
      }
    }
  });
}

export async function electMaster(
  addressText: string,
  req: { brokerName: string; brokerId: number; clusterName: string },
  out: Out,
): Promise<void> {
  await withClient(addressText, async (client) => {
    const res = await client.onLeader((rpc) =>
      rpc.electMaster({
        clusterName: req.clusterName,
        brokerName: req.brokerName,
        brokerId: BigInt(req.brokerId),
        designateElect: true,
      }),
    );
    if (!ok(res.status)) throw refused("electMaster", res.status);
    const group = res.brokerMemberGroup;
    out(`\n#ClusterName\t${group?.clusterName ?? req.clusterName}\n`);
    out(`#BrokerName\t${req.brokerName}\n`);
    out(`#BrokerMasterAddr\t${res.masterAddress}\n`);
    out(`#MasterEpoch\t${res.masterEpoch}\n`);
    out(`#SyncStateSetEpoch\t${res.syncStateSetEpoch}\n`);
    const addrs = Object.entries(group?.brokerAddrs ?? {}).sort((a, b) => Number(a[0]) - Number(b[0]));
    for (const [id, addr] of addrs) out(`\t#Broker\t${id}\t${addr}\n`);
  });
}

export async function cleanBrokerMetadata(
  addressText: string,
  req: {
    brokerName: string;
    clusterName: string;
    brokerControllerIdsToClean: string;
    cleanLivingBroker: boolean;
  },
  out: Out,
): Promise<void> {
  if (
    req.brokerControllerIdsToClean !== "" &&
    !/^\s*\d+\s*(;\s*\d+\s*)*;?\s*$/.test(req.brokerControllerIdsToClean)
  ) {
    throw new RmqError(
      ErrorCode.IllegalArgument,
      `--brokerControllerIdsToClean must be broker ids separated by ';' (e.g. 1;2;3), got ${JSON.stringify(req.brokerControllerIdsToClean)}`,
    );
  }
  await withClient(addressText, async (client) => {
    const res = await client.onLeader((rpc) => rpc.cleanBrokerData(req));
    if (!ok(res.status)) throw refused("cleanBrokerMetadata", res.status);
    out(`clear broker ${req.brokerName} metadata from controller success! \n`);
  });
}

const print: Out = (t) => {
  process.stdout.write(t);
};

/** Registers the controller admin subcommands on `admin` (the `rmq admin` command). */
export function registerControllerAdminCommands(admin: Command): void {
  const addr = "-a, --controllerAddress <addresses>";
  const addrHelp = 'controller addresses, "host:port;host:port"';

  admin
    .command("getControllerMetaData")
    .description("print the controller group's metadata (group, leader, peers)")
    .requiredOption(addr, addrHelp)
    .action(async (o: AddressOpts) => {
      await getControllerMetaData(o.controllerAddress, print);
      print("\n");
    });

  admin
    .command("getSyncStateSet")
    .description("print a broker set's master, epochs and in-sync / not-in-sync replicas")
    .requiredOption(addr, addrHelp)
    .requiredOption("-b, --brokerName <brokerName>", "broker set name")
    .action(async (o: AddressOpts & { brokerName: string }) => {
      await getSyncStateSet(o.controllerAddress, [o.brokerName.trim()], print);
    });

  admin
    .command("getBrokerEpoch")
    .description("print the epoch entries of a broker set's brokers, as far as the controller knows them")
    .requiredOption(addr, addrHelp)
    .requiredOption("-b, --brokerName <brokerName>", "broker set name")
    .action(async (o: AddressOpts & { brokerName: string }) => {
      await getBrokerEpoch(o.controllerAddress, o.brokerName.trim(), print);
    });

  admin
    .command("electMaster")
    .description("make the given broker the master of its set (designated election)")
    .requiredOption(addr, addrHelp)
    .requiredOption("-b, --brokerName <brokerName>", "broker set name")
    .requiredOption("-i, --brokerId <brokerId>", "controller-assigned id of the broker to make master")
    .option("-c, --clusterName <clusterName>", "cluster name", "")
    .action(async (o: AddressOpts & { brokerName: string; brokerId: string; clusterName: string }) => {
      await electMaster(
        o.controllerAddress,
        {
          brokerName: o.brokerName.trim(),
          brokerId: parseBrokerId(o.brokerId),
          clusterName: o.clusterName.trim(),
        },
        print,
      );
    });

  admin
    .command("cleanBrokerMetadata")
    .description("remove a broker set (or some of its brokers) from the controller")
    .requiredOption(addr, addrHelp)
    .requiredOption("-b, --brokerName <brokerName>", "broker set name")
    .option("-c, --clusterName <clusterName>", "cluster name", "")
    .option(
      "--brokerControllerIdsToClean <ids>",
      'broker ids to remove, e.g. "1;2;3" (default: the whole set)',
      "",
    )
    .option("-l, --cleanLivingBroker", "also remove brokers that are still alive", false)
    .action(
      async (
        o: AddressOpts & {
          brokerName: string;
          clusterName: string;
          brokerControllerIdsToClean: string;
          cleanLivingBroker: boolean;
        },
      ) => {
        await cleanBrokerMetadata(
          o.controllerAddress,
          {
            brokerName: o.brokerName.trim(),
            clusterName: o.clusterName.trim(),
            brokerControllerIdsToClean: o.brokerControllerIdsToClean.trim(),
            cleanLivingBroker: o.cleanLivingBroker,
          },
          print,
        );
      },
    );
}
