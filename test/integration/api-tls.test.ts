import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import type { TLSSocket } from 'node:tls';
import { newToken } from '@chango/security';
import { SuiteScope, tempDir, waitFor } from '../../testkit/fixtures.js';
import { SAFETY_NET_MS, withinLoad } from '../../testkit/liveness.js';
import { API, RunningProcess, runNode } from '../../testkit/processes.js';
import { Stack } from '../../testkit/stack.js';

const run = promisify(execFile);

/** A self-signed certificate for 127.0.0.1 made with openssl: its files and its PEM. */
async function selfSigned(dir: string, name: string): Promise<{ certFile: string; keyFile: string; pem: string }> {
  const certFile = join(dir, `${name}.crt`);
  const keyFile = join(dir, `${name}.key`);
  await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2', '-subj', `/CN=${name}`, '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', keyFile, '-out', certFile]);
  return { certFile, keyFile, pem: await readFile(certFile, 'utf8') };
}

/** A GET over HTTPS that verifies the server against `ca` (none: the system's trust store); the certificate it was shown. */
function get(url: string, options: { ca?: string; token?: string } = {}): Promise<{ status: number; body: string; fingerprint: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { ...(options.ca ? { ca: options.ca } : {}), headers: options.token ? { authorization: `Bearer ${options.token}` } : {}, agent: false, timeout: SAFETY_NET_MS }, (res) => {
      const fingerprint = (res.socket as TLSSocket).getPeerCertificate().fingerprint256;
      let body = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (body += chunk)).on('end', () => resolve({ status: res.statusCode ?? 0, body, fingerprint }));
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end();
  });
}

describe('the api over HTTPS (TLS_CERT_FILE, TLS_KEY_FILE), with a client that verifies the certificate', () => {
  const scope = new SuiteScope();
  let stack: Stack;
  let dir: string;
  let first: { certFile: string; keyFile: string; pem: string };

  before(async () => {
    dir = await tempDir(scope, 'chango-tls');
    first = await selfSigned(dir, 'first');
    // The certificate files the api is told about; replaced in place for the reload test.
    await run('cp', [first.certFile, join(dir, 'api.crt')]);
    await run('cp', [first.keyFile, join(dir, 'api.key')]);
    stack = await Stack.start(scope, { users: 2, components: 20, apiEnv: { TLS_CERT_FILE: join(dir, 'api.crt'), TLS_KEY_FILE: join(dir, 'api.key') } });
  });
  after(() => scope.run());

  test('a verifying client gets the api over HTTPS; one that does not trust the certificate is refused in the handshake', async () => {
    assert.match(stack.baseUrl, /^https:\/\/127\.0\.0\.1:\d+$/);
    const health = await get(`${stack.baseUrl}/healthz`, { ca: first.pem });
    assert.equal(health.status, 200, health.body);
    const status = await get(`${stack.baseUrl}/admin/api/backup/status`, { ca: first.pem, token: stack.viewerToken });
    assert.equal(status.status, 200, status.body);
    assert.equal(status.fingerprint, new X509Certificate(first.pem).fingerprint256);
    await assert.rejects(get(`${stack.baseUrl}/healthz`), /self[- ]signed certificate/i);
    const plain = await fetch(stack.baseUrl.replace('https:', 'http:') + '/healthz').then((r) => r.status, (err: Error) => err.message);
    assert.notEqual(plain, 200, 'plain HTTP is not served on the HTTPS port');
  });

  test('SIGHUP serves a renewed certificate to new connections; a broken one is refused and the old one kept', async () => {
    const second = await selfSigned(dir, 'second');
    await run('cp', [second.certFile, join(dir, 'api.crt')]);
    await run('cp', [second.keyFile, join(dir, 'api.key')]);
    stack.api.child.kill('SIGHUP');
    const renewed = new X509Certificate(second.pem).fingerprint256;
    // The api reloads at once on the signal; the wait is for the signal's delivery only.
    await waitFor('the renewed certificate', async () => ((await get(`${stack.baseUrl}/healthz`, { ca: second.pem }).catch(() => undefined))?.fingerprint === renewed ? true : undefined), withinLoad(1_000), 50);

    // A key that is not the certificate's: the reload is refused in words, the renewed certificate stays.
    await run('cp', [first.keyFile, join(dir, 'api.key')]);
    stack.api.child.kill('SIGHUP');
    await stack.api.waitForOutput('TLS certificate not reloaded');
    assert.match(stack.api.stdout, /TLS certificate not reloaded: keeping the previous one/);
    assert.equal((await get(`${stack.baseUrl}/healthz`, { ca: second.pem })).fingerprint, renewed);
    await run('cp', [second.keyFile, join(dir, 'api.key')]);
  });

  test('an api given one of the two files, or a key that is not the certificate\'s, does not start and says why', async (t) => {
    const own = await tempDir(t, 'chango-tls-start');
    const tokens = join(own, 'tokens');
    await writeFile(tokens, `${newToken('a', 'admin').line}\n`, { mode: 0o600 });
    const base = { CHANGO_API_TOKENS_FILE: tokens, PORT: '0', CHANGO_QUEUE_PREFIX: stack.prefix };
    const half = await runNode(API, [], { ...base, TLS_CERT_FILE: first.certFile });
    assert.equal(half.code, 1);
    assert.match(half.stderr, /chango-api: cannot start: TLS_KEY_FILE is not set but TLS_CERT_FILE is: set both to serve HTTPS, or neither for plain HTTP/);
    const other = await selfSigned(own, 'other');
    const mismatched = await runNode(API, [], { ...base, TLS_CERT_FILE: first.certFile, TLS_KEY_FILE: other.keyFile });
    assert.equal(mismatched.code, 1);
    assert.match(mismatched.stderr, /cannot serve HTTPS: the key is not the certificate's/);
    assert.ok(!mismatched.stderr.includes('PRIVATE KEY'), 'no key material in the words');
    const missing = await runNode(API, [], { ...base, TLS_CERT_FILE: join(own, 'nope.crt'), TLS_KEY_FILE: other.keyFile });
    assert.match(missing.stderr, /TLS_CERT_FILE .*nope\.crt cannot be read \(ENOENT\)/);
    // The default stays plain HTTP on 127.0.0.1.
    const plain = RunningProcess.start(API, { ...base, REDIS_URL: stack.env.REDIS_URL ?? '' });
    t.after(() => plain.stop());
    await plain.waitForOutput('api listening');
    assert.match(plain.listeningUrl(), /^http:\/\/127\.0\.0\.1:\d+$/);
  });
});
