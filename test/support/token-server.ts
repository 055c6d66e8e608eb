// A source's OAuth2 token endpoint on loopback (POST /token, a client-credentials form), for the tests of how
// the bridge asks it: each test says what it answers to the client secret posted, and reads which secrets
// were posted, in order (how many times it was asked, and with what).
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express, { type Response } from 'express';

export interface TokenServer {
  /** http://127.0.0.1:<port>/token */
  url: string;
  /** The client secret of each token request, in order. */
  posted: string[];
  close(): Promise<void>;
}

export async function startTokenServer(answer: (secret: string, res: Response) => void): Promise<TokenServer> {
  const posted: string[] = [];
  const app = express();
  app.post('/token', express.urlencoded({ extended: false }), (req, res) => {
    const secret = String((req.body as Record<string, unknown>).client_secret ?? '');
    posted.push(secret);
    answer(secret, res);
  });
  const server: Server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/token`,
    posted,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
