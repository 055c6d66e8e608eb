// End-to-end benchmark (`npm run bench:e2e`). Prints figures; asserts nothing (no wall-clock tests).
//  (a) births/s delivered end to end: BENCH_BIRTHS (2,000) births seeded in the FHIR sandbox, polled
//      by the real bridge (one pollOnce, pageSize 500) while its worker delivers to the OpenCRVS
//      simulator; timed from the start of the poll to the last accepted NOTIFY, then checked against
//      the simulator's own event list. At delivery concurrency 4 (the default) and 8. Also printed:
//      when the last birth was recorded (mapped), when the poll pass ended, and the FHIR calls made.
//  (b) the simulator's raw capacity in the same run: the same declarations (taken from the bridge's
//      ledger, so mapped by the bridge's own mapping set) sent as create + notify with the OpenCRVS
//      client at the same concurrency, after a reset of the simulator. No ledger, no FHIR, no mapping.
//  (c) a / b. Target ≥ 0.8. Also printed: the ceiling the machine puts on (a), and so on (c), given the
//      CPU every process spent per birth in (a) (see ratioCeiling).
//  With (a) and (b): CPU seconds used by each process (bridge, FHIR sandbox, simulator), since all share
//  the machine's cores, and the bridge's CPU per birth (the figure that carries over to a deployment).
//  (d) the subscription receiver's ack latency p50/p99 at 200 notifications/s for 10 s on loopback,
//      open loop (bench/helpers/open-loop-sender.ts explains why not autocannon). Target p99 ≤ 20 ms.
//      Twice: the full bridge, processing the notifications (re-read, map, record, deliver) behind the
//      ack; then the receiver alone (inbox processor stopped, no worker), to separate its own cost.
//      After the receiver-alone run, the stored notifications are processed as a backlog (re-read, map,
//      record; no delivery): the inbox path's throughput and its FHIR calls per notification.
//      With each: CPU seconds per process while sending, the FHIR calls the bridge made, the bridge's
//      event-loop delay (p99, max) and its GC pauses (count, total, longest) while sending.
// The FHIR sandbox and the OpenCRVS simulator run in child processes (as real servers would run apart
// from the bridge); the bridge runs in this process. Ledgers live in the OS temp dir (BENCH_DIR), on a
// real disk: the fsyncs of synchronous=FULL count. Knobs: BENCH_BIRTHS, BENCH_PAGE_SIZE,
// BENCH_CONCURRENCY ('4,8'), BENCH_ACK_RATE, BENCH_ACK_SECONDS, BENCH_ACK=0 (or =full, =alone), BENCH_LOG_LEVEL,
// BENCH_PIN ('0/1': the bridge on CPU 0, the sandboxes and the sender on CPU 1; bench/helpers/pin.ts),
// BENCH_CHILD_NODE_OPTIONS (e.g. '--cpu-prof' for the sandboxes), BENCH_PROFILE_DIR (the bridge's CPU profile
// over each (a) run, written as e2e-c<N>.cpuprofile, and over each (d) run, as ack-full and ack-alone.cpuprofile).
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Bridge } from '../src/app.js';
import { configFromObject } from '../src/config/index.js';
import type { LedgerPayload } from '../src/ledger/index.js';
import { createLogger } from '../src/observability/logger.js';
import { createOpenCrvsClient } from '../src/opencrvs/index.js';
import { generateBirth } from '../src/sandbox/demo/generate.js';
import { OpenCrvsSandboxControl } from '../src/sandbox/opencrvs/index.js';
import { pinBridge, pinChild } from './helpers/pin.js';
import { type OpenCrvsEndpoints, startFhirProcess, startOpenCrvsProcess } from './helpers/sandboxes.js';

