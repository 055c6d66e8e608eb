import { isIPv6 } from 'node:net';

/**
 * The URL a process on this machine reaches a listener bound to `host`:`port` at: a wildcard bind
 * answers on loopback, any other address as bound (an IPv6 one in brackets).
 */
export function localUrl(host: string, port: number, path: string): string {
  const reach = host === '' || host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host;
  return `http://${isIPv6(reach) ? `[${reach}]` : reach}:${port}${path}`;
}
