import express, { type Router } from 'express';
import { type OpsTarget, readiness } from './readiness.js';

/**
 * `GET /healthz`: the process answers (liveness), 503 only for what a restart mends (livenessProblem):
 * a restart fixes nothing else, and an orchestrator restarts on it.
 * `GET /readyz`: store writable, OpenCRVS token obtainable, queue not held, sources reachable; 503
 * with the failing checks named. A note check (ReadinessCheck.note) only adds its detail. `GET /metrics`: Prometheus text.
 */
export function opsRoutes(target: OpsTarget): Router {
  const router = express.Router();
  router.get('/healthz', (_req, res) => {
    const uptimeSeconds = Math.round((Date.now() - target.startedAt) / 1000);
    const problem = target.livenessProblem();
    if (problem) res.status(503).json({ status: 'restart needed', problem, uptimeSeconds });
    else res.json({ status: 'ok', uptimeSeconds });
  });
  router.get('/readyz', async (_req, res) => {
    const { failed, checks: byName } = await readiness(target.readinessChecks());
    res
      .status(failed.length === 0 ? 200 : 503)
      .json({ status: failed.length === 0 ? 'ready' : 'not ready', failed, checks: byName });
  });
  router.get('/metrics', async (_req, res) => {
    const { contentType, body } = await target.renderMetrics();
    res.type(contentType).send(body);
  });
  return router;
}
