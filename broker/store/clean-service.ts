// Retention (upstream CleanCommitLogService + CleanConsumeQueueService): delete CommitLog segments older
// than fileReservedTime at the deleteWhen hours, or whenever the disk is too full; then ConsumeQueue
// and Index files wholly below the CommitLog's new min offset. Above diskSpaceWarningLevelRatio the
// store refuses writes (STORE_DISK_FULL) until usage drops again. The clock and the disk-usage probe
// are injectable, so tests do not wait hours or fill a disk.
import * as fs from "node:fs";
import type { Logger } from "../../common/logger.ts";
import type { CommitLog } from "./commitlog.ts";
import type { MessageStoreConfig } from "./config.ts";
import type { ConsumeQueueStore } from "./consume-queue-store.ts";

/** Upstream bounds the ratios it accepts (percent). */
const DISK_MAX_USED_RATIO_MIN = 10;
const DISK_MAX_USED_RATIO_MAX = 95;
const CLEAN_FORCIBLY_RATIO_MIN = 30;
const CLEAN_FORCIBLY_RATIO_MAX = 85;
const WARNING_RATIO_MIN = 35;
const WARNING_RATIO_MAX = 90;
const HOUR_MS = 3600_000;

export interface CleanReport {
  commitLogFilesDeleted: number;
  consumeQueueFilesDeleted: number;
  indexFilesDeleted: number;
  /** Highest usage (percent) of the disks holding the store. */
  diskUsedPercent: number;
  /** Writes are refused (usage above diskSpaceWarningLevelRatio). */
  diskFull: boolean;
  /** Age was ignored because usage passed diskSpaceCleanForciblyRatio. */
  forced: boolean;
  minPhyOffset: number;
}

/** Percent of a file system's blocks in use. */
export async function statfsUsedPercent(path: string): Promise<number> {
  const s = await fs.promises.statfs(path);
  if (s.blocks === 0) return 0;
  return ((s.blocks - s.bfree) / s.blocks) * 100;
}

export interface CleanServiceDeps {
  config: MessageStoreConfig;
  commitLog: CommitLog;
  consumeQueues: ConsumeQueueStore;
  index: { deleteExpired(minPhyOffset: number): Promise<number> } | undefined;
  clock: () => number;
  diskUsedPercent: (path: string) => Promise<number>;
  /** Segments wholly below this offset may go (everything below is synced and dispatched). */
  safeDeleteOffset: () => number;
  onDiskFull: (full: boolean) => void;
  logger: Logger;
}

function clamp(v: number, lo: number, hi: number): number {
  return Math.min(Math.max(v, lo), hi);
}

/** Hours of day named by deleteWhen ("04", "04;05"). */
export function parseDeleteWhen(deleteWhen: string): Set<number> {
  const hours = new Set<number>();
  for (const part of deleteWhen.split(";")) {
    const h = Number(part.trim());
    if (part.trim() !== "" && Number.isInteger(h) && h >= 0 && h < 24) hours.add(h);
  }
  return hours;
}

export class CleanService {
  private readonly deps: CleanServiceDeps;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<CleanReport> | undefined;

  constructor(deps: CleanServiceDeps) {
    this.deps = deps;
  }

  start(): void {
    if (this.timer !== undefined) return;
    this.timer = setInterval(() => {
      void this.run(false).catch((err: unknown) => this.deps.logger.error({ err }, "retention run failed"));
    }, this.deps.config.cleanResourceInterval);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One retention pass; `manual` deletes expired files whatever the hour (upstream manual delete). */
  run(manual: boolean): Promise<CleanReport> {
    const prev = this.running ?? Promise.resolve(undefined);
    const next = prev.catch(() => undefined).then(() => this.runOnce(manual));
    this.running = next;
    return next;
  }

  private async runOnce(manual: boolean): Promise<CleanReport> {
    const { config, commitLog, consumeQueues, index, logger } = this.deps;
    const used = Math.max(
      await this.deps.diskUsedPercent(config.storePathCommitLog),
      await this.deps.diskUsedPercent(config.storePathRootDir),
    );
    const warning = clamp(config.diskSpaceWarningLevelRatio, WARNING_RATIO_MIN, WARNING_RATIO_MAX);
    const forciblyAt = clamp(
      config.diskSpaceCleanForciblyRatio,
      CLEAN_FORCIBLY_RATIO_MIN,
      CLEAN_FORCIBLY_RATIO_MAX,
    );
    const maxUsed = clamp(config.diskMaxUsedSpaceRatio, DISK_MAX_USED_RATIO_MIN, DISK_MAX_USED_RATIO_MAX);
    const diskFull = used > warning;
    this.deps.onDiskFull(diskFull);
    if (diskFull)
      logger.error({ usedPercent: used, warningPercent: warning }, "disk nearly full: store refuses writes");
    const forced = used > forciblyAt || diskFull;
    const timeUp = parseDeleteWhen(config.deleteWhen).has(new Date(this.deps.clock()).getHours());
    let commitLogFilesDeleted = 0;
    if (manual || timeUp || used > maxUsed) {
      commitLogFilesDeleted = await this.deleteCommitLogFiles(forced);
    }
    const minPhy = commitLog.minOffset;
    const consumeQueueFilesDeleted = await consumeQueues.deleteExpired(minPhy);
    const indexFilesDeleted = index === undefined ? 0 : await index.deleteExpired(minPhy);
    if (commitLogFilesDeleted + consumeQueueFilesDeleted + indexFilesDeleted > 0) {
      logger.info(
        {
          commitLogFilesDeleted,
          consumeQueueFilesDeleted,
          indexFilesDeleted,
          minPhyOffset: minPhy,
          usedPercent: used,
          forced,
        },
        "retention deleted files",
      );
    }
    return {
      commitLogFilesDeleted,
      consumeQueueFilesDeleted,
      indexFilesDeleted,
      diskUsedPercent: used,
      diskFull,
      forced,
      minPhyOffset: minPhy,
    };
  }

  /** Deletes expired segments from the front (never the newest, never one not yet synced and dispatched). */
  private async deleteCommitLogFiles(forced: boolean): Promise<number> {
    const { config, commitLog } = this.deps;
    const reservedMs = config.fileReservedTime * HOUR_MS;
    const now = this.deps.clock();
    const safe = this.deps.safeDeleteOffset();
    let deleted = 0;
    while (deleted < config.deleteFileBatchMax) {
      const files = commitLog.files.files;
      const f = files[0];
      if (f === undefined || files.length < 2 || f.fileEnd > safe) break;
      const expired = forced || now >= (await f.lastModified()) + reservedMs;
      if (!expired) break;
      await commitLog.deleteFile(f);
      deleted++;
    }
    return deleted;
  }
}
