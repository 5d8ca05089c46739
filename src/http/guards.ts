// The token listener's request guards (SPEC.md "Token API", "Chaining (broker)"): pure functions of what a request
// carries, so that every listener and the API proxy apply the same rules.
import type { IncomingHttpHeaders } from 'node:http';
import { BlockList, isIP } from 'node:net';
import { isLoopbackHost } from '../config/config.ts';

export type HeaderRefusal = 'forwarded' | 'origin';

/**
 * Headers no legitimate client of the token listener sends:
 * 1. `Forwarded`, any `X-Forwarded-*`, `X-Real-IP`, `Via`: the request came through a proxy, so its sender is not
 *    who connected (server-side request forgery through a proxy in the pod, or a broker exposed by one);
 * 2. `Origin`: a browser sent it, e.g. from a DNS-rebinding page; the SDKs and the pod's apps never do.
 */
export function headerRefusal(headers: IncomingHttpHeaders): HeaderRefusal | undefined {
  // node:http gives the names in lower case.
  for (const name in headers) {
    if (name === 'origin') return 'origin';
    if (name === 'forwarded' || name === 'via' || name === 'x-real-ip' || name.startsWith('x-forwarded-')) return 'forwarded';
  }
  return undefined;
}

const PORT_SUFFIX = /^:\d{1,5}$/;

/**
 * The name in a Host header: `name`, `name:port`, `[v6]` or `[v6]:port`, in lower case and without brackets;
 * undefined when the value has any other shape (an unbracketed IPv6 literal included, as RFC 3986 has it).
 */
export function hostName(host: string | undefined): string | undefined {
  if (host === undefined || host === '') return undefined;
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    if (end < 0) return undefined;
    const rest = host.slice(end + 1);
    if (rest !== '' && !PORT_SUFFIX.test(rest)) return undefined;
    return host.slice(1, end).toLowerCase();
  }
  const colon = host.indexOf(':');
  if (colon >= 0 && !PORT_SUFFIX.test(host.slice(colon))) return undefined;
  return (colon < 0 ? host : host.slice(0, colon)).toLowerCase();
}

/** An `--allowed-hosts` entry in the form hostName gives: lower case, an IPv6 literal without brackets. */
export function normaliseAllowedHost(name: string): string {
  return name.trim().toLowerCase().replace(/^\[(.*)\]$/, '$1');
}

/**
 * The DNS-rebinding defence: a Host naming a loopback address or localhost (what a client in the pod uses), or
 * exactly one of `allowed` (a broker's Service names), with or without a port. A rebinding page sends its own name.
 */
export function hostAllowed(host: string | undefined, allowed: ReadonlySet<string>): boolean {
  const name = hostName(host);
  return name !== undefined && (isLoopbackHost(name) || allowed.has(name));
}

/** hostAllowed for one listener, remembering the last Host it accepted: clients send the same one every time. */
export function hostGuard(allowedHosts: readonly string[]): (host: string | undefined) => boolean {
  const allowed = new Set(allowedHosts.map(normaliseAllowedHost));
  let lastAccepted = '';
  return (host) => {
    if (host === lastAccepted && host !== '') return true;
    if (!hostAllowed(host, allowed)) return false;
    lastAccepted = host ?? '';
    return true;
  };
}

// Made on first use: a BlockList is a native object, which the startup snapshot cannot hold.
let loopback: BlockList | undefined;

function loopbackList(): BlockList {
  if (loopback !== undefined) return loopback;
  loopback = new BlockList();
  loopback.addSubnet('127.0.0.0', 8, 'ipv4');
  loopback.addAddress('::1', 'ipv6');
  return loopback;
}

/**
 * True when the peer's address (`req.socket.remoteAddress`) is on loopback: 127.0.0.0/8, ::1, or an IPv4-mapped
 * 127.x address as a dual-stack listener reports it. What answers without a credential (`GET /v1/token`,
 * `--proxy inject`) answers only such peers, whatever the listener, so a broker is never an open JWT dispenser.
 */
export function isLoopbackPeer(address: string | undefined): boolean {
  if (address === undefined) return false;
  // The usual cases without BlockList's native call (about 0.4 µs), on the token API's hot path.
  if (address === '127.0.0.1' || address === '::1' || address === '::ffff:127.0.0.1') return true;
  const family = isIP(address);
  return family !== 0 && loopbackList().check(address, family === 6 ? 'ipv6' : 'ipv4');
}

/** The credential of `Authorization: Bearer <token>` (scheme case-insensitive), or undefined. */
export function bearerOf(authorization: string | undefined): string | undefined {
  if (authorization === undefined) return undefined;
  const space = authorization.indexOf(' ');
  if (space < 0 || authorization.slice(0, space).toLowerCase() !== 'bearer') return undefined;
  const credential = authorization.slice(space + 1).trim();
  return credential === '' ? undefined : credential;
}
