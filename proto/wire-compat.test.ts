// Wire compatibility of our generated apache.rocketmq.v2 types with the official Node SDK
// (rocketmq-client-nodejs, devDependency), whose google-protobuf classes are what a real client
// encodes and decodes with.
//
// For EVERY message class the SDK ships (requests, responses, telemetry commands, the domain types
// they embed, WKT-bearing ones) and for every oneof case:
//   ours --toBinary--> SDK deserializeBinary --toObject--> compared field by field with our values;
//   SDK built with its own setters --serializeBinary--> ours fromBinary --> compared with the values;
//   and, where the SDK knows every field, the two encodings must be byte-identical.
// Every field is populated with a distinct non-default value (negative int32s, int64s beyond 2^32,
// UTF-8 strings, bytes with 0x00/0xFF, timestamps, durations, maps, repeated enums), so a wrong field
// number, type or oneof grouping fails. Schema-level checks list messages/fields/enum values the
// SDK has and we lack (must be none) and compare the SDK's shipped .proto files against our
// descriptors number by number.
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import { createRequire } from "node:module";
import * as os from "node:os";
import * as path from "node:path";
import {
  create,
  createRegistry,
  type DescEnum,
  type DescField,
  type DescMessage,
  fromBinary,
  isFieldSet,
  type Message,
  ScalarType,
  toBinary,
} from "@bufbuild/protobuf";
import { type DescriptorProto, FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { afterAll, describe, expect, it } from "vitest";
import { file_apache_rocketmq_v2_admin } from "./gen/apache/rocketmq/v2/admin_pb.ts";
import { file_apache_rocketmq_v2_definition } from "./gen/apache/rocketmq/v2/definition_pb.ts";
import { file_apache_rocketmq_v2_service, MessagingService } from "./gen/apache/rocketmq/v2/service_pb.ts";

const PACKAGE = "apache.rocketmq.v2";
const REPO_ROOT = path.resolve(import.meta.dirname, "..");

/** Fields upstream added after the SDK's proto snapshot (apis v2.1.2); the SDK skips them. */
const KNOWN_SDK_LACKING_FIELDS = ["apache.rocketmq.v2.Settings.client_properties"];
const KNOWN_SDK_LACKING_ENUM_VALUES = ["apache.rocketmq.v2.Code.INVALID_CLIENT_PROPERTIES"];
/** Messages the SDK uses on the wire; each must be in the SDK's set (sanity check of discovery). */
const SDK_WIRE_MESSAGES = [
  "QueryRouteRequest",
  "QueryRouteResponse",
  "HeartbeatRequest",
  "HeartbeatResponse",
  "SendMessageRequest",
  "SendMessageResponse",
  "SendResultEntry",
  "ReceiveMessageRequest",
  "ReceiveMessageResponse",
  "AckMessageRequest",
  "AckMessageResponse",
  "AckMessageEntry",
  "AckMessageResultEntry",
  "ForwardMessageToDeadLetterQueueRequest",
  "ForwardMessageToDeadLetterQueueResponse",
  "EndTransactionRequest",
  "EndTransactionResponse",
  "TelemetryCommand",
  "Settings",
  "RecoverOrphanedTransactionCommand",
  "VerifyMessageCommand",
  "VerifyMessageResult",
  "PrintThreadStackTraceCommand",
  "ThreadStackTrace",
  "ReconnectEndpointsCommand",
  "NotifyUnsubscribeLiteCommand",
  "NotifyClientTerminationRequest",
  "NotifyClientTerminationResponse",
  "ChangeInvisibleDurationRequest",
  "ChangeInvisibleDurationResponse",
  "QueryAssignmentRequest",
  "QueryAssignmentResponse",
  "RecallMessageRequest",
  "RecallMessageResponse",
  "SyncLiteSubscriptionRequest",
  "SyncLiteSubscriptionResponse",
  "Message",
  "SystemProperties",
  "Resource",
  "Assignment",
  "MessageQueue",
  "Broker",
  "Endpoints",
  "Address",
  "Status",
  "RetryPolicy",
  "ExponentialBackoff",
  "CustomizedBackoff",
  "Publishing",
  "Subscription",
  "UA",
  "Metric",
  "Digest",
  "DeadLetterQueue",
  "FilterExpression",
  "SubscriptionEntry",
  "OffsetOption",
];

// ---------------------------------------------------------------------------------------------
// The SDK's google-protobuf classes (CommonJS), seen through a minimal structural type.

interface JspbMessage {
  toObject(): Record<string, unknown>;
  serializeBinary(): Uint8Array;
}
interface JspbClass {
  new (): JspbMessage;
  deserializeBinary(bytes: Uint8Array): JspbMessage;
}
type JspbEnum = Record<string, number>;

const requireFromHere = createRequire(import.meta.url);
const sdkPackageJson = requireFromHere.resolve("rocketmq-client-nodejs/package.json");
const SDK_PROTO_DIR = path.join(path.dirname(sdkPackageJson), "proto", "apache", "rocketmq", "v2");
const requireFromSdk = createRequire(sdkPackageJson);

function isJspbClass(v: unknown): v is JspbClass {
  return (
    typeof v === "function" && typeof (v as { deserializeBinary?: unknown }).deserializeBinary === "function"
  );
}
function isNumberRecord(v: unknown): v is JspbEnum {
  return (
    typeof v === "object" &&
    v !== null &&
    !Array.isArray(v) &&
    Object.keys(v).length > 0 &&
    Object.values(v).every((x) => typeof x === "number")
  );
}

interface SdkIndex {
  messages: Map<string, JspbClass>;
  enums: Map<string, JspbEnum>;
  /** typeName of the owning message -> jspb oneof case objects by name (e.g. "PubSubCase"). */
  oneofCases: Map<string, Map<string, JspbEnum>>;
}

function indexSdk(): SdkIndex {
  const index: SdkIndex = { messages: new Map(), enums: new Map(), oneofCases: new Map() };
  // The generated files export the shared `proto.apache.rocketmq.v2` namespace; merge all three.
  const root: Record<string, unknown> = {};
  for (const file of ["definition_pb.js", "service_pb.js", "admin_pb.js"]) {
    Object.assign(root, requireFromSdk(path.join(SDK_PROTO_DIR, file)));
  }
  const visit = (scope: Record<string, unknown>, prefix: string, owner: string | undefined) => {
    for (const [name, value] of Object.entries(scope)) {
      const typeName = `${prefix}.${name}`;
      if (isJspbClass(value)) {
        index.messages.set(typeName, value);
        visit(value as unknown as Record<string, unknown>, typeName, typeName);
      } else if (isNumberRecord(value)) {
        if (owner !== undefined && name.endsWith("Case")) {
          const cases = index.oneofCases.get(owner) ?? new Map<string, JspbEnum>();
          cases.set(name, value);
          index.oneofCases.set(owner, cases);
        } else {
          index.enums.set(typeName, value);
        }
      }
    }
  };
  visit(root, PACKAGE, undefined);
  const wkt = (file: string, name: string) =>
    (requireFromSdk(`google-protobuf/google/protobuf/${file}`) as Record<string, unknown>)[name];
  for (const [file, name] of [
    ["timestamp_pb.js", "Timestamp"],
    ["duration_pb.js", "Duration"],
  ] as const) {
    const cls = wkt(file, name);
    if (!isJspbClass(cls)) throw new Error(`google-protobuf ${name} not found`);
    index.messages.set(`google.protobuf.${name}`, cls);
  }
  return index;
}

const sdk = indexSdk();
const ours = createRegistry(
  file_apache_rocketmq_v2_definition,
  file_apache_rocketmq_v2_service,
  file_apache_rocketmq_v2_admin,
);

function sdkClass(desc: DescMessage): JspbClass {
  const cls = sdk.messages.get(desc.typeName);
  if (cls === undefined) throw new Error(`SDK has no class for ${desc.typeName}`);
  return cls;
}

// ---------------------------------------------------------------------------------------------
// google-protobuf (jspb) naming: words split on "_", lower-cased, re-joined in camel case.

const JS_RESERVED = new Set(
  (
    "abstract boolean break byte case catch char class const continue debugger default delete do " +
    "double else enum export extends false final finally float for function goto if implements " +
    "import in instanceof int interface long native new null package private protected public " +
    "return short static super switch synchronized this throw throws transient try typeof var " +
    "void volatile while with"
  ).split(" "),
);
function jspbWords(protoName: string): string[] {
  return protoName
    .split("_")
    .filter((w) => w.length > 0)
    .map((w) => w.toLowerCase());
}
function jspbUpperCamel(protoName: string): string {
  return jspbWords(protoName)
    .map((w) => w.charAt(0).toUpperCase() + w.slice(1))
    .join("");
}
/** Property name of a field in jspb's toObject(). */
function jspbObjectKey(field: DescField): string {
  const upper = jspbUpperCamel(field.name);
  let key = upper.charAt(0).toLowerCase() + upper.slice(1);
  if (field.fieldKind === "list") key += "List";
  if (field.fieldKind === "map") key += "Map";
  return JS_RESERVED.has(key) ? `pb_${key}` : key;
}

function sdkObjectKeys(desc: DescMessage): Set<string> {
  const Cls = sdkClass(desc);
  return new Set(Object.keys(new Cls().toObject()));
}

// ---------------------------------------------------------------------------------------------
// Populating our messages with distinct non-default values.

const MAX_DEPTH = 8;

function scalarValue(type: ScalarType, salt: number, variant: number, label: string): unknown {
  const sign = variant % 2 === 0 ? 1 : -1;
  const n = salt * 7919 + variant * 13 + 1;
  switch (type) {
    case ScalarType.DOUBLE:
      return sign * (n + 0.125);
    case ScalarType.FLOAT:
      return sign * (n % 4096) + 0.5; // exactly representable as float32
    case ScalarType.INT64:
    case ScalarType.SINT64:
    case ScalarType.SFIXED64:
      return BigInt(sign) * (2n ** 40n + BigInt(n)); // does not fit in 32 bits
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
      return 2n ** 40n + BigInt(n);
    case ScalarType.INT32:
    case ScalarType.SINT32:
    case ScalarType.SFIXED32:
      return sign * n; // negative on odd variants: catches int32/uint32/sint32 mix-ups
    case ScalarType.UINT32:
    case ScalarType.FIXED32:
      return n;
    case ScalarType.BOOL:
      return true;
    case ScalarType.STRING:
      return `${label}#${variant} é✓`;
    case ScalarType.BYTES:
      return new Uint8Array([salt & 0xff, 0x00, 0xff, variant & 0xff, 0x80, 0x7f]);
  }
}

function enumValue(desc: DescEnum, salt: number, variant: number): number {
  const nonZero = desc.values.filter((v) => v.number !== 0);
  const pick = nonZero[(salt + variant) % nonZero.length];
  if (pick === undefined) throw new Error(`${desc.typeName} has no non-zero value`);
  return pick.number;
}

function fieldValue(field: DescField, salt: number, variant: number, depth: number): unknown {
  const label = `${field.parent.name}.${field.name}`;
  switch (field.fieldKind) {
    case "scalar":
      return scalarValue(field.scalar, salt, variant, label);
    case "enum":
      return enumValue(field.enum, salt, variant);
    case "message":
      return populate(field.message, variant, depth + 1, salt);
    case "list":
      return [0, 1].map((i) => {
        if (field.listKind === "scalar")
          return scalarValue(field.scalar, salt + i, variant, `${label}[${i}]`);
        if (field.listKind === "enum") return enumValue(field.enum, salt + i, variant);
        return populate(field.message, variant + i, depth + 1, salt + i);
      });
    case "map": {
      const out: Record<string, unknown> = {};
      // Keys inserted in sorted order, as jspb writes them sorted.
      for (const [i, key] of [`a-${field.name}`, `b-${field.name}`].entries()) {
        if (field.mapKey !== ScalarType.STRING) throw new Error(`${label}: only string map keys expected`);
        if (field.mapKind === "scalar")
          out[key] = scalarValue(field.scalar, salt + i, variant, `${label}[${key}]`);
        else if (field.mapKind === "enum") out[key] = enumValue(field.enum, salt + i, variant);
        else out[key] = populate(field.message, variant + i, depth + 1, salt + i);
      }
      return out;
    }
  }
}

/** A message of type `desc` with every field set; oneof `o` set to case `variant % cases`. */
function populate(desc: DescMessage, variant: number, depth = 0, salt = 0): Message {
  if (desc.typeName === "google.protobuf.Timestamp") {
    return create(desc, {
      seconds: BigInt(1_763_856_000 + salt * 61 + variant),
      nanos: 123_456_000 + variant,
    });
  }
  if (desc.typeName === "google.protobuf.Duration") {
    return create(desc, { seconds: BigInt(15 + salt * 3 + variant), nanos: 250_000_000 + variant });
  }
  if (depth > MAX_DEPTH) throw new Error(`schema nests deeper than ${MAX_DEPTH} at ${desc.typeName}`);
  const init: Record<string, unknown> = {};
  for (const field of desc.fields) {
    if (field.oneof !== undefined) continue;
    init[field.localName] = fieldValue(field, field.number + salt, variant, depth);
  }
  for (const oneof of desc.oneofs) {
    const field = oneof.fields[variant % oneof.fields.length];
    if (field === undefined) continue;
    init[oneof.localName] = {
      case: field.localName,
      value: fieldValue(field, field.number + salt, variant, depth),
    };
  }
  return create(desc, init as never);
}

function variantsOf(desc: DescMessage): number {
  return Math.max(2, ...desc.oneofs.map((o) => o.fields.length));
}

// ---------------------------------------------------------------------------------------------
// Converting our messages to the shape of jspb's toObject() (restricted to fields the SDK knows),
// and building SDK messages from our values with the SDK's own setters.

function ourFieldValue(msg: Message, field: DescField): unknown {
  const record = msg as unknown as Record<string, unknown>;
  if (field.oneof !== undefined) {
    const o = record[field.oneof.localName] as { case?: string; value?: unknown };
    return o.case === field.localName ? o.value : undefined;
  }
  return record[field.localName];
}

function scalarDefault(type: ScalarType): unknown {
  if (type === ScalarType.STRING || type === ScalarType.BYTES) return "";
  if (type === ScalarType.BOOL) return false;
  return 0;
}

function scalarToJspb(v: unknown): unknown {
  if (typeof v === "bigint") return Number(v);
  if (v instanceof Uint8Array) return Buffer.from(v).toString("base64");
  return v;
}

function toJspbShape(desc: DescMessage, msg: Message): Record<string, unknown> {
  const known = sdkObjectKeys(desc);
  const out: Record<string, unknown> = {};
  for (const field of desc.fields) {
    const key = jspbObjectKey(field);
    if (!known.has(key)) continue;
    const v = ourFieldValue(msg, field);
    switch (field.fieldKind) {
      case "scalar":
        out[key] = v === undefined ? scalarDefault(field.scalar) : scalarToJspb(v);
        break;
      case "enum":
        out[key] = v ?? 0;
        break;
      case "message":
        out[key] = v === undefined ? undefined : toJspbShape(field.message, v as Message);
        break;
      case "list":
        out[key] = (v as unknown[]).map((e) =>
          field.listKind === "message" ? toJspbShape(field.message, e as Message) : scalarToJspb(e),
        );
        break;
      case "map":
        out[key] = Object.entries(v as Record<string, unknown>)
          .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
          .map(([k, e]) => [
            k,
            field.mapKind === "message" ? toJspbShape(field.message, e as Message) : scalarToJspb(e),
          ]);
        break;
    }
  }
  return out;
}

type Setter = (this: JspbMessage, value: unknown) => unknown;

function method(target: JspbMessage, name: string): Setter | undefined {
  const fn = (target as unknown as Record<string, unknown>)[name];
  return typeof fn === "function" ? (fn as Setter) : undefined;
}

function valueForSdk(field: DescField, v: unknown): unknown {
  const isMessage =
    field.fieldKind === "message" ||
    (field.fieldKind === "list" && field.listKind === "message") ||
    (field.fieldKind === "map" && field.mapKind === "message");
  if (isMessage && field.message !== undefined) return toSdkMessage(field.message, v as Message);
  if (typeof v === "bigint") return Number(v);
  return v;
}

/** The same values, set through the SDK's generated setters (fields it lacks are skipped). */
function toSdkMessage(desc: DescMessage, msg: Message): JspbMessage {
  const Cls = sdkClass(desc);
  const target = new Cls();
  for (const field of desc.fields) {
    const v = ourFieldValue(msg, field);
    if (v === undefined) continue;
    const upper = jspbUpperCamel(field.name);
    if (field.fieldKind === "map") {
      const getMap = method(target, `get${upper}Map`);
      if (getMap === undefined) continue;
      const map = getMap.call(target, undefined) as { set(k: string, v: unknown): unknown };
      for (const [k, e] of Object.entries(v as Record<string, unknown>)) map.set(k, valueForSdk(field, e));
    } else if (field.fieldKind === "list") {
      const set = method(target, `set${upper}List`);
      if (set === undefined) continue;
      set.call(
        target,
        (v as unknown[]).map((e) => valueForSdk(field, e)),
      );
    } else {
      const set = method(target, `set${upper}`);
      if (set === undefined) continue;
      set.call(target, valueForSdk(field, v));
    }
  }
  return target;
}

/** Whether `desc` (transitively) contains a field the SDK does not know. */
function reachesSdkLackingField(desc: DescMessage, seen = new Set<string>()): boolean {
  if (seen.has(desc.typeName) || desc.typeName.startsWith("google.protobuf.")) return false;
  seen.add(desc.typeName);
  const known = sdkObjectKeys(desc);
  return desc.fields.some(
    (f) =>
      !known.has(jspbObjectKey(f)) ||
      ((f.fieldKind === "message" || (f.fieldKind === "list" && f.listKind === "message")) &&
        reachesSdkLackingField(f.message, seen)) ||
      (f.fieldKind === "map" && f.mapKind === "message" && reachesSdkLackingField(f.message, seen)),
  );
}

// ---------------------------------------------------------------------------------------------

const sdkMessageNames = [...sdk.messages.keys()].filter((n) => n.startsWith(`${PACKAGE}.`)).sort();

describe("schema: the SDK's google-protobuf classes vs our descriptors", () => {
  it("discovers the SDK's classes (sanity)", () => {
    expect(sdkMessageNames.length).toBeGreaterThanOrEqual(67); // 22 definition + 43 service + 2 admin in SDK 1.0.8
    for (const name of SDK_WIRE_MESSAGES) expect(sdkMessageNames).toContain(`${PACKAGE}.${name}`);
    // DESIGN.md says 17 RPCs; upstream HEAD and the SDK's service.proto agree: 17.
    expect(Object.keys(MessagingService.method)).toHaveLength(17);
  });

  it("every SDK message and field exists in ours; the SDK lacks only the known newer fields", () => {
    const missingMessages: string[] = [];
    const missingFields: string[] = [];
    const sdkLacks: string[] = [];
    for (const typeName of sdkMessageNames) {
      const desc = ours.getMessage(typeName);
      if (desc === undefined) {
        missingMessages.push(typeName);
        continue;
      }
      const sdkKeys = sdkObjectKeys(desc);
      const ourKeys = new Map(desc.fields.map((f) => [jspbObjectKey(f), f] as const));
      for (const key of sdkKeys) if (!ourKeys.has(key)) missingFields.push(`${typeName}.${key}`);
      for (const [key, f] of ourKeys) if (!sdkKeys.has(key)) sdkLacks.push(`${typeName}.${f.name}`);
    }
    expect(missingMessages, "SDK messages we lack").toEqual([]);
    expect(missingFields, "SDK fields we lack").toEqual([]);
    expect(sdkLacks.sort(), "our fields unknown to the SDK").toEqual(KNOWN_SDK_LACKING_FIELDS);
  });

  it("every SDK enum value exists in ours with the same number", () => {
    const wrong: string[] = [];
    const oursOnly: string[] = [];
    for (const [typeName, values] of sdk.enums) {
      const desc = ours.getEnum(typeName);
      if (desc === undefined) {
        wrong.push(`missing enum ${typeName}`);
        continue;
      }
      // jspb upper-cases value names (IPv4 -> IPV4).
      for (const [name, number] of Object.entries(values)) {
        const v = desc.values.find((x) => x.name.toUpperCase() === name);
        if (v?.number !== number) wrong.push(`${typeName}.${name}: SDK ${number}, ours ${v?.number}`);
      }
      for (const v of desc.values)
        if (!(v.name.toUpperCase() in values)) oursOnly.push(`${typeName}.${v.name}`);
    }
    expect(sdk.enums.size).toBeGreaterThanOrEqual(15); // 13 top-level + OffsetOption.Policy + ChangeLogLevelRequest.Level
    expect(wrong).toEqual([]);
    expect(oursOnly.sort()).toEqual(KNOWN_SDK_LACKING_ENUM_VALUES);
  });

  it("every SDK oneof groups the same field numbers as ours", () => {
    const wrong: string[] = [];
    let checked = 0;
    for (const [typeName, cases] of sdk.oneofCases) {
      const desc = ours.getMessage(typeName);
      for (const [caseName, values] of cases) {
        const oneof = desc?.oneofs.find((o) => `${jspbUpperCamel(o.name)}Case` === caseName);
        if (oneof === undefined) {
          wrong.push(`${typeName}.${caseName}: no such oneof in ours`);
          continue;
        }
        const expected: Record<string, number> = { [`${oneof.name.toUpperCase()}_NOT_SET`]: 0 };
        for (const f of oneof.fields) expected[f.name.toUpperCase()] = f.number;
        if (
          JSON.stringify(Object.entries(values).sort()) !== JSON.stringify(Object.entries(expected).sort())
        ) {
          wrong.push(
            `${typeName}.${caseName}: SDK ${JSON.stringify(values)} ours ${JSON.stringify(expected)}`,
          );
        }
        checked++;
      }
    }
    expect(checked).toBeGreaterThanOrEqual(5); // RetryPolicy, Settings, OffsetOption, Receive/PullMessageResponse, TelemetryCommand
    expect(wrong).toEqual([]);
  });

  describe("the SDK's shipped .proto files", () => {
    const scratch: string[] = [];
    afterAll(() => {
      for (const dir of scratch) fs.rmSync(dir, { recursive: true, force: true });
    });

    it("agree with ours on every field number, name, type, label, type name and oneof", () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "rmq-sdk-proto-"));
      scratch.push(dir);
      const moduleDir = path.join(dir, "sdk", "apache", "rocketmq", "v2");
      fs.mkdirSync(moduleDir, { recursive: true });
      for (const file of ["definition.proto", "service.proto", "admin.proto"]) {
        fs.copyFileSync(path.join(SDK_PROTO_DIR, file), path.join(moduleDir, file));
      }
      fs.writeFileSync(path.join(dir, "buf.yaml"), "version: v2\nmodules:\n  - path: sdk\n");
      execFileSync(
        path.join(REPO_ROOT, "node_modules", "@bufbuild", "buf-linux-x64", "bin", "buf"),
        ["build", "-o", "sdk.binpb", "--exclude-source-info"],
        {
          cwd: dir,
          stdio: ["ignore", "pipe", "pipe"],
          timeout: 60_000,
        },
      );
      const set = fromBinary(FileDescriptorSetSchema, fs.readFileSync(path.join(dir, "sdk.binpb")));

      const wrong: string[] = [];
      let fields = 0;
      const compareMessage = (proto: DescriptorProto, typeName: string) => {
        const desc = ours.getMessage(typeName);
        if (desc === undefined) {
          wrong.push(`missing message ${typeName}`);
          return;
        }
        for (const sf of proto.field) {
          fields++;
          const of = desc.fields.find((f) => f.number === sf.number);
          const sdkOneof = sf.oneofIndex === undefined ? undefined : proto.oneofDecl[sf.oneofIndex]?.name;
          const oursOneof =
            of?.proto.oneofIndex === undefined ? undefined : desc.proto.oneofDecl[of.proto.oneofIndex]?.name;
          const a = [sf.name, sf.type, sf.label, sf.typeName, sf.proto3Optional, sdkOneof];
          const b = [
            of?.name,
            of?.proto.type,
            of?.proto.label,
            of?.proto.typeName,
            of?.proto.proto3Optional,
            oursOneof,
          ];
          if (JSON.stringify(a) !== JSON.stringify(b)) {
            wrong.push(`${typeName} #${sf.number}: SDK ${JSON.stringify(a)} ours ${JSON.stringify(b)}`);
          }
        }
        for (const nested of proto.nestedType) {
          if (nested.options?.mapEntry === true) continue; // covered by the map field's type
          compareMessage(nested, `${typeName}.${nested.name}`);
        }
      };
      for (const file of set.file.filter((f) => f.package === PACKAGE)) {
        for (const m of file.messageType) compareMessage(m, `${PACKAGE}.${m.name}`);
        for (const svc of file.service) {
          const our = ours.getService(`${PACKAGE}.${svc.name}`);
          for (const sm of svc.method) {
            const om = our?.methods.find((m) => m.name === sm.name);
            const a = [sm.inputType, sm.outputType, sm.clientStreaming ?? false, sm.serverStreaming ?? false];
            const b = [
              om && `.${om.input.typeName}`,
              om && `.${om.output.typeName}`,
              om?.methodKind === "client_streaming" || om?.methodKind === "bidi_streaming",
              om?.methodKind === "server_streaming" || om?.methodKind === "bidi_streaming",
            ];
            if (JSON.stringify(a) !== JSON.stringify(b))
              wrong.push(`${svc.name}/${sm.name}: ${JSON.stringify([a, b])}`);
          }
        }
      }
      expect(fields).toBeGreaterThanOrEqual(208);
      expect(wrong).toEqual([]);
    });
  });
});

