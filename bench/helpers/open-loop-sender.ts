// Open-loop, fixed-rate HTTP sender for the receiver's ack latency (run in its own process through
// fork(), so its timers and the bridge under test do not share an event loop).
//
// Request k is due at t0 + k / rate, whether or not earlier answers came back (open loop: a slow
// server does not slow the sender down, as a FHIR server's notification queue would not). Latency is
// measured from the request's due time to the end of its answer, so any lag of the sender itself is
// charged to the measurement rather than hidden (no coordinated omission). autocannon was not used:
// its rate limit is a per-second quota per connection (bursts at each second tick) and each
// connection waits for its answer before sending again (closed loop).
//
// Input (one IPC message): { url, headers, bodies: string[], rate, seconds, warmupSeconds }.
// Output: { latenciesMs: number[] (after warm-up), statuses: Record<string, number>, lagMaxMs, sent }.
import { Agent, request } from 'node:http';

interface Job {
  url: string;
  headers: Record<string, string>;
  bodies: string[];
  rate: number;
  seconds: number;
  warmupSeconds: number;
}

const REQUEST_TIMEOUT_MS = 10_000;

function run(job: Job): Promise<void> {
  // Enough sockets that a stall on the server never makes a request wait for a free socket.
  const agent = new Agent({ keepAlive: true, maxSockets: 256 });
  const target = new URL(job.url);
  const total = Math.round(job.rate * (job.seconds + job.warmupSeconds));
  const warmup = Math.round(job.rate * job.warmupSeconds);
  const intervalMs = 1000 / job.rate;
  const latencies: number[] = [];
  const statuses: Record<string, number> = {};
  let finished = 0;
  let sent = 0;
  let lagMaxMs = 0;
  const t0 = performance.now() + 50;

  return new Promise((resolve) => {
    const done = () => {
      if (finished < total) return;
      agent.destroy();
      process.send?.({ latenciesMs: latencies, statuses, lagMaxMs, sent }, () => resolve());
    };
    const fire = (k: number) => {
      const dueAt = t0 + k * intervalMs;
      lagMaxMs = Math.max(lagMaxMs, performance.now() - dueAt);
      const body = job.bodies[k % job.bodies.length] ?? '';
      const req = request(
        {
          agent,
          host: target.hostname,
          port: target.port,
          path: target.pathname,
          method: 'POST',
          headers: { ...job.headers, 'content-length': Buffer.byteLength(body) },
          timeout: REQUEST_TIMEOUT_MS,
        },
        (res) => {
          res.resume();
          res.on('end', () => {
            if (k >= warmup) latencies.push(performance.now() - dueAt);
            const key = String(res.statusCode);
            statuses[key] = (statuses[key] ?? 0) + 1;
            finished++;
            done();
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', () => {
        statuses.error = (statuses.error ?? 0) + 1;
        finished++;
        done();
      });
      req.end(body);
      sent++;
    };
    let next = 0;
    const tick = () => {
      const now = performance.now();
      // Fire everything due by now (catching up after a late timer), then sleep until the next one.
      while (next < total && t0 + next * intervalMs <= now) fire(next++);
      if (next < total) setTimeout(tick, Math.max(0, t0 + next * intervalMs - performance.now()));
    };
    setTimeout(tick, Math.max(0, t0 - performance.now()));
  });
}

process.once('message', (job: Job) => {
  run(job).then(
    () => process.exit(0),
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
});
