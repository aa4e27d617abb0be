import { createHmac } from 'node:crypto';
import { addressAllowed, checkCallbackUrl, hostAllowed, isPublicAddress, parseCallbackHosts, signCallback } from '../../src/callbacks';
import { AppError } from '../../src/errors';
import { ConfigError, loadConfig } from '../../src/config';

describe('CALLBACK_HOSTS', () => {
  const hosts = parseCallbackHosts(' Hooks.Example.com, *.corp.example.org ,127.0.0.1, 10.1.0.0/16, [::1]');

  it('lists names, suffixes, addresses and ranges, case aside', () => {
    expect(hostAllowed('hooks.example.com', hosts)).toBe(true);
    expect(hostAllowed('HOOKS.example.com', hosts)).toBe(true);
    expect(hostAllowed('a.corp.example.org', hosts)).toBe(true);
    expect(hostAllowed('a.b.corp.example.org', hosts)).toBe(true);
    expect(hostAllowed('127.0.0.1', hosts)).toBe(true);
    expect(hostAllowed('10.1.200.3', hosts)).toBe(true);
    expect(hostAllowed('[::1]', hosts)).toBe(true);
  });

  it('refuses what it does not list: other names, the bare suffix, look-alikes, other addresses', () => {
    expect(hostAllowed('example.com', hosts)).toBe(false);
    expect(hostAllowed('corp.example.org', hosts)).toBe(false);
    expect(hostAllowed('hooks.example.com.evil.net', hosts)).toBe(false);
    expect(hostAllowed('evilcorp.example.org', hosts)).toBe(false);
    expect(hostAllowed('10.2.0.1', hosts)).toBe(false);
    expect(hostAllowed('127.0.0.2', hosts)).toBe(false);
    expect(hostAllowed('localhost', hosts)).toBe(false);
  });

  it.each([['localhost:8080'], ['http://a.example.com'], ['10.0.0.0/33'], ['*.'], ['a..b'], ['-a.example.com']])('refuses the entry %s, in the config naming the variable', (entry) => {
    expect(() => parseCallbackHosts(entry)).toThrow(/is not a host name, \*\.domain, address or address\/prefix/);
    expect(() => loadConfig({ CALLBACK_HOSTS: entry, CALLBACK_SECRET: 'x'.repeat(16) })).toThrow(/CALLBACK_HOSTS/);
  });

  it('needs CALLBACK_SECRET once hosts are listed, of at least 16 characters', () => {
    expect(() => loadConfig({ CALLBACK_HOSTS: 'hooks.example.com' })).toThrow(ConfigError);
    expect(() => loadConfig({ CALLBACK_HOSTS: 'hooks.example.com' })).toThrow(/CALLBACK_SECRET must be set when CALLBACK_HOSTS is/);
    expect(() => loadConfig({ CALLBACK_HOSTS: 'hooks.example.com', CALLBACK_SECRET: 'short' })).toThrow(/CALLBACK_SECRET must be at least 16/);
    expect(loadConfig({}).callbacks.hosts.entries).toEqual([]);
  });
});

describe('addresses a callback may reach once its name is resolved', () => {
  it.each([
    '127.0.0.1', '10.0.0.5', '172.16.9.1', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0', '224.0.0.1', '255.255.255.255',
    '::1', '::', 'fe80::1', 'fd00::1', 'ff02::1', '::ffff:127.0.0.1', '::ffff:7f00:1', '::ffff:10.0.0.1', '64:ff9b::a00:1',
  ])('%s is not public', (address) => {
    expect(isPublicAddress(address)).toBe(false);
  });

  it.each(['93.184.216.34', '8.8.8.8', '2606:4700:4700::1111', '::ffff:8.8.8.8'])('%s is public', (address) => {
    expect(isPublicAddress(address)).toBe(true);
  });

  it('allows a private or loopback address only when CALLBACK_HOSTS lists it', () => {
    const hosts = parseCallbackHosts('hooks.example.com,127.0.0.1,10.1.0.0/16');
    expect(addressAllowed('127.0.0.1', hosts)).toBe(true);
    expect(addressAllowed('::ffff:127.0.0.1', hosts)).toBe(true);
    expect(addressAllowed('10.1.2.3', hosts)).toBe(true);
    expect(addressAllowed('127.0.0.2', hosts)).toBe(false);
    expect(addressAllowed('::1', hosts)).toBe(false);
    expect(addressAllowed('169.254.169.254', hosts)).toBe(false);
    expect(addressAllowed('93.184.216.34', hosts)).toBe(true);
  });
});

describe('a submitted callback URL', () => {
  const hosts = parseCallbackHosts('hooks.example.com,127.0.0.1');
  const refusal = (url: string, h = hosts): string => {
    try {
      checkCallbackUrl(url, h);
    } catch (err) {
      expect(err).toBeInstanceOf(AppError);
      expect(err).toMatchObject({ code: 'CALLBACK_NOT_ALLOWED', status: 400 });
      return (err as Error).message;
    }
    throw new Error(`${url} was accepted`);
  };

  it('is accepted on a listed host, http or https, any port and path', () => {
    expect(checkCallbackUrl('https://hooks.example.com/decisum?x=1', hosts).hostname).toBe('hooks.example.com');
    expect(checkCallbackUrl('http://127.0.0.1:9000/hook', hosts).port).toBe('9000');
  });

  it('is refused, in words naming what the client gave, off the list, with another scheme, with credentials, or when callbacks are off', () => {
    expect(refusal('https://evil.example.net/x')).toBe('callback host evil.example.net is not in CALLBACK_HOSTS');
    expect(refusal('http://10.0.0.5/x')).toBe('callback host 10.0.0.5 is not in CALLBACK_HOSTS');
    expect(refusal('ftp://hooks.example.com/x')).toBe('callback url ftp://hooks.example.com/x must be http:// or https://');
    expect(refusal('https://user:pw@hooks.example.com/x')).toMatch(/must not carry credentials/);
    expect(refusal('not a url')).toBe('callback url "not a url" is not a URL');
    expect(refusal('https://hooks.example.com/x', parseCallbackHosts(''))).toBe('callbacks are turned off on this server (CALLBACK_HOSTS is empty)');
  });
});

describe('Decisum-Signature', () => {
  it('is t=<seconds>,v1=<hex HMAC-SHA256 of "t.body">, as a receiver computes it', () => {
    const body = '{"id":"j1","status":"succeeded"}';
    const header = signCallback('a-secret-of-16-chars', body, 1_700_000_000);
    const [t, v1] = header.split(',').map((part) => part.split('=')[1]);
    expect(t).toBe('1700000000');
    expect(v1).toBe(createHmac('sha256', 'a-secret-of-16-chars').update(`1700000000.${body}`).digest('hex'));
    expect(signCallback('another-secret-16ch', body, 1_700_000_000)).not.toBe(header);
  });
});
