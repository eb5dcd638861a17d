// Extracts every broker.conf / broker.properties example from the seed documents
// (shared/seeds/*.txt, beside the repository) into deploy/conf/seeds/<name>.conf, verbatim, under a
// header naming the seed file and lines. test/seed-configs.test.ts re-runs the extraction and checks
// the committed copies still match, then loads each one with the broker config loader.
//
//   node deploy/conf/seeds/extract.ts [seedsDir] [outDir]     (defaults: ../shared/seeds, this folder)
//
// What counts as a broker config example:
//   - a ```properties block that sets brokerClusterName or brokerName;
//   - in a ```shell/```bash block, the lines printed by `cat conf/.../x.properties` (the rest of the block);
//   - in a shell block, a heredoc `cat > x.conf <<EOF ... EOF` that sets brokerClusterName or brokerName
//     (a template with ${shell} variables; the test renders it before loading).

import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { basename, join, resolve } from "node:path";

export interface SeedConfig {
  /** File name under deploy/conf/seeds/, e.g. "004-2m-2s-sync-broker-a.conf". */
  fileName: string;
  /** Seed document name, e.g. "004_835994c4a764f68f.txt". */
  seedFile: string;
  /** 1-based lines of the extracted content within the seed document. */
  firstLine: number;
  lastLine: number;
  kind: "properties" | "shell-template";
  /** The example exactly as it appears in the seed (lines joined with "\n", ending with "\n"). */
  content: string;
  /** The committed file: header comment + content. */
  fileText: string;
}

/** Readable names for the sections of the hands-on deployment article (seed 004). */
const SECTION_SLUGS: Readonly<Record<string, string>> = {
  "004:3.1": "2m-noslave",
  "004:3.2": "2m-2s-async",
  "004:3.3": "2m-2s-sync",
  "004:3.4": "dledger",
};

const FENCE = /^```\s*([A-Za-z0-9_-]*)\s*$/;
const SECTION_HEADING = /^##\s+\*{0,2}(\d+\.\d+)、/;
const CAT_FILE = /\$\s*cat\s+(\S+\.(?:properties|conf))\s*$/;
const HEREDOC_START = /^\s*cat\s+>\s*(\S+)\s+<<\s*'?(\w+)'?\s*$/;
const BROKER_KEY = /^\s*(brokerClusterName|brokerName)\s*[=:]/m;
const SELF_ID = /^\s*(?:dLegerSelfId|dLedgerSelfId)\s*=\s*([A-Za-z0-9_]+)\s*(?:#.*)?$/m;
const NAME_FROM_COMMENT = /^#.*?([A-Za-z0-9_-]+)\.(?:conf|properties)\b/;
/** Names for blocks whose own comment names a file another block also claims (seed:first line). */
const BLOCK_NAMES: Readonly<Record<string, string>> = {
  "002:917": "broker-dledger-full", // "# broker-dledger.conf 完整配置": the complete version of the block at line 274
};

interface Block {
  lang: string;
  /** 1-based line of the first content line (after the opening fence). */
  firstLine: number;
  lines: string[];
  section: string;
}

function fencedBlocks(text: string): Block[] {
  const lines = text.split(/\r?\n/);
  const blocks: Block[] = [];
  let section = "";
  let open: Block | undefined;
  lines.forEach((line, i) => {
    const fence = FENCE.exec(line);
    if (open) {
      if (fence && fence[1] === "") {
        blocks.push(open);
        open = undefined;
      } else {
        open.lines.push(line);
      }
      return;
    }
    const heading = SECTION_HEADING.exec(line);
    if (heading) section = heading[1] as string;
    if (fence) open = { lang: (fence[1] ?? "").toLowerCase(), firstLine: i + 2, lines: [], section };
  });
  return blocks;
}

function slug(s: string): string {
  return s
    .replace(/\$\{(\w+)\}/g, "$1")
    .replace(/[^A-Za-z0-9_-]+/g, "-")
    .replace(/^-+|-+$/g, "");
}

interface Found {
  base: string;
  firstLine: number;
  lines: string[];
  kind: SeedConfig["kind"];
  what: string;
}

function findInBlock(prefix: string, block: Block): Found[] {
  const found: Found[] = [];
  const sectionSlug = SECTION_SLUGS[`${prefix}:${block.section}`];
  if (block.lang === "properties") {
    const content = block.lines.join("\n");
    if (!BROKER_KEY.test(content)) return found;
    const named = NAME_FROM_COMMENT.exec(block.lines[0] ?? "");
    found.push({
      base:
        BLOCK_NAMES[`${prefix}:${block.firstLine}`] ??
        (named ? slug(named[1] as string) : `block-${block.firstLine}`),
      firstLine: block.firstLine,
      lines: block.lines,
      kind: "properties",
      what: "a ```properties block",
    });
    return found;
  }
  if (block.lang !== "shell" && block.lang !== "bash" && block.lang !== "sh") return found;
  for (let i = 0; i < block.lines.length; i++) {
    const line = block.lines[i] as string;
    const cat = CAT_FILE.exec(line);
    if (cat) {
      const rest = block.lines.slice(i + 1);
      if (!BROKER_KEY.test(rest.join("\n"))) continue;
      const file = basename(cat[1] as string).replace(/\.(properties|conf)$/, "");
      found.push({
        base: sectionSlug ? `${sectionSlug}-${slug(file)}` : slug(file),
        firstLine: block.firstLine + i + 1,
        lines: rest,
        kind: "properties",
        what: `the output of \`cat ${cat[1]}\``,
      });
      break; // the cat output runs to the end of the block
    }
    const heredoc = HEREDOC_START.exec(line);
    if (heredoc) {
      const end = block.lines.findIndex((l, j) => j > i && l.trim() === heredoc[2]);
      if (end < 0) continue;
      const body = block.lines.slice(i + 1, end);
      if (BROKER_KEY.test(body.join("\n"))) {
        found.push({
          base: `${slug((heredoc[1] as string).replace(/\.(properties|conf)$/, ""))}-template`,
          firstLine: block.firstLine + i + 1,
          lines: body,
          kind: "shell-template",
          what: `the heredoc \`${line.trim()}\` of a deployment script (shell variables left as written)`,
        });
      }
      i = end;
    }
  }
  return found;
}

