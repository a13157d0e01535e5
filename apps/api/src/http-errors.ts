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

function toHttpError(err: unknown): HttpError {
  if (err instanceof HttpError) return err;
  const e = err as { type?: string; status?: number; limit?: number; message?: string };
  // body-parser's errors
  if (e?.type === 'entity.too.large') return new HttpError(413, 'body_too_large', `the request body is larger than the ${e.limit} bytes accepted`);
  if (e?.type === 'entity.parse.failed') return new HttpError(400, 'invalid_json', `the request body is not valid JSON: ${e.message}`, [{ field: '(body)', message: 'is not valid JSON' }]);
  if (e?.type === 'encoding.unsupported' || e?.type === 'charset.unsupported') return new HttpError(415, 'unsupported_encoding', e.message ?? 'unsupported body encoding');
  return new HttpError(500, 'internal', 'the api failed unexpectedly; see its log');
}
