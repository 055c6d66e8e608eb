// A loopback port nothing listens on: a connection to it is refused (ECONNREFUSED). Not a fixed number:
// the ports tests reach for (1, 9) are ones Node's fetch refuses as unsafe before connecting.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}
