// Starts the benchmark's sandbox servers in child processes (see sandbox-process.ts) and stops them.
import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { pinChild } from './pin.js';

const ENTRY = fileURLToPath(new URL('./sandbox-process.ts', import.meta.url));
const START_TIMEOUT_MS = 120_000;

export interface OpenCrvsEndpoints {
  baseUrl: string;
  tokenUrl: string;
  eventsUrl: string;
  clientId: string;
  clientSecret: string;
}

export interface FhirEndpoints {
  baseUrl: string;
  resources: number;
  seedMs: number;
}

export interface SandboxProcess<T> {
  info: T;
  /** CPU time (user + system) the process has used so far, in ms. */
  cpuMs(): Promise<number>;
  close(): Promise<void>;
}

function start<T>(args: string[]): Promise<SandboxProcess<T>> {
  const child: ChildProcess = fork(ENTRY, args, {
    // BENCH_CHILD_NODE_OPTIONS: extra flags for profiling, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`.
    execArgv: ['--import', 'tsx', ...(process.env.BENCH_CHILD_NODE_OPTIONS?.split(' ').filter(Boolean) ?? [])],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  pinChild(child.pid);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill();
      reject(new Error(`sandbox ${args[0]} did not start within ${START_TIMEOUT_MS} ms`));
    }, START_TIMEOUT_MS);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`sandbox ${args[0]} exited with ${code}`));
    });
    child.once('message', (message) => {
      clearTimeout(timer);
      const ready = (message as { ready?: T }).ready;
      if (!ready) return reject(new Error(`sandbox ${args[0]}: unexpected message`));
      resolve({
        info: ready,
        cpuMs: () =>
          new Promise<number>((done) => {
            const onMessage = (answer: unknown) => {
              const cpuMs = (answer as { cpuMs?: number }).cpuMs;
              if (typeof cpuMs !== 'number') return;
              child.off('message', onMessage);
              done(cpuMs);
            };
            child.on('message', onMessage);
            child.send('cpu');
          }),
        close: () =>
          new Promise<void>((done) => {
            if (child.exitCode !== null) return done();
            const kill = setTimeout(() => child.kill('SIGKILL'), 5_000);
            child.once('exit', () => {
              clearTimeout(kill);
              done();
            });
            child.send('close');
          }),
      });
    });
  });
}

export const startOpenCrvsProcess = () => start<OpenCrvsEndpoints>(['opencrvs']);
export const startFhirProcess = (births: number) => start<FhirEndpoints>(['fhir', String(births)]);