function header(seedFile: string, f: Found, lastLine: number): string {
  return [
    `# Extracted verbatim from the seed document shared/seeds/${seedFile}, lines ${f.firstLine}-${lastLine}:`,
    `# ${f.what}.`,
    "# Regenerate with `node deploy/conf/seeds/extract.ts`; test/seed-configs.test.ts checks this copy",
    "# against the seed and loads it with the broker config loader. Do not edit below the marker.",
    SEED_CONTENT_MARKER,
  ].join("\n");
}

/** The line that separates our header from the verbatim seed content. */
export const SEED_CONTENT_MARKER = "# ---- verbatim seed content below ----";

/** Extracts every broker config example from the seed documents in `seedsDir`, in file then line order. */
export function extractSeedConfigs(seedsDir: string): SeedConfig[] {
  const out: SeedConfig[] = [];
  const taken = new Set<string>();
  const seedFiles = readdirSync(seedsDir)
    .filter((f) => /^\d{3}_.*\.txt$/.test(f))
    .sort();
  for (const seedFile of seedFiles) {
    const prefix = seedFile.slice(0, 3);
    const text = readFileSync(join(seedsDir, seedFile), "utf8");
    for (const block of fencedBlocks(text)) {
      for (const f of findInBlock(prefix, block)) {
        const content = `${f.lines.join("\n")}\n`;
        const selfId = SELF_ID.exec(content)?.[1];
        let name = `${prefix}-${f.base}`;
        if (selfId !== undefined && !name.endsWith(`-${selfId}`)) name += `-${selfId}`;
        let unique = name;
        for (let n = 2; taken.has(unique); n++) unique = `${name}-${n}`;
        taken.add(unique);
        const lastLine = f.firstLine + f.lines.length - 1;
        out.push({
          fileName: `${unique}.conf`,
          seedFile,
          firstLine: f.firstLine,
          lastLine,
          kind: f.kind,
          content,
          fileText: `${header(seedFile, f, lastLine)}\n${content}`,
        });
      }
    }
  }
  return out;
}

/** The verbatim part of a committed seed config file (everything after the marker line). */
export function seedContentOf(fileText: string): string {
  const at = fileText.indexOf(`${SEED_CONTENT_MARKER}\n`);
  return at < 0 ? fileText : fileText.slice(at + SEED_CONTENT_MARKER.length + 1);
}

if (import.meta.main) {
  const here = import.meta.dirname;
  const seedsDir = resolve(process.argv[2] ?? join(here, "../../../../shared/seeds"));
  const outDir = resolve(process.argv[3] ?? here);
  mkdirSync(outDir, { recursive: true });
  for (const c of extractSeedConfigs(seedsDir)) {
    writeFileSync(join(outDir, c.fileName), c.fileText);
    console.log(`${c.fileName}  <- ${c.seedFile} lines ${c.firstLine}-${c.lastLine}`);
  }
}
