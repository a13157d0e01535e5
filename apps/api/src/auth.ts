import type { Request, RequestHandler } from 'express';
import { HttpError } from './http-errors.js';
import { authenticate, type Caller, type Role, type TokenEntry } from '@chango/contracts';

declare module 'express-serve-static-core' {
  interface Request {
    caller?: Caller;
  }
}

/**
 * Bearer-token check. `viewer` routes admit both roles (reads); `admin`
 * routes admit admins only. No or unknown token: 401; known token, wrong
 * role: 403. The token itself is never logged or echoed.
 */
export function requireRole(tokens: () => TokenEntry[], role: Role): RequestHandler {
  return (req, _res, next) => {
    const caller = callerOf(req, tokens());
    if (!caller) {
      throw new HttpError(401, 'unauthorized', 'a valid bearer token is required (Authorization: Bearer <token>)');
    }
    if (role === 'admin' && caller.role !== 'admin') {
      throw new HttpError(403, 'forbidden', `token "${caller.name}" has role ${caller.role}; this needs an admin token`);
    }
    req.caller = caller;
    next();
  };
}

function callerOf(req: Request, entries: TokenEntry[]): Caller | undefined {
  const header = req.get('authorization') ?? '';
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return match?.[1] ? authenticate(entries, match[1]) : undefined;
}
