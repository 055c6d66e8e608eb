// The HTTP server's bounds on connections (see SERVER_LIMITS): one remote address cannot hold them
// all, the loopback health check is answered while every other slot is held, silent connections are
// closed early, and the total stays bounded. The tests bind their client sockets to 127.0.0.2,
// 127.0.0.3, … (Linux routes all of 127/8 to loopback), which the server counts as distinct addresses;
// only 127.0.0.1 and ::1 get the loopback reserve.
import assert from 'node:assert/strict';
import { get, type Server } from 'node:http';
import { connect, type Socket } from 'node:net';
import { after, afterEach, describe, it } from 'node:test';
import express from 'express';
import { AddressSlots, addressKey } from '../../src/http/address-slots.js';
import { closeServer, createHttpApp, listen, SERVER_LIMITS } from '../../src/http/server.js';
import { createLogger } from '../../src/observability/logger.js';

const sockets: Socket[] = [];
afterEach(() => {
  for (const socket of sockets.splice(0)) socket.destroy();
});

/** An idle connection from `localAddress`, with whether the server has closed it. */
function idle(port: number, localAddress: string): Promise<{ socket: Socket; closed: () => boolean }> {
  return new Promise((resolve, reject) => {
    let closed = false;
    const socket = connect({ port, host: '127.0.0.1', localAddress }, () => resolve({ socket, closed: () => closed }));
    socket.on('close', () => {
      closed = true;
    });
    socket.once('error', reject);
    sockets.push(socket);
  });
}

async function until(what: string, condition: () => boolean, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * The server's side of the connections it accepted, each until it closes. Listening after the server's own
 * listeners, so a connection leaves the set after the server gave its slot back.
 */
const open = new Set<Socket>();
function tracked<T extends { server: Server }>(served: T): T {
  served.server.on('connection', (socket: Socket) => {
    if (socket.destroyed) return; // refused: the server took no slot for it
    open.add(socket);
    socket.once('close', () => open.delete(socket));
  });
  return served;
}

/**
 * GET /healthz on a new connection from `localAddress`: its status, or the error's code. Resolves once the
 * server has closed its side and given the slot back (waited for: a fixed 100 ms was not always enough on a
 * loaded machine, where the server runs in this same event loop).
 */
async function healthz(port: number, localAddress = '127.0.0.1'): Promise<number | string> {
  let localPort: number | undefined;
  const result = await new Promise<number | string>((resolve) => {
    const req = get(
      { host: '127.0.0.1', port, path: '/healthz', localAddress, agent: false, timeout: 3_000 },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('socket', (socket) => socket.once('connect', () => (localPort = socket.localPort)));
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })));
    req.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
  await until('the server to close the health check connection', () =>
    [...open].every((socket) => localPort === undefined || socket.remotePort !== localPort),
  );
  return result;
}

const warnings: string[] = [];
const logger = createLogger({ level: 'warn', destination: { write: (line: string) => void warnings.push(line) } });

async function serve(limits: Partial<typeof SERVER_LIMITS>) {
  const saved = { ...SERVER_LIMITS };
  Object.assign(SERVER_LIMITS, limits);
  const health = express.Router();
  health.get('/healthz', (_req, res) => res.json({ status: 'ok' }));
  try {
    return await listen(createHttpApp([{ path: '/', router: health }], logger), 0, '127.0.0.1');
  } finally {
    Object.assign(SERVER_LIMITS, saved);
  }
}