const BIRTHS = Number(process.env.BENCH_BIRTHS ?? 2000);
const PAGE_SIZE = Number(process.env.BENCH_PAGE_SIZE ?? 500);
// BENCH_CONCURRENCY='' skips (a)–(c); BENCH_ACK=0 skips (d); BENCH_ACK=full or =alone runs one part of it.
const CONCURRENCIES = (process.env.BENCH_CONCURRENCY ?? '4,8')
  .split(',')
  .map(Number)
  .filter((n) => n > 0);
const ACK_RATE = Number(process.env.BENCH_ACK_RATE ?? 200);
const ACK_SECONDS = Number(process.env.BENCH_ACK_SECONDS ?? 10);
const ACK_WARMUP_SECONDS = 1;

const RUN_TIMEOUT_MS = 120_000;
const CORES = availableParallelism();
const SECRET = 'bench-subscription-secret';
const SOURCE_ID = 'bench-emr';

// Warnings and errors only: the default `info` would log one line per delivery.
const logger = createLogger({ level: process.env.BENCH_LOG_LEVEL ?? 'warn' });

interface Env {
  dir: string;
  fhirBaseUrl: string;
  opencrvs: OpenCrvsEndpoints;
  control: OpenCrvsSandboxControl;
  /** CPU ms used so far by this process (the bridge), the FHIR sandbox and the OpenCRVS simulator. */
  cpu(): Promise<CpuSplit>;
}

interface CpuSplit {
  bridge: number;
  fhir: number;
  opencrvs: number;
}

function cpuSince(before: CpuSplit, after: CpuSplit): CpuSplit {
  return {
    bridge: after.bridge - before.bridge,
    fhir: after.fhir - before.fhir,
    opencrvs: after.opencrvs - before.opencrvs,
  };
}

/** CPU seconds per process over a phase: on 2 shared cores this says who the phase waited for. */
function cpuText(cpu: CpuSplit, seconds: number): string {
  const part = (ms: number) => `${f(ms / 1000, 1)} s (${f(ms / 10 / seconds, 0)}%)`;
  return `bridge ${part(cpu.bridge)}, FHIR sandbox ${part(cpu.fhir)}, OpenCRVS simulator ${part(cpu.opencrvs)}`;
}

function bridgeConfig(env: Env, name: string, concurrency: number, withSubscription: boolean) {
  return configFromObject({
    opencrvs: {
      tokenUrl: env.opencrvs.tokenUrl,
      eventsUrl: env.opencrvs.eventsUrl,
      clientId: env.opencrvs.clientId,
      clientSecret: env.opencrvs.clientSecret,
    },
    store: { path: join(env.dir, `${name}.db`) },
    http: { host: '127.0.0.1', port: 0 },
    delivery: { concurrency, baseDelayMs: 200, maxDelayMs: 5000, pollIntervalMs: 200 },
    sources: [
      {
        id: SOURCE_ID,
        kind: 'fhir',
        baseUrl: env.fhirBaseUrl,
        poll: { schedule: '*/10 * * * * *', pageSize: PAGE_SIZE },
        ...(withSubscription ? { subscription: { secret: SECRET } } : {}),
      },
    ],
    routing: {
      defaultOffice: 'LHUYvwY2Aq1',
      facilities: {
        'Location/emr-loc-ibombo-hospital': { office: 'xmJJAsGfSTn', facility: 't0qT1Vh8qi3' },
        'Location/emr-loc-isamba-hospital': { office: 'DC5stjQ45n3', facility: 'R2i8nqg83Y0' },
      },
    },
    logging: { level: 'warn' },
  });
}

/** Events in the simulator with an Accepted NOTIFY. */
async function acceptedEvents(control: OpenCrvsSandboxControl): Promise<number> {
  const events = await control.events();
  return events.filter((e) => e.actions.some((a) => a.type === 'NOTIFY' && a.status === 'Accepted')).length;
}

