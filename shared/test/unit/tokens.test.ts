import { ConfigError, loadConfig, exposureProblem, isLoopbackHost } from '../../src/config';
import { redact } from '../../src/errors';
import { findToken, grants, hashToken, newToken, parseTokens, tokenEntry } from '../../src/tokens';

const entry = (over: object = {}) => ({ name: 'alice', sha256: hashToken('secret'), scopes: ['jobs:read'], ...over });

describe('token rules', () => {
  it('parses entries and lower-cases their hashes', () => {
    const [e] = parseTokens(JSON.stringify([entry({ sha256: hashToken('secret').toUpperCase() })]));
    expect(e).toEqual({ name: 'alice', sha256: hashToken('secret'), scopes: ['jobs:read'] });
  });

  it.each([
    ['not JSON', '[{', /not valid JSON/],
    ['an empty list', '[]', /at least one token/],
    ['a bad hash', JSON.stringify([entry({ sha256: 'abc' })]), /\[0\]\.sha256 must be the 64 hex digits/],
    ['an unknown scope', JSON.stringify([entry({ scopes: ['root'] })]), /\[0\]\.scopes\[0\] must be one of/],
    ['no scopes', JSON.stringify([entry({ scopes: [] })]), /at least one scope/],
    ['a bad name', JSON.stringify([entry({ name: 'a b' })]), /\[0\]\.name must be/],
    ['a token in clear', JSON.stringify([{ ...entry(), token: 'secret' }]), /Unrecognized key/],
    ['a repeated hash', JSON.stringify([entry(), entry({ name: 'bob' })]), /\[1\]\.sha256 repeats/],
  ])('refuses %s with one line', (_what, json, message) => {
    expect(() => parseTokens(json)).toThrow(message);
  });

  it('finds a token by its hash only, never by the hash itself', () => {
    const entries = parseTokens(JSON.stringify([entry(), entry({ name: 'bob', sha256: hashToken('other') })]));
    expect(findToken(entries, 'secret')?.name).toBe('alice');
    expect(findToken(entries, 'other')?.name).toBe('bob');
    expect(findToken(entries, hashToken('secret'))).toBeUndefined();
    expect(findToken(entries, '')).toBeUndefined();
  });

  it('makes random dcs_ tokens of 32 bytes, and their entries', () => {
    const token = newToken();
    expect(token).toMatch(/^dcs_[A-Za-z0-9_-]{43}$/);
    expect(newToken()).not.toBe(token);
    expect(tokenEntry('alice', ['jobs:write'], token)).toEqual({ name: 'alice', sha256: hashToken(token), scopes: ['jobs:write'] });
    expect(() => tokenEntry('alice', ['jobs:everything'], token)).toThrow(/scopes/);
  });

  it('lets admin stand for every scope', () => {
    expect(grants(['admin'], 'files:write')).toBe(true);
    expect(grants(['jobs:read'], 'jobs:write')).toBe(false);
  });
});

describe('security configuration', () => {
  it('reads API_TOKENS, and refuses it with API_TOKENS_FILE or when invalid, naming the variable', () => {
    expect(loadConfig({ API_TOKENS: JSON.stringify([entry()]) }).tokens).toHaveLength(1);
    expect(() => loadConfig({ API_TOKENS: '[]', API_TOKENS_FILE: '/x' })).toThrow(/not both/);
    expect(() => loadConfig({ API_TOKENS: '[{' })).toThrow(new ConfigError('invalid configuration: API_TOKENS is not valid JSON (expected [{"name": …, "sha256": …, "scopes": […]}])'));
    expect(() => loadConfig({ API_TOKENS_FILE: '/no/such/tokens.json' })).toThrow(/API_TOKENS_FILE .* cannot be read \(ENOENT\)/);
  });

  it('defaults to loopback, no tokens, no trusted proxy, metrics on 9463', () => {
    const c = loadConfig({});
    expect({ host: c.host, tokens: c.tokens, trustProxy: c.trustProxy, metricsPort: c.metricsPort }).toEqual({ host: '127.0.0.1', tokens: [], trustProxy: false, metricsPort: 9463 });
  });

  it('takes TRUST_PROXY as a hop count or a list of addresses', () => {
    expect(loadConfig({ TRUST_PROXY: '2' }).trustProxy).toBe(2);
    expect(loadConfig({ TRUST_PROXY: '0' }).trustProxy).toBe(false);
    expect(loadConfig({ TRUST_PROXY: '10.0.0.1, 10.1.0.0/16' }).trustProxy).toEqual(['10.0.0.1', '10.1.0.0/16']);
    expect(() => loadConfig({ TRUST_PROXY: 'true' })).toThrow(/TRUST_PROXY must be a hop count/);
  });

  it('refuses to expose protected mode beyond loopback', () => {
    expect(exposureProblem({ host: '0.0.0.0', tokens: [] })).toMatch(/^HOST=0\.0\.0\.0 listens beyond this machine/);
    expect(exposureProblem({ host: '0.0.0.0', tokens: parseTokens(JSON.stringify([entry()])) })).toBeUndefined();
    for (const host of ['127.0.0.1', 'localhost', '::1', '[::1]', '127.0.0.2']) { expect(isLoopbackHost(host)).toBe(true); }
    for (const host of ['0.0.0.0', '::', '10.0.0.1', 'localhost.evil.example']) { expect(isLoopbackHost(host)).toBe(false); }
  });
});

describe('redact', () => {
  it('cuts server paths and internal addresses out of messages', () => {
    expect(redact("ENAMETOOLONG: name too long, realpath '/srv/decisum/data/aaa'")).toBe('ENAMETOOLONG: name too long, realpath <path>');
    expect(redact('connect ECONNREFUSED 127.0.0.1:6379')).toBe('connect ECONNREFUSED <address>');
    expect(redact('connect ECONNREFUSED ::1:6379')).toBe('connect ECONNREFUSED <address>');
    expect(redact('getaddrinfo ENOTFOUND redis.internal')).toBe('getaddrinfo ENOTFOUND <address>');
    expect(redact('reports/a.csv does not exist')).toBe('reports/a.csv does not exist');
    expect(redact('s3://decisum/data.csv: access denied')).toBe('s3://decisum/data.csv: access denied');
    expect(redact('read from 10.1.2.3:9000 failed')).toBe('read from <address> failed');
    expect(redact('callback host 10.0.0.5 is not in CALLBACK_HOSTS')).toBe('callback host 10.0.0.5 is not in CALLBACK_HOSTS');
  });
});
