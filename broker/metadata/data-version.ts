// Upstream DataVersion: the version stamp every metadata table carries ({stateVersion, timestamp,
// counter}); brokers send it to the NameServer so unchanged tables are not re-sent.

export interface DataVersion {
  stateVersion: number;
  timestamp: number;
  counter: number;
}

export function newDataVersion(now: number = Date.now()): DataVersion {
  return { stateVersion: 0, timestamp: now, counter: 0 };
}

/** Upstream DataVersion.nextVersion: new timestamp, counter + 1. */
export function nextDataVersion(v: DataVersion, stateVersion = 0, now: number = Date.now()): void {
  v.timestamp = now;
  v.stateVersion = stateVersion;
  v.counter++;
}

/** Upstream DataVersion.compare: stateVersion, then counter, then timestamp. */
export function compareDataVersion(a: DataVersion, b: DataVersion): number {
  return (
    Math.sign(a.stateVersion - b.stateVersion) ||
    Math.sign(a.counter - b.counter) ||
    Math.sign(a.timestamp - b.timestamp)
  );
}