/** Counts and times the bridge's calls to the FHIR source (bench-side wrapper, no code change). */
function instrumentSource(bridge: Bridge) {
  const stats: Record<string, { calls: number; ms: number }> = {};
  const client = bridge.sources[0]?.client;
  if (!client) throw new Error('no source');
  for (const method of ['read', 'searchAll', 'searchPage', 'nextPage'] as const) {
    const original = client[method].bind(client) as (...args: unknown[]) => Promise<unknown>;
    const slot = { calls: 0, ms: 0 };
    stats[method] = slot;
    (client as unknown as Record<string, unknown>)[method] = async (...args: unknown[]) => {
      const t0 = performance.now();
      slot.calls++;
      try {
        return await original(...args);
      } finally {
        slot.ms += performance.now() - t0;
      }
    };
  }
  return stats;
}

interface EndToEnd {
  concurrency: number;
  seconds: number;
  /** Until every birth was recorded in the ledger. */
  mappedSeconds: number;
  /** Births delivered by then. */
  deliveredWhenMapped: number;
  pollSeconds: number;
  rate: number;
  accepted: number;
  other: Record<string, number>;
  fhirCalls: Record<string, { calls: number; ms: number }>;
  payloads: LedgerPayload[];
  cpu: CpuSplit;
}

/** (a) One poll of every birth in the sandbox, delivered by the running worker. */
async function endToEnd(env: Env, concurrency: number): Promise<EndToEnd> {
  await env.control.reset();
  const bridge = new Bridge(bridgeConfig(env, `e2e-c${concurrency}`, concurrency, false), {
    logger,
    schedule: false,
    http: false,
    worker: true,
    // A scratch ledger of the run's own: creating it is no news for the bench's output.
    scratchLedger: true,
  });
  const fhirCalls = instrumentSource(bridge);
  let delivered = 0;
  // When the last birth was recorded in the ledger (mapped), to tell mapping from delivery.
  let recorded = 0;
  let recordedAt = 0;
  let deliveredWhenRecorded = 0;
  const pipeline = bridge.sources[0]?.pipeline;
  if (!pipeline) throw new Error('no source');
  const commit = pipeline.commit.bind(pipeline);
  pipeline.commit = (results, cursor, options) => {
    const report = commit(results, cursor, options);
    recorded += report.mapped.inserted;
    if (recorded >= BIRTHS && !recordedAt) {
      recordedAt = performance.now();
      deliveredWhenRecorded = delivered;
    }
    return report;
  };
  const other: Record<string, number> = {};
  let finish: () => void = () => undefined;
  const allDelivered = new Promise<void>((resolve) => {
    finish = resolve;
  });
  let endedAt = 0;
  bridge.onDeliveryOutcome((outcome) => {
    if (outcome.type === 'delivered') {
      if (++delivered === BIRTHS) {
        endedAt = performance.now();
        finish();
      }
    } else other[outcome.type] = (other[outcome.type] ?? 0) + 1;
  });
  try {
    await bridge.start();
    const source = bridge.sources[0];
    if (!source) throw new Error('no source');
    const cpuBefore = await env.cpu();
    const profile = await startProfile();
    const t0 = performance.now();
    await source.poller.pollOnce();
    const pollSeconds = (performance.now() - t0) / 1000;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      allDelivered,
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`only ${delivered} of ${BIRTHS} delivered`)), RUN_TIMEOUT_MS);
      }),
    ]);
    clearTimeout(timer);
    await profile?.(`e2e-c${concurrency}`);
    const cpu = cpuSince(cpuBefore, await env.cpu());
    const seconds = (endedAt - t0) / 1000;
    const mappedSeconds = (recordedAt - t0) / 1000;
    const accepted = await acceptedEvents(env.control);
    const payloads = bridge.ledger
      .list({ states: ['delivered'], limit: BIRTHS })
      .map((row) => row.payload)
      .filter((payload): payload is LedgerPayload => payload !== null);
    return {
      concurrency,
      seconds,
      mappedSeconds,
      deliveredWhenMapped: deliveredWhenRecorded,
      pollSeconds,
      rate: BIRTHS / seconds,
      accepted,
      other,
      fhirCalls,
      payloads,
      cpu,
    };
  } finally {
    await bridge.stop();
  }
}

