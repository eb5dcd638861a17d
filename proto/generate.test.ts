// Guards the committed generated code: `buf generate` on a copy of the tree (same buf.yaml and
// buf.gen.yaml, unchanged) must reproduce proto/gen byte for byte. Also checks that an internal
// .proto dropped under proto/rmq/... is generated next to the public ones and is importable.
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, describe, expect, it } from "vitest";

const REPO_ROOT = path.resolve(import.meta.dirname, "..");
const PROTO_DIR = path.join(REPO_ROOT, "proto");
const GEN_DIR = path.join(PROTO_DIR, "gen");
const BIN_DIR = path.join(REPO_ROOT, "node_modules", ".bin");
/** The buf binary (the platform package: the registry here serves no other platform builds). */
const BUF = path.join(REPO_ROOT, "node_modules", "@bufbuild", "buf-linux-x64", "bin", "buf");
const BUF_TIMEOUT_MS = 60_000;

const tempDirs: string[] = [];

afterEach(() => {
  for (const dir of tempDirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

/** Relative paths of all files below `root`, sorted. */
function listFiles(root: string, filter: (rel: string) => boolean = () => true): string[] {
  if (!fs.existsSync(root)) return [];
  return fs
    .readdirSync(root, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => path.relative(root, path.join(e.parentPath, e.name)))
    .filter(filter)
    .sort();
}

/** A scratch copy of the buf inputs: buf.yaml, buf.gen.yaml, every .proto outside proto/gen. */
function copyBufWorkspace(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "rmq-proto-gen-"));
  tempDirs.push(dir);
  fs.copyFileSync(path.join(REPO_ROOT, "buf.yaml"), path.join(dir, "buf.yaml"));
  fs.copyFileSync(path.join(REPO_ROOT, "buf.gen.yaml"), path.join(dir, "buf.gen.yaml"));
  const protos = listFiles(PROTO_DIR, (rel) => rel.endsWith(".proto") && !rel.startsWith(`gen${path.sep}`));
  for (const rel of protos) {
    const to = path.join(dir, "proto", rel);
    fs.mkdirSync(path.dirname(to), { recursive: true });
    fs.copyFileSync(path.join(PROTO_DIR, rel), to);
  }
  // buf.gen.yaml names the plugin as node_modules/.bin/protoc-gen-es, relative to the cwd.
  fs.symlinkSync(path.join(REPO_ROOT, "node_modules"), path.join(dir, "node_modules"), "dir");
  return dir;
}

function bufGenerate(cwd: string): void {
  execFileSync(BUF, ["generate"], {
    cwd,
    env: { ...process.env, PATH: `${BIN_DIR}${path.delimiter}${process.env.PATH ?? ""}` },
    stdio: ["ignore", "pipe", "pipe"],
    timeout: BUF_TIMEOUT_MS,
  });
}

describe("buf generate", () => {
  it("reproduces the committed proto/gen byte for byte", () => {
    const dir = copyBufWorkspace();
    bufGenerate(dir);
    const freshGen = path.join(dir, "proto", "gen");

    const committed = listFiles(GEN_DIR);
    const fresh = listFiles(freshGen);
    expect(committed.length, "proto/gen is empty: run `npm run generate`").toBeGreaterThan(0);
    expect(committed, "file set differs from a fresh `buf generate`: run `npm run generate`").toEqual(fresh);
    const stale = fresh.filter(
      (rel) => !fs.readFileSync(path.join(freshGen, rel)).equals(fs.readFileSync(path.join(GEN_DIR, rel))),
    );
    expect(stale, "stale generated files: run `npm run generate`").toEqual([]);
    // The public protocol must always be among the outputs.
    for (const name of ["definition_pb.ts", "service_pb.ts", "admin_pb.ts"]) {
      expect(fresh).toContain(path.join("apache", "rocketmq", "v2", name));
    }
  });

  it("generates an internal proto/rmq/... service that imports the public types and loads in Node", () => {
    const dir = copyBufWorkspace();
    const rel = path.join("rmq", "example", "v1", "example.proto");
    fs.mkdirSync(path.join(dir, "proto", path.dirname(rel)), { recursive: true });
    fs.writeFileSync(
      path.join(dir, "proto", rel),
      [
        'syntax = "proto3";',
        "package rmq.example.v1;",
        'import "apache/rocketmq/v2/definition.proto";',
        "message PutRequest { repeated apache.rocketmq.v2.Message messages = 1; }",
        "message PutResponse { apache.rocketmq.v2.Status status = 1; }",
        "service ExampleService { rpc Put(PutRequest) returns (PutResponse) {} }",
        "",
      ].join("\n"),
    );
    bufGenerate(dir);

    const out = path.join(dir, "proto", "gen", "rmq", "example", "v1", "example_pb.ts");
    const source = fs.readFileSync(out, "utf8");
    expect(source).toContain('from "../../../apache/rocketmq/v2/definition_pb.ts"');
    // Loads under the project's Node (type stripping, .ts imports) and round-trips a message.
    const script = `
      const { create, toBinary, fromBinary } = await import("@bufbuild/protobuf");
      const gen = await import(${JSON.stringify(out)});
      const req = create(gen.PutRequestSchema, { messages: [{ topic: { name: "T" }, body: new Uint8Array([7]) }] });
      const back = fromBinary(gen.PutRequestSchema, toBinary(gen.PutRequestSchema, req));
      console.log(JSON.stringify([gen.ExampleService.typeName, Object.keys(gen.ExampleService.method), back.messages[0].topic.name]));
    `;
    const stdout = execFileSync(path.join(BIN_DIR, "node"), ["--input-type=module", "-e", script], {
      cwd: dir,
      encoding: "utf8",
      timeout: BUF_TIMEOUT_MS,
    });
    expect(JSON.parse(stdout.trim())).toEqual(["rmq.example.v1.ExampleService", ["put"], "T"]);
  });
});
