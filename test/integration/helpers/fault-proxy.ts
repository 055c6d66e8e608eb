// An HTTP proxy in front of a simulator (DHIS2, a FHIR server) that lets a test answer chosen requests
// itself (an error, a page that never comes) and forwards every other one as it is. node:http only.
import { createServer, type IncomingMessage, request, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** An answer of the test's own for this request, or undefined to forward it. */
export type FaultRule = (req: IncomingMessage, body: Buffer) => ((res: ServerResponse) => void) | undefined;

export interface FaultProxy {
  /** The proxy's address: give it to the bridge as the source's baseUrl. */
  url: string;
  /** Where requests no rule answers go (the simulator's base URL). */
  target: string;
  /** Asked in order; the first that answers wins. */
  rules: FaultRule[];
  /** Every request seen, with the status answered (none for one left hanging). */
  seen: Array<{ method: string; url: string; status?: number }>;
  close(): Promise<void>;
}

export async function startFaultProxy(): Promise<FaultProxy> {
  const proxy: FaultProxy = { url: '', target: '', rules: [], seen: [], close: async () => undefined };
  const answering = new Set<ServerResponse>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const entry: { method: string; url: string; status?: number } = { method: req.method ?? '', url: req.url ?? '' };
      proxy.seen.push(entry);
      for (const rule of proxy.rules) {
        const answer = rule(req, body);
        if (!answer) continue;
        answering.add(res);
        res.on('close', () => answering.delete(res));
        answer(res);
        if (res.headersSent) entry.status = res.statusCode;
        return;
      }
      const target = new URL(req.url ?? '/', proxy.target);
      const out = request(
        target,
        { method: req.method, headers: { ...req.headers, host: target.host } },
        (upstream) => {
          entry.status = upstream.statusCode;
          res.writeHead(upstream.statusCode ?? 502, upstream.headers);
          upstream.pipe(res);
        },
      );
      out.on('error', () => res.writeHead(502).end());
      out.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  proxy.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  proxy.close = () =>
    new Promise<void>((resolve) => {
      for (const res of answering) res.destroy();
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return proxy;
}

/** No answer at all: the caller's timeout (or the bridge cutting the call off) ends the request. */
export const noAnswer = (): ((res: ServerResponse) => void) => () => undefined;

/** A JSON answer with this status. */
export function answerJson(status: number, body: unknown): (res: ServerResponse) => void {
  return (res) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
}

/** An answer with this status and headers, and a short text body (a proxy's or a server's own page). */
export function answerStatus(status: number, headers: Record<string, string> = {}): (res: ServerResponse) => void {
  return (res) => {
    res.writeHead(status, { 'content-type': 'text/plain', ...headers });
    res.end(`${status}`);
  };
}

/** DHIS2's own error envelope (WebMessage) with this status. */
export function dhis2Error(status: number, message: string): (res: ServerResponse) => void {
  return answerJson(status, { httpStatus: 'Error', httpStatusCode: status, status: 'ERROR', message });
}

/** A DHIS2 tracker import refused with these error codes (HTTP 409 and its import report, as DHIS2 answers). */
export function dhis2ImportRefused(errorCode: string, message: string): (res: ServerResponse) => void {
  return answerJson(409, {
    status: 'ERROR',
    validationReport: { errorReports: [{ errorCode, message }] },
    stats: { created: 0, updated: 0, deleted: 0, ignored: 1, total: 1 },
  });
}

/** A gateway's 503 page (the server behind it restarting). */
export function unavailable(): (res: ServerResponse) => void {
  return (res) => {
    res.writeHead(503, { 'content-type': 'text/html' });
    res.end('<html><body>503 Service Unavailable</body></html>');
  };
}

/** A proxy's or firewall's 403 page (a WAF rule, an IP allow-list): not DHIS2's WebMessage. */
export function forbiddenPage(): (res: ServerResponse) => void {
  return (res) => {
    res.writeHead(403, { 'content-type': 'text/html' });
    res.end('<html><head><title>403 Forbidden</title></head><body><h1>403 Forbidden</h1><hr>nginx</body></html>');
  };
}
