// `npm test`: runs the whole vitest suite and closes with the line CI reads,
// "N passed, N failed" (vitest's own summary is not read by CI).
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const dir = mkdtempSync(join(tmpdir(), "rmq-test-"));
const report = join(dir, "report.json");
const args = [
  "vitest",
  "run",
  "--reporter=default",
  "--reporter=json",
  `--outputFile.json=${report}`,
  ...process.argv.slice(2),
];
const run = spawnSync("npx", args, { stdio: "inherit", env: process.env });

type Report = {
  numPassedTests?: number;
  numFailedTests?: number;
  numPendingTests?: number;
  numTodoTests?: number;
  success?: boolean;
};
let parsed: Report = {};
try {
  parsed = JSON.parse(readFileSync(report, "utf8")) as Report;
} catch {
  // No report: vitest crashed before writing one; count that as one failure below.
}
rmSync(dir, { recursive: true, force: true });

const passed = parsed.numPassedTests ?? 0;
let failed = parsed.numFailedTests ?? 0;
if (run.status !== 0 && failed === 0) failed = 1; // a crash or an error outside a test still fails the run
const skipped = (parsed.numPendingTests ?? 0) + (parsed.numTodoTests ?? 0);
console.log(`${passed} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ""}`);
process.exit(failed > 0 || run.status !== 0 ? 1 : 0);
