import { readFile } from 'node:fs/promises';
import { Router } from 'express';

/**
 * The api's OpenAPI document, `apps/api/openapi.yaml`. Found relative to this
 * module, which sits two levels below the package root both as source
 * (src/routes) and built (dist/routes). Read once, on the first request.
 */
export const OPENAPI_DOCUMENT = new URL('../../openapi.yaml', import.meta.url);
export const OPENAPI_PATH = '/admin/api/openapi.yaml';

/** `GET /admin/api/openapi.yaml`: the API reference; no token needed, nothing secret in it. */
export function openapiRoutes(): Router {
  const router = Router();
  let document: Promise<string> | undefined;

  router.get(OPENAPI_PATH, async (_req, res) => {
    document ??= readFile(OPENAPI_DOCUMENT, 'utf8').catch((err: unknown) => {
      document = undefined;
      throw err;
    });
    res.type('application/yaml').send(await document);
  });

  return router;
}
