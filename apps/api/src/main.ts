#!/usr/bin/env node
import { createServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createLogger } from '@chango/telemetry';
import { createApp } from './app.js';
import { answerClientErrorsAsJson } from './client-errors.js';
import { readApiConfig } from './config.js';
import { RedisLink } from './redis-link.js';
import { loadTlsCredentials } from './tls.js';
import { loadTokensFile } from '@chango/security';

/**
 * The HTTP admin API (HTTPS with TLS_CERT_FILE and TLS_KEY_FILE). Stateless:
 * everything it knows comes from Redis (the queues) or the worker. It refuses
 * to start without a tokens file; SIGHUP re-reads the file so tokens can be
 * added or revoked without a restart, and the certificate so a renewed one
 * is served without dropping a connection.
 */
async function main(): Promise<void> {
  const log = createLogger('chango-api');
  const config = readApiConfig();
  let tokens = loadTokensFile(config.tokensFile);
  const link = new RedisLink(config, config.queuePrefix, log);
  const app = createApp({ config, link, tokens: () => tokens, log });

  // Every wait on a client is bounded: headers, the whole request, an idle keep-alive connection. Node checks these
  // every connectionsCheckingInterval (30 s by default): once a second, so a bound is kept within a second.
  const bounds = { headersTimeout: config.headersTimeoutMs, requestTimeout: config.requestTimeoutMs, keepAliveTimeout: config.keepAliveTimeoutMs, connectionsCheckingInterval: 1_000 };
  // HTTPS when TLS_CERT_FILE and TLS_KEY_FILE are set (checked to belong together before listening); plain HTTP otherwise.
  const tlsFiles = config.tls;
  const https = tlsFiles ? createHttpsServer({ ...bounds, ...loadTlsCredentials(tlsFiles) }, app) : undefined;
  const server = https ?? createServer(bounds, app);
  answerClientErrorsAsJson(server);
  server.listen(config.port, config.host);
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  log.info({ url: `${https ? 'https' : 'http'}://${config.host}:${port}`, tokens: tokens.length, prefix: config.queuePrefix }, 'api listening');

  process.on('SIGHUP', () => {
    try {
      tokens = loadTokensFile(config.tokensFile);
      log.info({ tokens: tokens.length }, 'tokens file reloaded');
    } catch (err) {
      log.error({ err: (err as Error).message }, 'tokens file not reloaded: keeping the previous tokens');
    }
    if (https && tlsFiles) {
      // A renewed certificate is served to every new connection from now on; one that does not load leaves the old in place.
      try {
        https.setSecureContext(loadTlsCredentials(tlsFiles));
        log.info({ certFile: tlsFiles.certFile }, 'TLS certificate reloaded');
      } catch (err) {
        log.error({ err: (err as Error).message }, 'TLS certificate not reloaded: keeping the previous one');
      }
    }
  });
  const stop = async (signal: string) => {
    log.info({ signal }, 'api stopping');
    // Closing waits on Redis; an unreachable Redis must not keep the api from stopping.
    setTimeout(() => process.exit(0), 5_000).unref();
    server.close();
    await link.close();
    process.exit(0);
  };
  process.once('SIGTERM', () => void stop('SIGTERM'));
  process.once('SIGINT', () => void stop('SIGINT'));
}

main().catch((err: unknown) => {
  process.stderr.write(`chango-api: cannot start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
