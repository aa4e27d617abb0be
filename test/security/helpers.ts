import { hashToken, type Scope } from '@decisum/shared';

/** A test token and the API_TOKENS entry that configures it. */
export interface TestToken {
  token: string;
  entry: { name: string; sha256: string; scopes: Scope[] };
}

export function testToken(name: string, scopes: Scope[]): TestToken {
  const token = `dcs_test_${name}_${scopes.join('_').replace(/:/g, '-')}`;
  return { token, entry: { name, sha256: hashToken(token), scopes } };
}

/** The API_TOKENS value for these tokens. */
export function apiTokens(...tokens: TestToken[]): string {
  return JSON.stringify(tokens.map((t) => t.entry));
}

export const bearer = (t: TestToken): Record<string, string> => ({ Authorization: `Bearer ${t.token}` });
