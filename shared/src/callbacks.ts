import { createHmac } from 'node:crypto';
import { BlockList, isIP } from 'node:net';
import { AppError } from './errors';

/**
 * Where a job's callback may go. CALLBACK_HOSTS lists host names (`hooks.example.com`), name
 * suffixes (`*.example.com`), and addresses or ranges (`203.0.113.7`, `10.1.0.0/16`, `::1`). A URL
 * must name a listed host; once its name is resolved, every address it is sent to must be public or
 * itself listed, so decisum never becomes a way into a private network.
 */
export interface CallbackHosts {
  names: ReadonlySet<string>;
  /** `*.example.com` as `.example.com`. */
  suffixes: readonly string[];
  /** Listed addresses and ranges: a URL may name them, and a name may resolve to them even when they are private. */
  addresses: BlockList;
  /** The entries as given. */
  entries: readonly string[];
}

const LABEL = '[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?';
const HOST_NAME = new RegExp(`^${LABEL}(?:\\.${LABEL})*$`);

const family = (address: string): 'ipv4' | 'ipv6' => (isIP(address) === 6 ? 'ipv6' : 'ipv4');
const unbracket = (host: string): string => host.replace(/^\[(.*)\]$/, '$1');

/** CALLBACK_HOSTS, comma-separated; throws naming the first entry that is none of the kinds above. */
export function parseCallbackHosts(text: string): CallbackHosts {
  const entries = text
    .split(',')
    .map((e) => e.trim().toLowerCase())
    .filter(Boolean);
  const names = new Set<string>();
  const suffixes: string[] = [];
  const addresses = new BlockList();
  for (const entry of entries) {
    const [address, prefix, ...rest] = unbracket(entry).split('/');
    if (isIP(address) && prefix === undefined) {
      addresses.addAddress(address, family(address));
    } else if (isIP(address) && rest.length === 0 && /^\d{1,3}$/.test(prefix) && Number(prefix) <= (isIP(address) === 6 ? 128 : 32)) {
      addresses.addSubnet(address, Number(prefix), family(address));
    } else if (entry.startsWith('*.') && HOST_NAME.test(entry.slice(2))) {
      suffixes.push(entry.slice(1));
    } else if (HOST_NAME.test(entry)) {
      names.add(entry);
    } else {
      throw new Error(`"${entry}" is not a host name, *.domain, address or address/prefix`);
    }
  }
  return { names, suffixes, addresses, entries };
}

export const NO_CALLBACK_HOSTS: CallbackHosts = parseCallbackHosts('');

/** Addresses that are not on the public internet: loopback, private, link-local, shared, documentation, multicast, reserved. */
const NON_PUBLIC = (() => {
  const list = new BlockList();
  const v4 = ['0.0.0.0/8', '10.0.0.0/8', '100.64.0.0/10', '127.0.0.0/8', '169.254.0.0/16', '172.16.0.0/12', '192.0.0.0/24', '192.0.2.0/24', '192.88.99.0/24', '192.168.0.0/16', '198.18.0.0/15', '198.51.100.0/24', '203.0.113.0/24', '224.0.0.0/4', '240.0.0.0/4'];
  // IPv4-mapped addresses (::ffff:a.b.c.d) are checked against the IPv4 ranges by BlockList itself.
  const v6 = ['::/96', '::1/128', '64:ff9b::/96', '100::/64', '2001:db8::/32', '2002::/16', 'fc00::/7', 'fe80::/10', 'fec0::/10', 'ff00::/8'];
  for (const range of v4) { list.addSubnet(range.split('/')[0], Number(range.split('/')[1]), 'ipv4'); }
  for (const range of v6) { list.addSubnet(range.split('/')[0], Number(range.split('/')[1]), 'ipv6'); }
  return list;
})();

export function isPublicAddress(address: string): boolean {
  return !NON_PUBLIC.check(address, family(address));
}

/** Whether a callback may be sent to this resolved address: a public one, or one CALLBACK_HOSTS lists. */
export function addressAllowed(address: string, hosts: CallbackHosts): boolean {
  return isPublicAddress(address) || hosts.addresses.check(address, family(address));
}

/** Whether a URL's host is listed: a name or suffix for a name, an address or range for an address. */
export function hostAllowed(hostname: string, hosts: CallbackHosts): boolean {
  const host = unbracket(hostname.toLowerCase());
  if (isIP(host)) { return hosts.addresses.check(host, family(host)); }
  return hosts.names.has(host) || hosts.suffixes.some((s) => host.endsWith(s));
}

/** A callback URL refused: its code and message are the client's to read. */
export function callbackRefused(message: string): AppError {
  return new AppError('CALLBACK_NOT_ALLOWED', message, { status: 400 });
}

/** Checks a submitted callback URL against the allowlist; the address it resolves to is checked again at delivery. */
export function checkCallbackUrl(raw: string, hosts: CallbackHosts): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw callbackRefused(`callback url ${JSON.stringify(raw)} is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') { throw callbackRefused(`callback url ${raw} must be http:// or https://`); }
  if (url.username || url.password) { throw callbackRefused('callback url must not carry credentials; the signature authenticates decisum'); }
  if (hosts.entries.length === 0) { throw callbackRefused('callbacks are turned off on this server (CALLBACK_HOSTS is empty)'); }
  if (!hostAllowed(url.hostname, hosts)) { throw callbackRefused(`callback host ${url.hostname} is not in CALLBACK_HOSTS`); }
  return url;
}

/** `Decisum-Signature`: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">`, the scheme Stripe and GitHub receivers know. */
export function signCallback(secret: string, body: string, unixSeconds: number): string {
  const v1 = createHmac('sha256', secret).update(`${unixSeconds}.${body}`).digest('hex');
  return `t=${unixSeconds},v1=${v1}`;
}
