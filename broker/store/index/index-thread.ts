// Entry point of the Index thread (threaded-index-service.ts): opens a DefaultIndexService in this
// thread and serves it. Dispatches arrive packed (index-keys.ts) and are applied as they come; calls
// are answered with their result and the durable point after them. Messages are handled in arrival
// order, so a call sees every dispatch sent before it.
import { parentPort, workerData } from "node:worker_threads";
import { pino } from "pino";
import { type DefaultIndexService, openIndexService } from "./index-service.ts";
import type { FromIndexThread, IndexCall, IndexThreadInit, ToIndexThread } from "./threaded-index-service.ts";

/** threaded-index-service.ts INDEX_THREAD_ROLE (not imported: that module would pull in its own deps). */
const ROLE: IndexThreadInit["role"] = "rmq-index";

const port = parentPort;
const init = workerData as IndexThreadInit | undefined;

function send(m: FromIndexThread): void {
  port?.postMessage(m);
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

async function call(service: DefaultIndexService, c: IndexCall): Promise<unknown> {
  switch (c.op) {
    case "flush":
      return service.flush();
    case "query":
      return service.query(...c.args);
    case "truncate":
      return service.truncate(...c.args);
    case "deleteExpired":
      return service.deleteExpired(...c.args);
    case "close":
      return service.close();
  }
}

if (port !== null && init?.role === ROLE) {
  const logger = pino({ level: init.logLevel, base: init.logBindings });
  let service: DefaultIndexService | undefined;
  // Messages sent before the open completed wait here, in order.
  const early: ToIndexThread[] = [];
  const handle = (m: ToIndexThread): void => {
    const s = service;
    if (s === undefined) {
      early.push(m);
      return;
    }
    if (m.kind === "dispatch") {
      try {
        s.dispatchPacked(m.packed, m.packed.length);
      } catch (e) {
        send({ kind: "dispatchFailed", message: message(e) });
      }
      return;
    }
    call(s, m.call).then(
      (value) => send({ kind: "result", id: m.id, value, durable: s.durableMaxPhyOffset }),
      (e: unknown) => send({ kind: "result", id: m.id, error: message(e), durable: s.durableMaxPhyOffset }),
    );
  };
  port.on("message", handle);
  openIndexService({
    dir: init.dir,
    maxHashSlotNum: init.maxHashSlotNum,
    maxIndexNum: init.maxIndexNum,
    maxCachedPages: init.maxCachedPages,
    logger,
  }).then(
    (s) => {
      service = s;
      send({ kind: "opened", durable: s.durableMaxPhyOffset });
      for (const m of early.splice(0)) handle(m);
    },
    (e: unknown) => send({ kind: "openFailed", message: message(e) }),
  );
}