describe('address slots', () => {
  it('caps each address and the total, and gives 127.0.0.1 and ::1 a reserve beyond the total', () => {
    const slots = new AddressSlots({ total: 4, perAddress: 2, loopbackReserve: 2 });
    assert.equal(slots.take('10.0.0.1'), '10.0.0.1');
    assert.equal(slots.take('::ffff:10.0.0.1'), '10.0.0.1', 'an IPv4-mapped address is the IPv4 address');
    assert.equal(slots.take('10.0.0.1'), undefined, 'a third from one address');
    assert.ok(slots.take('10.0.0.2'));
    assert.ok(slots.take('2001:db8:0:1::5'));
    assert.equal(slots.take('10.0.0.3'), undefined, 'the total is reached');
    assert.equal(slots.take('127.0.0.1'), '127.0.0.1', 'loopback uses the reserve');
    assert.equal(slots.take('::1'), '::1');
    assert.equal(slots.take('::ffff:127.0.0.1'), undefined, 'the reserve is bounded too');
    assert.equal(slots.inUse(), 6);
    // Loopback connections count in the total: one given back leaves it full for the others.
    slots.release('10.0.0.1');
    assert.equal(slots.take('10.0.0.3'), undefined, 'loopback still holds part of the total');
    slots.release('::1');
    slots.release('127.0.0.1');
    assert.ok(slots.take('10.0.0.3'), 'a slot given back is taken again');
    assert.equal(slots.inUse(), 4);
    assert.equal(slots.inUse('10.0.0.1'), 1);
    assert.equal(slots.take(undefined), undefined, 'a socket without an address is not admitted');
  });

  it('counts loopback per address when no reserve is set', () => {
    const slots = new AddressSlots({ total: 4, perAddress: 1 });
    assert.ok(slots.take('127.0.0.1'));
    assert.equal(slots.take('127.0.0.1'), undefined);
  });

  it('counts IPv6 by /64, the way hosts are given addresses', () => {
    assert.equal(addressKey('2001:db8:1:2:3:4:5:6'), '2001:db8:1:2::/64');
    assert.equal(addressKey('2001:DB8:1:2::ffff'), '2001:db8:1:2::/64');
    assert.equal(addressKey('2001:db8::1'), '2001:db8:0:0::/64');
    assert.equal(addressKey('fe80::1%eth0'), 'fe80:0:0:0::/64');
    assert.equal(addressKey('64:ff9b::192.0.2.1'), '64:ff9b:0:0::/64');
    assert.equal(addressKey('::ffff:192.0.2.1'), '192.0.2.1');
    assert.equal(addressKey('192.0.2.1'), '192.0.2.1');
    const slots = new AddressSlots({ total: 10, perAddress: 2 });
    assert.ok(slots.take('2001:db8:1:2::a'));
    assert.ok(slots.take('2001:db8:1:2::b'));
    assert.equal(slots.take('2001:db8:1:2::c'), undefined, 'another address of the same /64');
    assert.ok(slots.take('2001:db8:1:3::a'), 'another /64');
  });
});

describe('HTTP server limits', () => {
  const servers: Array<Awaited<ReturnType<typeof serve>>['server']> = [];
  after(async () => {
    for (const server of servers) await closeServer(server, 100);
  });

  it('refuses connections past the per-address cap and keeps serving others and the loopback health check', async () => {
    // The idle connections are held for the whole test: not closed as silent (5 s) on a slow machine.
    const { server, port } = tracked(
      await serve({ maxConnections: 6, perAddressConnections: 3, loopbackReserve: 2, firstByteTimeoutMs: 60_000 }),
    );
    servers.push(server);
    // One address opens far more than its share, and sends nothing.
    const flood = await Promise.all(Array.from({ length: 10 }, () => idle(port, '127.0.0.2')));
    await until('7 connections closed by the server', () => flood.filter((c) => c.closed()).length === 7);
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(flood.filter((c) => !c.closed()).length, 3, 'the address keeps its 3 connections');
    const refusals = warnings.filter((line) => line.includes('connections refused'));
    assert.equal(refusals.length, 1, 'logged once, not once per connection');
    assert.equal(await healthz(port, '127.0.0.3'), 200, 'another address is served');
    assert.equal(await healthz(port), 200, 'the loopback health check is served');

    // Every slot held (3 + 3 from two addresses): others are refused, loopback still gets through.
    const second = await Promise.all(Array.from({ length: 3 }, () => idle(port, '127.0.0.3')));
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(second.filter((c) => !c.closed()).length, 3);
    assert.notEqual(await healthz(port, '127.0.0.4'), 200, 'a third address finds the server full');
    assert.equal(await healthz(port), 200, 'the loopback health check uses the reserve');
    // The reserve is bounded as well: two idle loopback connections fill it.
    const local = await Promise.all([idle(port, '127.0.0.1'), idle(port, '127.0.0.1')]);
    assert.notEqual(await healthz(port), 200, 'past the reserve even loopback is refused');
    const held = open.size;
    for (const c of [...local, ...second]) c.socket.destroy();
    await until('the server to close its side of them', () => open.size <= held - 5);
    assert.equal(await healthz(port, '127.0.0.4'), 200, 'slots given back are taken again');
  });

  it('closes a connection that sends nothing within firstByteTimeoutMs, not one that has begun a request', async () => {
    const { server, port } = await serve({ firstByteTimeoutMs: 300 });
    servers.push(server);
    assert.equal(server.requestTimeout, SERVER_LIMITS.requestTimeoutMs);
    const silent = await idle(port, '127.0.0.2');
    const started = await idle(port, '127.0.0.2');
    started.socket.write('GET /healthz HTTP/1.1\r\n');
    await until('the silent connection to be closed', silent.closed, 3_000);
    assert.equal(started.closed(), false, 'a request under way is left to headersTimeout');
    const answer = new Promise<string>((resolve) => started.socket.once('data', (chunk) => resolve(chunk.toString())));
    started.socket.write('Host: x\r\n\r\n');
    assert.match(await answer, /^HTTP\/1\.1 200/);
  });
});
