import express, { Router } from 'express';
import { fileURLToPath } from 'node:url';
import type { TokenEntry } from '@chango/security';
import type { AuthThrottle } from '../auth-throttle.js';
import { requireRole } from '../auth.js';

/** The admin UI's files (apps/api/public), the same folder from src/ (tsx) and dist/ (built). */
const PUBLIC_DIR = fileURLToPath(new URL('../../public/', import.meta.url));

/**
 * The admin UI at /admin/: static files only, everything served from here (no
 * CDN). A strict Content-Security-Policy allows nothing but this origin: the
 * page has no inline script or style, so an injected one would not run. The
 * UI signs in through `GET /admin/api/whoami`, which tells a token's role.
 */
export function adminUiRoutes(tokens: () => TokenEntry[], throttle: AuthThrottle): Router {
  const router = Router();

  router.get('/admin/api/whoami', requireRole(tokens, 'viewer', throttle), (req, res) => {
    res.json({ name: req.caller?.name, role: req.caller?.role });
  });

  // Express matches '/admin' for '/admin/' too: redirect only the bare path, or the page would redirect to itself.
  router.get('/admin', (req, res, next) => (req.originalUrl.split('?')[0] === '/admin' ? res.redirect(301, '/admin/') : next()));
  router.use(
    '/admin',
    (_req, res, next) => {
      res.set({
        'Content-Security-Policy': "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        'X-Content-Type-Options': 'nosniff',
        'Referrer-Policy': 'no-referrer',
      });
      next();
    },
    express.static(PUBLIC_DIR, { index: 'index.html', fallthrough: true, maxAge: 0 }),
  );
  return router;
}
