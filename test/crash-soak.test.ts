// A short run of the crash soak (test/soak/crash-soak.ts, `npm run soak`) in the suite: `rmq local` is
// kill -9ed every 2-6 s under load from the official SDK and restarted on the same store; the soak
// exits 0 only when every acknowledged send was delivered, nothing whose ack succeeded came again,
// FIFO groups kept their send order and transactions ended as meant. Fixed seeds; the longer runs
// quoted in the README are the same command with --minutes.
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const SOAK = fileURLToPath(new URL("./soak/crash-soak.ts", import.meta.url));
/** Rounds for about this long, then the drain (up to two minutes). */
const MINUTES = "0.3";

function soak(args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [SOAK, "--minutes", MINUTES, ...args], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      out += d.toString();
    });
    child.once("exit", (code) => resolve({ code, out }));
  });
}

describe("crash soak (kill -9 under SDK load)", () => {
  it("FIFO: no acknowledged send lost, no acked message again, every group in order", {
    timeout: 240_000,
  }, async () => {
    const r = await soak(["--fifo", "--seed", "11"]);
    expect(r.out).toMatch(
      /kill -9 rounds; \d+ acknowledged sends all delivered: true; \d+ acks; 0 violations/,
    );
    expect(r.out).toMatch(/round [2-9]/); // it did crash and restart
    expect(r.code).toBe(0);
  });

  it("transactions: meant-for-commit all delivered, meant-for-rollback never", {
    timeout: 240_000,
  }, async () => {
    const r = await soak(["--tx", "--seed", "12"]);
    expect(r.out).toMatch(/0 violations/);
    expect(r.out).toMatch(/round [2-9]/);
    expect(r.code).toBe(0);
  });
});
