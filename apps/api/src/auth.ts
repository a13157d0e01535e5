import type { Request, RequestHandler } from 'express';
import { HttpError } from './http-errors.js';
import type { AuthThrottle } from './auth-throttle.js';
import { authenticate, type Caller, type Role, type TokenEntry } from '@chango/security';

declare module 'express-serve-static-core' {
  interface Request {
    caller?: Caller;
  }
}

/**
 * Bearer-token check. `viewer` routes admit both roles (reads); `admin`
 * routes admit admins only. No or unknown token: 401; known token, wrong
 * role: 403. The token itself is never logged or echoed. An address that
 * presented too many wrong tokens gets 429 with Retry-After before its token
 * is looked at (see AuthThrottle); `req.ip` is the client address, or the one
 * X-Forwarded-For names when the api sits behind a proxy it trusts
 * (CHANGO_API_TRUST_PROXY).
 */
export function requireRole(tokens: () => TokenEntry[], role: Role, throttle: AuthThrottle): RequestHandler {
  return async (req, res, next) => {
    const presented = bearerToken(req);
    const address = req.ip ?? 'unknown';
    if (presented !== undefined) {
      const waitMs = await throttle.waitFor(address);
      if (waitMs > 0) {
        await throttle.recordThrottled();
        const seconds = Math.ceil(waitMs / 1000);
        res.set('Retry-After', String(seconds));
        throw new HttpError(429, 'too_many_failed_attempts', `too many wrong tokens from ${address}: try again in ${seconds} s`);
      }
    }
    const caller = presented === undefined ? undefined : authenticate(tokens(), presented);
    if (!caller) {
      if (presented !== undefined) await throttle.recordFailure(address);
      throw new HttpError(401, 'unauthorized', 'a valid bearer token is required (Authorization: Bearer <token>)');
    }
    if (role === 'admin' && caller.role !== 'admin') {
      throw new HttpError(403, 'forbidden', `token "${caller.name}" has role ${caller.role}; this needs an admin token`);
    }
    req.caller = caller;
    next();
  };
}

/** The token of an `Authorization: Bearer <token>` header; undefined when there is none (a malformed header counts as a wrong token). */
function bearerToken(req: Request): string | undefined {
  const header = req.get('authorization');
  if (header === undefined) return undefined;
  return /^Bearer\s+(\S+)\s*$/i.exec(header)?.[1] ?? header;
}
