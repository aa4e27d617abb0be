import { SCOPES, newToken, tokenEntry } from '@decisum/shared/tokens';
import { EXIT, usageError } from './client';
import type { Io } from './commands';

export interface TokenCreateOptions {
  name?: string;
  scopes?: string;
}

/**
 * `decisum token create`: a new random token and the entry that configures it. Only the entry's hash
 * goes into API_TOKENS; the token itself is shown once, here, and stored nowhere.
 */
export function tokenCreateCommand(io: Io, json: boolean, o: TokenCreateOptions): number {
  if (!o.name) { throw usageError('token create needs --name (the owner of the jobs it submits)'); }
  const scopes = (o.scopes ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (scopes.length === 0) { throw usageError(`token create needs --scopes, a comma-separated list of ${SCOPES.join(', ')}`); }
  const token = newToken();
  let entry;
  try {
    entry = tokenEntry(o.name, scopes, token);
  } catch (err) {
    throw usageError(`token create: ${(err as Error).message}`);
  }
  if (json) {
    io.stdout.write(`${JSON.stringify({ token, entry })}\n`);
    return EXIT.OK;
  }
  io.stdout.write(`token: ${token}\nentry: ${JSON.stringify(entry)}\n`);
  io.stderr.write('Give the token to its user (it is shown only now); add the entry to the API_TOKENS array, or to the API_TOKENS_FILE file.\n');
  return EXIT.OK;
}
