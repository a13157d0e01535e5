import type { ErrorRequestHandler, RequestHandler } from 'express';
import type { FieldError } from '@chango/contracts';
import type { Logger } from '@chango/telemetry';

/**
 * An answer other than success: status, a stable machine-readable `error`,
 * words for a person, and where it applies the fields at fault. Every error
 * the api gives is this JSON shape.
 */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly error: string,
    message: string,
    readonly fields?: FieldError[],
    readonly extra?: Record<string, unknown>,
  ) {
    super(message);
  }

  toJSON(): Record<string, unknown> {
    return { error: this.error, message: this.message, ...(this.fields ? { fields: this.fields } : {}), ...this.extra };
  }
}

export const notFound: RequestHandler = (req) => {
  throw new HttpError(404, 'not_found', `no such endpoint: ${req.method} ${req.path}`);
};

/** Turns anything thrown into the JSON error shape; bugs become a 500 that shows no internals. */
export function errorHandler(log: Logger): ErrorRequestHandler {
  return (err, req, res, _next) => {
    const httpError = toHttpError(err);
    if (httpError.status >= 500) log.error({ method: req.method, path: req.path, err: (err as Error)?.message }, 'request failed');
    res.status(httpError.status).json(httpError.toJSON());
  };
}

/**
 * The one sink for errors: ours as they are; the framework's (the router's
 * path decoding, body-parser) in the same JSON shape with their 4xx; any other
 * error a 500 that shows no internals.
 */
export function toHttpError(err: unknown): HttpError {
  if (err instanceof HttpError) return err;
  const e = err as { type?: string; status?: number; statusCode?: number; limit?: number; message?: string };
  switch (e?.type) {
    case 'entity.too.large':
      return new HttpError(413, 'body_too_large', `the request body is larger than the ${e.limit} bytes accepted`, [{ field: '(body)', message: `is larger than ${e.limit} bytes` }]);
    case 'entity.parse.failed': {
      // V8's message quotes the body; the body may hold a secret key, so only the position is kept.
      const position = /position (\d+)/.exec(e.message ?? '')?.[1];
      return new HttpError(400, 'invalid_json', `the request body is not valid JSON${position ? ` (at position ${position})` : ''}`, [{ field: '(body)', message: 'is not valid JSON' }]);
    }
    case 'encoding.unsupported':
    case 'charset.unsupported':
      return new HttpError(415, 'unsupported_encoding', e.message ?? 'unsupported body encoding', [{ field: 'Content-Encoding', message: 'is not supported' }]);
    case 'request.aborted':
      return new HttpError(400, 'request_aborted', 'the client stopped sending the request body before its end');
    case 'request.size.invalid':
      return new HttpError(400, 'invalid_body_length', 'the request body is not as long as its Content-Length says', [{ field: 'Content-Length', message: 'does not match the body' }]);
    default:
      break;
  }
  const status = e?.status ?? e?.statusCode;
  // Express's router: a path that is not valid percent-encoding (e.g. /jobs/%ff) cannot name anything.
  if (status === 400 && /^Failed to decode param/.test(e?.message ?? '')) {
    return new HttpError(400, 'invalid_path', 'the path is not valid percent-encoding (a % must be followed by two hex digits of UTF-8)', [{ field: '(path)', message: 'is not valid percent-encoding' }]);
  }
  if (typeof status === 'number' && status >= 400 && status < 500) return new HttpError(status, 'bad_request', e?.message ?? 'the request cannot be handled');
  return new HttpError(500, 'internal', 'the api failed unexpectedly; see its log');
}