describe("round trips with the SDK's google-protobuf classes", () => {
  for (const typeName of sdkMessageNames) {
    const desc = ours.getMessage(typeName);
    it(`${typeName.slice(PACKAGE.length + 1)}`, () => {
      expect(desc, `${typeName} missing in ours`).toBeDefined();
      if (desc === undefined) return;
      const Cls = sdkClass(desc);
      const byteIdentical = !reachesSdkLackingField(desc);
      for (let variant = 0; variant < variantsOf(desc); variant++) {
        const original = populate(desc, variant);
        // Every plain field is set, and exactly one member per oneof.
        for (const f of desc.fields)
          if (f.oneof === undefined) expect(isFieldSet(original, f), f.name).toBe(true);
        const expected = toJspbShape(desc, original);

        // ours -> SDK
        const ourBytes = toBinary(desc, original);
        expect(Cls.deserializeBinary(ourBytes).toObject()).toEqual(expected);

        // SDK -> ours
        const built = toSdkMessage(desc, original);
        expect(built.toObject(), "SDK message built through its setters").toEqual(expected);
        const sdkBytes = built.serializeBinary();
        expect(toJspbShape(desc, fromBinary(desc, sdkBytes))).toEqual(expected);

        if (byteIdentical)
          expect(Buffer.from(sdkBytes).equals(Buffer.from(ourBytes)), "identical encoding").toBe(true);
      }
    });
  }
});