/** (b) create + notify straight from the client, `concurrency` at a time, for the same declarations. */
async function rawCapacity(env: Env, payloads: LedgerPayload[], concurrency: number) {
  await env.control.reset();
  const config = bridgeConfig(env, 'raw', concurrency, false);
  const client = createOpenCrvsClient(config.opencrvs, { logger });
  await client.checkToken(); // the token fetch is not part of the capacity
  let next = 0;
  const cpuBefore = await env.cpu();
  const worker = async () => {
    for (let i = next++; i < payloads.length; i = next++) {
      const payload = payloads[i] as LedgerPayload;
      const event = await client.createEvent({
        type: 'birth',
        transactionId: `raw-create-${i}`,
        createdAtLocation: payload.office,
      });
      await client.notify({
        eventId: event.id,
        transactionId: `raw-notify-${i}`,
        createdAtLocation: payload.office,
        declaration: payload.declaration,
      });
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = (performance.now() - t0) / 1000;
  const cpu = cpuSince(cpuBefore, await env.cpu());
  const accepted = await acceptedEvents(env.control);
  client.close?.();
  return { seconds, rate: payloads.length / seconds, accepted, cpu };
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}

/**
 * Notifications as Medplum sends them: the changed resource as the body (here the child Patient of
 * birth k, which exists in the sandbox). They carry no event numbers: backport Bundles sent over several
 * sockets arrive slightly out of order, which the bridge rightly reads as a gap and answers with a
 * catch-up poll of the whole sandbox, a different workload from the one measured here.
 */
function notificationBodies(count: number): string[] {
  return Array.from({ length: count }, (_, k) => JSON.stringify(generateBirth(k % BIRTHS, { prefix: 'bench' })[1]));
}

interface SenderResult {
  latenciesMs: number[];
  statuses: Record<string, number>;
  lagMaxMs: number;
  sent: number;
}

function sendOpenLoop(job: Record<string, unknown>): Promise<SenderResult> {
  const child = fork(fileURLToPath(new URL('./helpers/open-loop-sender.ts', import.meta.url)), [], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  pinChild(child.pid);
  return new Promise((resolve, reject) => {
    child.once('message', (message) => resolve(message as SenderResult));
    child.once('exit', (code) => {
      if (code !== 0) reject(new Error(`sender exited with ${code}`));
    });
    child.send(job);
  });
}

const totalCalls = (stats: Record<string, { calls: number }>) =>
  Object.values(stats).reduce((sum, s) => sum + s.calls, 0);
const ledgerRows = (bridge: Bridge) => bridge.ledger.counts().reduce((sum, c) => sum + c.count, 0);

/**
 * After the receiver-alone run: the stored notifications processed as a backlog (re-read, map, record;
 * no delivery), the inbox path's throughput without the ack traffic competing for the event loop.
 */
async function drainInbox(bridge: Bridge, fhirCalls: Record<string, { calls: number; ms: number }>) {
  const stored = bridge.ledger.inbox.backlog().depth;
  const callsBefore = totalCalls(fhirCalls);
  const started = performance.now();
  bridge.inbox.start();
  const deadline = started + RUN_TIMEOUT_MS;
  while (bridge.ledger.inbox.backlog().depth > 0 && performance.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const seconds = (performance.now() - started) / 1000;
  await bridge.inbox.stop();
  const calls = totalCalls(fhirCalls) - callsBefore;
  const recorded = ledgerRows(bridge);
  return { stored, left: bridge.ledger.inbox.backlog().depth, seconds, calls, recorded };
}

/** (d) Ack latency of POST /fhir-subscription/<source> at a fixed rate, with processing behind it. */
async function ackLatency(env: Env, receiverOnly: boolean) {
  await env.control.reset();
  const bridge = new Bridge(bridgeConfig(env, receiverOnly ? 'ack-alone' : 'ack', 4, true), {
    logger,
    schedule: false,
    http: true,
    worker: !receiverOnly,
    scratchLedger: true,
  });
  const fhirCalls = instrumentSource(bridge);
  try {
    await bridge.start();
    // Diagnostic variant: nothing behind the ack (no inbox processing, no delivery), to tell the
    // receiver's own cost (parse, one synchronous=FULL insert) from contention with the work behind it.
    if (receiverOnly) await bridge.inbox.stop();
    // How long the bridge's event loop was blocked meanwhile: an ack waits behind whatever runs.
    const loopDelay = monitorEventLoopDelay({ resolution: 5 });
    loopDelay.enable();
    // GC pauses meanwhile: a scavenge holds the loop as a long task does, and the acks wait for it too.
    const gcPauses: number[] = [];
    const gcObserver = new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) gcPauses.push(entry.duration);
    });
    gcObserver.observe({ entryTypes: ['gc'] });
    const total = Math.round(ACK_RATE * (ACK_SECONDS + ACK_WARMUP_SECONDS));
    const cpuBefore = await env.cpu();
    const profile = await startProfile();
    const sendStarted = performance.now();
    const result = await sendOpenLoop({
      url: `http://127.0.0.1:${bridge.httpPort}/fhir-subscription/${SOURCE_ID}`,
      headers: { 'content-type': 'application/fhir+json', authorization: `Bearer ${SECRET}` },
      bodies: notificationBodies(total),
      rate: ACK_RATE,
      seconds: ACK_SECONDS,
      warmupSeconds: ACK_WARMUP_SECONDS,
    });
    loopDelay.disable();
    gcObserver.disconnect();
    await profile?.(receiverOnly ? 'ack-alone' : 'ack-full');
    const cpu = cpuSince(cpuBefore, await env.cpu());
    const cpuSeconds = (performance.now() - sendStarted) / 1000;
    const sorted = [...result.latenciesMs].sort((a, b) => a - b);
    const recorded = ledgerRows(bridge);
    const inboxDepth = bridge.ledger.inbox.backlog().depth;
    const callsWhileSending = Object.entries(fhirCalls).map(([name, s]) => [name, s.calls] as const);
    const drain = receiverOnly ? await drainInbox(bridge, fhirCalls) : undefined;
    return {
      p50: percentile(sorted, 50),
      p99: percentile(sorted, 99),
      max: sorted[sorted.length - 1] ?? Number.NaN,
      measured: sorted.length,
      statuses: result.statuses,
      senderLagMaxMs: result.lagMaxMs,
      inboxDepth,
      loopDelayP99Ms: loopDelay.percentile(99) / 1e6,
      loopDelayMaxMs: loopDelay.max / 1e6,
      gc: {
        pauses: gcPauses.length,
        totalMs: gcPauses.reduce((sum, ms) => sum + ms, 0),
        maxMs: Math.max(0, ...gcPauses),
      },
      recorded,
      cpu,
      cpuSeconds,
      callsWhileSending,
      drain,
    };
  } finally {
    await bridge.stop();
  }
}

/**
 * An upper bound on (a) from the CPU each process spent per birth in (a), assuming perfect overlap:
 * the processes together cannot use more than the machine's cores, and the simulator alone is no
 * faster than in (b). When (c) is near this bound, the machine, not the bridge's design, limits it;
 * (c) ≥ 0.8 then needs lower CPU costs per birth, or the simulator on cores of its own.
 */
function ratioCeiling(cpu: CpuSplit, rawRate: number): { rate: number; bound: string } {
  const perBirth = (cpu.bridge + cpu.fhir + cpu.opencrvs) / 1000 / BIRTHS; // CPU seconds, all processes
  const shared = CORES / perBirth;
  return shared < rawRate
    ? { rate: shared, bound: `${f(perBirth * 1000, 2)} ms of CPU per birth over ${CORES} cores` }
    : { rate: rawRate, bound: 'the simulator as measured in (b)' };
}

const f = (n: number, digits = 1) => (Number.isFinite(n) ? n.toFixed(digits) : 'n/a');

async function main(): Promise<void> {
  const dir = mkdtempSync(join(process.env.BENCH_DIR ?? tmpdir(), 'e2e-bench-'));
  const pinned = pinBridge();
  const started = performance.now();
  const [opencrvs, fhir] = await Promise.all([startOpenCrvsProcess(), startFhirProcess(BIRTHS)]);
  const env: Env = {
    dir,
    fhirBaseUrl: fhir.info.baseUrl,
    opencrvs: opencrvs.info,
    control: new OpenCrvsSandboxControl(opencrvs.info.baseUrl),
    cpu: async () => {
      const own = process.cpuUsage();
      const [fhirMs, opencrvsMs] = await Promise.all([fhir.cpuMs(), opencrvs.cpuMs()]);
      return { bridge: (own.user + own.system) / 1000, fhir: fhirMs, opencrvs: opencrvsMs };
    },
  };
  console.log(
    `e2e benchmark: ${BIRTHS} births (${fhir.info.resources} resources seeded in ${f(fhir.info.seedMs / 1000)} s), ` +
      `page size ${PAGE_SIZE}, node ${process.version}, load average ${loadavg()[0]?.toFixed(1)} on ${CORES} cores ` +
      (pinned ? `(BENCH_PIN: ${pinned})` : 'shared'),
  );
  try {
    const rows: string[][] = [];
    for (const concurrency of CONCURRENCIES) {
      const e2e = await endToEnd(env, concurrency);
      const raw = await rawCapacity(env, e2e.payloads, concurrency);
      rows.push([
        String(concurrency),
        f(e2e.rate),
        f(raw.rate),
        f(e2e.rate / raw.rate, 2),
        f(e2e.seconds, 2),
        f(e2e.mappedSeconds, 2),
        f(e2e.pollSeconds, 2),
        `${e2e.accepted}/${BIRTHS}`,
        `${raw.accepted}/${e2e.payloads.length}`,
      ]);
      const calls = Object.entries(e2e.fhirCalls)
        .map(([name, s]) => `${name} ${s.calls} (${f(s.ms / 1000, 2)} s)`)
        .join(', ');
      const other = Object.keys(e2e.other).length > 0 ? `; other outcomes ${JSON.stringify(e2e.other)}` : '';
      console.log(`  c=${concurrency}: FHIR calls during the pass: ${calls}${other}`);
      console.log(`    delivered when the last birth was recorded: ${e2e.deliveredWhenMapped}`);
      console.log(`    CPU during (a), ${f(e2e.seconds, 2)} s: ${cpuText(e2e.cpu, e2e.seconds)}`);
      // The capacity figure that carries over to a deployment, where OpenCRVS has its own machines.
      const perBirth = e2e.cpu.bridge / BIRTHS;
      console.log(
        `    bridge CPU per birth (poll, map, record, deliver): ${f(perBirth, 2)} ms, ` +
          `so one core of this machine carries about ${f(1000 / perBirth, 0)} births/s`,
      );
      console.log(`    CPU during (b), ${f(raw.seconds, 2)} s: ${cpuText(raw.cpu, raw.seconds)}`);
      const ceiling = ratioCeiling(e2e.cpu, raw.rate);
      console.log(
        `    the most (a) could be with these CPU costs: ${f(ceiling.rate, 0)} births/s ` +
          `(${ceiling.bound}), so (c) ≤ ${f(ceiling.rate / raw.rate, 2)} on this machine`,
      );
    }
    console.log('\n(a) end to end, (b) raw simulator capacity, (c) = a / b (target ≥ 0.8)');
    const header = [
      'conc.',
      '(a) births/s',
      '(b) raw/s',
      '(c) a/b',
      'a: total s',
      'a: mapped s',
      'a: poll s',
      'a: accepted',
      'b: accepted',
    ];
    const table = [header, ...rows];
    const widths = header.map((_, i) => Math.max(...table.map((r) => (r[i] ?? '').length)));
    for (const r of table) console.log(`  ${r.map((cell, i) => cell.padStart(widths[i] ?? 0)).join('  ')}`);

    if (process.env.BENCH_ACK === '0') return;
    console.log(
      `\n(d) receiver ack latency at ${ACK_RATE}/s for ${ACK_SECONDS} s (open loop, from due time, after ${ACK_WARMUP_SECONDS} s warm-up; target p99 ≤ 20 ms)`,
    );
    const modes = { alone: [true], full: [false] }[process.env.BENCH_ACK ?? ''] ?? [false, true];
    for (const receiverOnly of modes) {
      const ack = await ackLatency(env, receiverOnly);
      printAck(receiverOnly ? 'receiver alone' : 'full bridge', ack);
    }
    console.log(
      `\ntotal ${f((performance.now() - started) / 1000)} s; bridge process peak RSS ` +
        `${f(process.resourceUsage().maxRSS / 1024, 0)} MB; load average now ${loadavg()[0]?.toFixed(1)}`,
    );
  } finally {
    await Promise.all([opencrvs.close(), fhir.close()]);
    rmSync(dir, { recursive: true, force: true });
  }
}

function printAck(label: string, ack: Awaited<ReturnType<typeof ackLatency>>): void {
  console.log(
    `  ${label.padEnd(15)} p50 ${f(ack.p50, 2)} ms  p99 ${f(ack.p99, 2)} ms  max ${f(ack.max, 1)} ms  (${ack.measured} measured;\n${' '.repeat(18)}` +
      `statuses ${JSON.stringify(ack.statuses)}; sender lag max ${f(ack.senderLagMaxMs, 1)} ms; ` +
      `ledger rows recorded meanwhile ${ack.recorded}, inbox depth at end ${ack.inboxDepth}; ` +
      `bridge event-loop delay p99 ${f(ack.loopDelayP99Ms)} ms, max ${f(ack.loopDelayMaxMs)} ms; ` +
      `GC ${ack.gc.pauses} pauses, ${f(ack.gc.totalMs, 0)} ms in all, longest ${f(ack.gc.maxMs)} ms)`,
  );
  const calls = ack.callsWhileSending
    .filter(([, n]) => n > 0)
    .map(([name, n]) => `${name} ${n}`)
    .join(', ');
  console.log(
    `${' '.repeat(18)}CPU while sending, ${f(ack.cpuSeconds, 1)} s: ${cpuText(ack.cpu, ack.cpuSeconds)}; ` +
      `FHIR calls ${calls || 'none'}`,
  );
  const drain = ack.drain;
  if (drain) {
    console.log(
      `${' '.repeat(18)}then the ${drain.stored} stored notifications processed as a backlog (no delivery): ` +
        `${f(drain.seconds, 2)} s, ${f((drain.stored - drain.left) / drain.seconds, 0)}/s, ${drain.recorded} ledger rows, ` +
        `${drain.calls} FHIR calls${drain.left > 0 ? `, ${drain.left} left at the timeout` : ''}`,
    );
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});

/** With BENCH_PROFILE_DIR: the bridge's CPU profile over (a) alone, as `<dir>/<name>.cpuprofile`. */
async function startProfile(): Promise<((name: string) => Promise<void>) | undefined> {
  const dir = process.env.BENCH_PROFILE_DIR;
  if (!dir) return undefined;
  const { Session } = await import('node:inspector/promises');
  const { writeFileSync } = await import('node:fs');
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
  return async (name) => {
    const { profile } = await session.post('Profiler.stop');
    writeFileSync(join(dir, `${name}.cpuprofile`), JSON.stringify(profile));
    session.disconnect();
  };
}
