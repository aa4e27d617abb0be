import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';

/** What a token may do. `admin` implies every other scope and sees every owner's jobs. */
export const SCOPES = ['jobs:write', 'jobs:read', 'files:read', 'files:write', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

/** The owner of every job in protected mode (no tokens configured). */
export const LOCAL_OWNER = 'local';

/** One configured token: its owner's name, the sha256 of the token (never the token), its scopes. */
export interface TokenEntry {
  name: string;
  sha256: string;
  scopes: Scope[];
}

const TokenEntrySchema = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$/, 'must be 1-64 letters, digits, . _ @ - (it names the owner)'),
    sha256: z
      .string()
      .regex(/^[0-9a-fA-F]{64}$/, 'must be the 64 hex digits of the sha256 of the token')
      .transform((h) => h.toLowerCase()),
    scopes: z.array(z.enum(SCOPES, { message: `must be one of ${SCOPES.join(', ')}` })).min(1, 'must list at least one scope'),
  })
  .strict();

const TokenListSchema = z.array(TokenEntrySchema).min(1, 'must list at least one token');

/** Parses the JSON of API_TOKENS (or the file API_TOKENS_FILE names); throws one line naming the first problems. */
export function parseTokens(json: string): TokenEntry[] {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    throw new Error('is not valid JSON (expected [{"name": …, "sha256": …, "scopes": […]}])');
  }
  const parsed = TokenListSchema.safeParse(value);
  if (!parsed.success) {
    throw new Error(parsed.error.issues.map((i) => `${i.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('')} ${i.message}`.trim()).join('; '));
  }
  const seen = new Set<string>();
  for (const [i, entry] of parsed.data.entries()) {
    if (seen.has(entry.sha256)) { throw new Error(`[${i}].sha256 repeats an earlier token's hash`); }
    seen.add(entry.sha256);
  }
  return parsed.data;
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/**
 * The entry whose hash is the presented token's, compared in constant time: every entry is compared
 * (no early exit), and each comparison takes the same time whatever the bytes.
 */
export function findToken(entries: readonly TokenEntry[], presented: string): TokenEntry | undefined {
  const digest = createHash('sha256').update(presented, 'utf8').digest();
  let found: TokenEntry | undefined;
  for (const entry of entries) {
    if (timingSafeEqual(digest, Buffer.from(entry.sha256, 'hex')) && !found) { found = entry; }
  }
  return found;
}

/** A new random token: `dcs_` and 32 random bytes in base64url. */
export function newToken(): string {
  return `dcs_${randomBytes(32).toString('base64url')}`;
}

/** The configuration entry of a token. */
export function tokenEntry(name: string, scopes: readonly string[], token: string): TokenEntry {
  const parsed = TokenEntrySchema.safeParse({ name, sha256: hashToken(token), scopes });
  if (!parsed.success) {
    throw new Error(parsed.error.issues.map((i) => `${i.path.join('.')} ${i.message}`).join('; '));
  }
  return parsed.data;
}

/** Whether the scopes grant `scope`: they hold it, or admin. */
export function grants(scopes: readonly Scope[], scope: Scope): boolean {
  return scopes.includes(scope) || scopes.includes('admin');
}
