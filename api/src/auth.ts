/*
 * STAND-IN for the security work (issue 10, branch `security`): the surface its auth.ts exports, in
 * protected mode only (no tokens, every scope). The events work codes against it; when `security`
 * lands on main, this file is dropped in the rebase and theirs takes its place.
 */
import type { RequestHandler } from 'express';
import { AppError } from '@decisum/shared';

export type Scope = 'jobs:write' | 'jobs:read' | 'files:read' | 'files:write' | 'admin';

export interface Principal {
  owner: string;
  scopes: readonly Scope[];
}

const EVERY_SCOPE: readonly Scope[] = ['jobs:write', 'jobs:read', 'files:read', 'files:write', 'admin'];

/** Protected mode: no tokens are configured, so every caller is the local owner with every scope. */
export function authenticate(): RequestHandler {
  return (_req, res, next) => {
    res.locals.principal = { owner: 'local', scopes: EVERY_SCOPE } satisfies Principal;
    next();
  };
}

export function requireScope(scope: Scope): RequestHandler {
  return (_req, res, next) => {
    const principal = res.locals.principal as Principal | undefined;
    if (!principal?.scopes.includes(scope)) { throw new AppError('VALIDATION', `this token lacks the ${scope} scope`, { status: 403 }); }
    next();
  };
}

/** Whether the principal may see a job: its owner, or an admin. (Jobs carry `owner` once the security work lands.) */
export function canSee(principal: Principal, job: object): boolean {
  return principal.scopes.includes('admin') || (job as { owner?: string }).owner === principal.owner;
}
