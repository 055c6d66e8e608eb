// The worker thread serve verifies the files on disk in (config/on-disk.ts, verifyInWorker): one verify,
// its verdict posted back as plain data, then the thread ends.
import { parentPort, workerData } from 'node:worker_threads';
import type { Env } from './load.js';
import { verifyFilesOnDisk } from './on-disk-verify.js';

const { path, env } = workerData as { path: string; env: Env };
try {
  parentPort?.postMessage({ verdict: verifyFilesOnDisk(path, env) });
} catch (err) {
  parentPort?.postMessage({ error: err instanceof Error ? err.message : String(err) });
}
