// Entry point of the CommitLog writer thread (commitlog-writer.ts): runs each job it is sent, in order,
// and answers with the job's number and its buffers, or the error that stopped it. It says
// WRITER_READY first.
import { parentPort, workerData } from "node:worker_threads";
import {
  runWriteJob,
  WRITER_READY,
  WRITER_THREAD_DATA,
  type WriteJob,
  type WriteJobReply,
} from "./commitlog-write-job.ts";

const port = parentPort;
if (port !== null && workerData === WRITER_THREAD_DATA) {
  port.on("message", (job: WriteJob) => {
    let reply: WriteJobReply;
    try {
      runWriteJob(job);
      reply = { id: job.id, buffers: job.buffers };
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      reply = {
        id: job.id,
        buffers: job.buffers,
        error: { message: err?.message ?? String(e), code: err?.code },
      };
    }
    port.postMessage(reply, job.buffers);
  });
  port.postMessage({ id: WRITER_READY } satisfies WriteJobReply);
}
