// BENCH_PIN='<bridge CPUs>/<other CPUs>' (taskset lists, e.g. '0/1' or '0-1/2-3'): the bench process, which
// runs the bridge, on the first CPUs and its children (the sandboxes, the open-loop sender) on the others,
// as if the bridge ran on a machine of its own. Unset: everything shares every core, as the figures the
// issue asks for are taken. Linux only (taskset, util-linux); every thread of a process is pinned (-a).
import { execFileSync } from 'node:child_process';

const [bridgeCpus, otherCpus] = (process.env.BENCH_PIN ?? '').split('/');

function pin(pid: number, cpus: string): void {
  execFileSync('taskset', ['-a', '-p', '-c', cpus, String(pid)], { stdio: 'ignore' });
}

/** Pins this process (the bridge's) when BENCH_PIN says so; returns how, for the bench's header. */
export function pinBridge(): string | undefined {
  if (!bridgeCpus || !otherCpus) return undefined;
  pin(process.pid, bridgeCpus);
  return `bridge on CPU ${bridgeCpus}, sandboxes and sender on CPU ${otherCpus}`;
}

/** Pins a child process (a sandbox, the sender) when BENCH_PIN says so. */
export function pinChild(pid: number | undefined): void {
  if (pid !== undefined && bridgeCpus && otherCpus) pin(pid, otherCpus);
}
