import type { Request, RequestHandler } from 'express';
import { AppError, LOCAL_OWNER, SCOPES, findToken, grants, isLoopbackHost, type Scope, type TokenEntry } from '@decisum/shared';

export type { Scope } from '@decisum/shared';

/** Who is calling: the owner of the jobs it submits, and what it may do. `res.locals.principal` on every /api/v1 request. */
export interface Principal {
  owner: string;
  scopes: readonly Scope[];
}

const REALM = 'Bearer realm="decisum"';

/** Protected mode's caller: this machine's user, with every scope. */
const LOCAL: Principal = { owner: LOCAL_OWNER, scopes: SCOPES };

/**
 * Sets `res.locals.principal`. With tokens: from `Authorization: Bearer …`, else 401 UNAUTHORIZED. Without
 * (protected mode): every caller is the local owner; `guardLocal` has already refused anyone not on this machine.
 */
export function authenticate(tokens: readonly TokenEntry[] = []): RequestHandler {
  return (req, res, next) => {
    res.locals.principal = tokens.length === 0 ? LOCAL : principalOf(req, tokens);
    next();
  };
}

function principalOf(req: Request, tokens: readonly TokenEntry[]): Principal {
  const header = req.get('Authorization');
  const match = header === undefined ? null : /^Bearer +([\x21-\x7e]+) *$/i.exec(header);
  if (!match) {
    throw new AppError('UNAUTHORIZED', 'this API needs a token: send Authorization: Bearer <token>', { status: 401, headers: { 'WWW-Authenticate': REALM } });
  }
  const entry = findToken(tokens, match[1]);
  if (!entry) {
    throw new AppError('UNAUTHORIZED', 'the bearer token is not valid', {
      status: 401,
      headers: { 'WWW-Authenticate': `${REALM}, error="invalid_token"` },
    });
  }
  return { owner: entry.name, scopes: entry.scopes };
}

export function requireScope(scope: Scope): RequestHandler {
  return (_req, res, next) => {
    const principal = res.locals.principal as Principal | undefined;
    if (!principal || !grants(principal.scopes, scope)) {
      throw new AppError('FORBIDDEN', `this token lacks the ${scope} scope`, {
        status: 403,
        headers: { 'WWW-Authenticate': `${REALM}, error="insufficient_scope", scope="${scope}"` },
      });
    }
    next();
  };
}

/** `{area}:read` for GET and HEAD, `{area}:write` for anything else. */
export function requireAccess(area: 'jobs' | 'files'): RequestHandler {
  const read = requireScope(`${area}:read`);
  const write = requireScope(`${area}:write`);
  return (req, res, next) => (req.method === 'GET' || req.method === 'HEAD' ? read : write)(req, res, next);
}

/** Whether the principal may see a job: its owner, or an admin. */
export function canSee(principal: Principal, job: object): boolean {
  return principal.scopes.includes('admin') || (job as { owner?: string }).owner === principal.owner;
}

/**
 * Protected mode answers this machine only: a loopback peer (the socket's, not X-Forwarded-For) that
 * names a loopback Host, so a page on another site cannot reach it through DNS rebinding.
 */
export const guardLocal: RequestHandler = (req, _res, next) => {
  if (!isLoopbackHost(req.socket.remoteAddress ?? '')) {
    throw new AppError('HOST_NOT_ALLOWED', 'this decisum runs in protected mode (no API tokens) and answers only clients on its own machine', { status: 403 });
  }
  const host = hostName(req.get('Host') ?? '');
  if (host !== 'localhost' && host !== '127.0.0.1' && host !== '[::1]') {
    throw new AppError('HOST_NOT_ALLOWED', `Host ${JSON.stringify(host.slice(0, 100))} is not allowed in protected mode: use localhost, 127.0.0.1 or [::1]`, {
      status: 403,
    });
  }
  next();
};

/** The Host header without its port, lower-cased; an IPv6 address keeps its brackets. */
function hostName(header: string): string {
  const h = header.trim().toLowerCase();
  return h.startsWith('[') ? h.slice(0, h.indexOf(']') + 1) : h.replace(/:\d*$/, '');
}
