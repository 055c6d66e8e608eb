// A small HTTP proxy in front of a simulator (DHIS2, FHIR) that lets a test answer chosen requests itself
// (an error page, a hang) and forwards the rest, noting every request and the status it got.
import { createServer, type IncomingMessage, request, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type Rule = (req: IncomingMessage, body: Buffer) => ((res: ServerResponse) => void) | undefined;

export interface FaultProxy {
  url: string;
  target: string;
  rules: Rule[];
  seen: Array<{ method: string; url: string; status?: number }>;
  close(): Promise<void>;
}

export async function startFaultProxy(): Promise<FaultProxy> {
  const proxy: FaultProxy = {
    url: '',
    target: '',
    rules: [],
    seen: [],
    close: async () => undefined,
  };
  const hanging = new Set<ServerResponse>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const entry: { method: string; url: string; status?: number } = { method: req.method ?? '', url: req.url ?? '' };
      proxy.seen.push(entry);
      for (const rule of proxy.rules) {
        const answer = rule(req, body);
        if (answer) {
          hanging.add(res);
          res.on('close', () => hanging.delete(res));
          answer(res);
          entry.status = res.statusCode;
          return;
        }
      }
      const target = new URL(req.url ?? '/', proxy.target);
      const headers = { ...req.headers, host: target.host };
      const out = request(target, { method: req.method, headers }, (upstream) => {
        entry.status = upstream.statusCode;
        res.writeHead(upstream.statusCode ?? 502, upstream.headers);
        upstream.pipe(res);
      });
      out.on('error', () => {
        res.writeHead(502).end();
      });
      out.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  proxy.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  proxy.close = () =>
    new Promise<void>((resolve) => {
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return proxy;
}

/** DHIS2's own error envelope (WebMessage). */
export function dhis2Error(status: number, message: string): (res: ServerResponse) => void {
  return (res) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ httpStatus: 'Error', httpStatusCode: status, status: 'ERROR', message }));
  };
}
