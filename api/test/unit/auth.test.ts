import { PassThrough } from 'node:stream';
import type { Request, Response } from 'express';
import { AppError, hashToken } from '@decisum/shared';
import { guardLocal } from '../../src/auth';
import { main } from '../../src/cli';

const fakeRequest = (remoteAddress: string, host: string) => ({ socket: { remoteAddress }, get: (name: string) => (name === 'Host' ? host : undefined) }) as unknown as Request;
const codeOf = (run: () => void): string | undefined => {
  try {
    run();
    return undefined;
  } catch (err) {
    return err instanceof AppError ? err.code : 'not an AppError';
  }
};

describe('protected mode guard', () => {
  it('refuses a client that is not on this machine, whatever its Host', () => {
    expect(codeOf(() => guardLocal(fakeRequest('10.0.0.5', 'localhost:8080'), {} as Response, () => {}))).toBe('HOST_NOT_ALLOWED');
    expect(codeOf(() => guardLocal(fakeRequest('::ffff:10.0.0.5', '127.0.0.1'), {} as Response, () => {}))).toBe('HOST_NOT_ALLOWED');
  });

  it('answers a loopback client naming a loopback Host', () => {
    let passed = 0;
    for (const [addr, host] of [['127.0.0.1', 'localhost:8080'], ['::1', '[::1]:8080'], ['::ffff:127.0.0.1', '127.0.0.1']]) {
      guardLocal(fakeRequest(addr, host), {} as Response, () => passed++);
    }
    expect(passed).toBe(3);
  });
});

describe('decisum token create', () => {
  const run = async (args: string[]) => {
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    let out = '';
    let err = '';
    stdout.on('data', (d: Buffer) => (out += d.toString()));
    stderr.on('data', (d: Buffer) => (err += d.toString()));
    const code = await main(args, { stdout, stderr, stdin: new PassThrough() }, {});
    return { code, out, err };
  };

  it('prints a new token and the entry that holds its hash', async () => {
    const { code, out } = await run(['token', 'create', '--name', 'alice', '--scopes', 'jobs:write,jobs:read', '--json']);
    expect(code).toBe(0);
    const { token, entry } = JSON.parse(out) as { token: string; entry: { sha256: string } };
    expect(token).toMatch(/^dcs_/);
    expect(entry).toEqual({ name: 'alice', sha256: hashToken(token), scopes: ['jobs:write', 'jobs:read'] });
  });

  it('refuses an unknown scope as a usage error', async () => {
    const { code, err } = await run(['token', 'create', '--name', 'alice', '--scopes', 'jobs:everything']);
    expect(code).toBe(2);
    expect(err).toMatch(/scopes/);
  });
});
