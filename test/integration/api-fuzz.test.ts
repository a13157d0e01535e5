import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { SuiteScope } from '../../testkit/fixtures.js';
import { SAFETY_NET_MS } from '../../testkit/liveness.js';
import { componentValidator, document, METHODS, resolveResponse, validatorFor } from '../../testkit/openapi-document.js';
import { rawExchange, rawJson } from '../../testkit/raw-http.js';
import { Stack } from '../../testkit/stack.js';

/**
 * Property-based fuzzing of the running api (real worker and Redis): requests
 * generated across every route and method of apps/api/openapi.yaml, with
 * right- and wrong-shaped JSON, huge and unicode strings, deep nesting, wrong
 * content types, bodies that lie about their length, hostile path parameters
 * and missing or wrong tokens. Reproducible: the seed is printed, and
 * CHANGO_FUZZ_SEED=<n> replays a run (CHANGO_FUZZ_RUNS sets how many requests).
 */
const SEED = Number(process.env.CHANGO_FUZZ_SEED ?? 20261129);
const RUNS = Number(process.env.CHANGO_FUZZ_RUNS ?? 1200);
const BODY_LIMIT = 64 * 1024;
/** Short, so the few bodies that promise more than they send cost little (they end in 408). */
const REQUEST_TIMEOUT_MS = 1_000;

/** Secret keys put in generated configs: none may ever come back. */
const SECRETS = Array.from({ length: 8 }, (_, i) => `fuzz-secret-${i}-${'k'.repeat(12)}`);

interface Probe {
  method: string;
  /** The path with its parameters filled in, as sent (not re-encoded). */
  path: string;
  /** The documented operation it aims at, if any. */
  template: string | undefined;
  token: 'admin' | 'viewer' | 'none' | 'wrong' | 'malformed';
  contentType: string | undefined;
  body: string | undefined;
  length: 'true' | 'over-limit' | 'short' | 'promise-more';
}

const operations = Object.entries(document.paths).flatMap(([path, item]) => Object.keys(item).filter((m) => METHODS.includes(m)).map((method) => ({ path, method: method.toUpperCase() })));

const pathValue = fc.oneof(
  fc.stringMatching(/^[A-Za-z0-9:_-]{1,40}$/),
  fc.string({ maxLength: 60, unit: 'binary' }).map(encodeURIComponent),
  fc.constantFrom('%ff%fe', '%', '%Y-2026', '%:', '..%2f..%2fetc%2fpasswd', '%00', '%c3%28', 'a'.repeat(3000), '%2e%2e', 'null', '-1'),
);
const queryValue = fc.oneof(fc.string({ maxLength: 20 }).map(encodeURIComponent), fc.integer({ min: -5, max: 1000 }).map(String), fc.constantFrom('%ff', '', '1e3', 'true', 'false', '50', 'prod%2Fchango-20260101T000000Z-0b1c2d3e-4f50-4a61-8b72-93a4b5c6d7e8.tar.gz'));
const query = fc.dictionary(fc.constantFrom('limit', 'cursor', 'wait', 'x', 'limit[]'), queryValue, { maxKeys: 3 }).map((q) => {
  const text = Object.entries(q).map(([k, v]) => `${k}=${v}`).join('&');
  return text ? `?${text}` : '';
});

/** A destination of the right shape, each field sometimes of the wrong one; its S3 is a closed port. */
const destinationShaped = fc.record(
  {
    endpoint: fc.oneof(fc.constant('http://127.0.0.1:9'), fc.string(), fc.constant('ftp://x'), fc.integer()),
    region: fc.oneof(fc.constant('us-east-1'), fc.string({ maxLength: 80 })),
    bucket: fc.oneof(fc.constant('chango-fuzz'), fc.string({ maxLength: 70 })),
    prefix: fc.oneof(fc.constant('prod/'), fc.string({ maxLength: 30 }), fc.constant('../x/')),
    accessKey: fc.oneof(fc.constant('AKFUZZ'), fc.string({ maxLength: 140 }), fc.constant('a/b')),
    secretKey: fc.oneof(fc.constantFrom(...SECRETS), fc.constant('')),
    schedule: fc.oneof(fc.constant(null), fc.constant('0 3 1 1 *'), fc.string({ maxLength: 30 })),
    timezone: fc.oneof(fc.constant('UTC'), fc.string({ maxLength: 30 })),
    sse: fc.constantFrom('AES256', 'none', 'aws:kms', 'AES128', 7),
    retention: fc.oneof(fc.constant(null), fc.record({ keepLast: fc.integer({ min: -2, max: 200_000 }) }), fc.constant({ keepAll: true }), fc.constant({ keepAll: true, keepLast: 3 }), fc.jsonValue()),
    extra: fc.jsonValue(),
  },
  { requiredKeys: [] },
).map((o) => JSON.stringify(o));

/** A destination the api accepts: saved, it makes runs fail at S3 (a closed port) and listings answer 502. */
const validDestination = fc.constantFrom(...SECRETS).map((secretKey) =>
  JSON.stringify({ endpoint: 'http://127.0.0.1:9', region: 'us-east-1', bucket: 'chango-fuzz', prefix: 'prod/', accessKey: 'AKFUZZ', secretKey, sse: 'none', schedule: null }),
);

const body = fc.oneof(
  { weight: 3, arbitrary: fc.constant(undefined) },
  { weight: 1, arbitrary: validDestination },
  { weight: 4, arbitrary: destinationShaped },
  { weight: 2, arbitrary: fc.json({ maxDepth: 4 }) },
  { weight: 1, arbitrary: fc.record({ key: fc.oneof(fc.string(), fc.constant('prod/chango-20260101T000000Z-0b1c2d3e-4f50-4a61-8b72-93a4b5c6d7e8.tar.gz'), fc.integer()) }).map((o) => JSON.stringify(o)) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 200 }) },
  { weight: 1, arbitrary: fc.constantFrom(`"${'x'.repeat(70_000)}"`, '['.repeat(5_000), '{"a":', '\u0000\u0001', `{"secretKey":"${SECRETS[0]}",`) },
);

const probe: fc.Arbitrary<Probe> = fc
  .record({
    operation: fc.oneof({ weight: 9, arbitrary: fc.constantFrom(...operations) }, { weight: 1, arbitrary: fc.constantFrom({ path: '/admin/api/backup/nope/{id}', method: 'GET' }, { path: '/{id}', method: 'GET' }) }),
    // Mostly the documented method; one in nine another one.
    otherMethod: fc.oneof({ weight: 8, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.constantFrom('GET', 'PUT', 'POST', 'DELETE', 'PATCH', 'OPTIONS') }),
    value: pathValue,
    query,
    token: fc.constantFrom('admin', 'admin', 'admin', 'admin', 'admin', 'viewer', 'none', 'wrong', 'malformed'),
    contentType: fc.constantFrom('application/json', 'application/json', 'application/json', 'text/plain', undefined, 'application/json; charset=utf-16', 'application/x-www-form-urlencoded'),
    body,
    length: fc.constantFrom('true', 'true', 'true', 'true', 'true', 'true', 'true', 'true', 'over-limit', 'short', 'promise-more'),
  })
  .map(({ operation, otherMethod, value, query: q, token, contentType, body: b, length }) => ({
    method: otherMethod ?? operation.method,
    path: operation.path.replace(/\{[^}]+\}/g, value) + q,
    template: otherMethod ? undefined : operation.path,
    token: token,
    contentType,
    body: b,
    length: b === undefined && length !== 'over-limit' ? 'true' : (length),
  }));

describe('fuzzing the running api: no 5xx but the documented ones, every error in the documented shape, no secret in any answer', () => {
  const scope = new SuiteScope();
  let stack: Stack;
  let port: number;

  before(async () => {
    stack = await Stack.start(scope, {
      env: { CHANGO_BACKUP_ATTEMPTS: '1' },
      apiEnv: {
        CHANGO_RUN_WAIT_MS: '0',
        CHANGO_API_REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS),
        CHANGO_API_HEADERS_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS),
        // Wrong tokens are part of the input; throttling them would turn the rest into 429s (it has its own test).
        CHANGO_AUTH_FAILURE_LIMIT: '1000000',
      },
    });
    port = Number(new URL(stack.baseUrl).port);
  });
  after(() => scope.run());

  function raw(p: Probe): string {
    const headers = [`${p.method} ${p.path} HTTP/1.1`, 'Host: 127.0.0.1', 'Connection: close'];
    const token = { admin: stack.adminToken, viewer: stack.viewerToken, none: undefined, wrong: 'chb_not-a-real-token', malformed: undefined }[p.token];
    if (token) headers.push(`Authorization: Bearer ${token}`);
    if (p.token === 'malformed') headers.push('Authorization: Basic Zm9vOmJhcg==');
    if (p.contentType) headers.push(`Content-Type: ${p.contentType}`);
    const bytes = Buffer.from(p.body ?? '', 'utf8');
    const declared = { true: bytes.length, 'over-limit': BODY_LIMIT + 1 + bytes.length, short: Math.floor(bytes.length / 2), 'promise-more': bytes.length + 10 }[p.length];
    if (p.body !== undefined || p.length === 'over-limit') headers.push(`Content-Length: ${declared}`);
    return `${headers.join('\r\n')}\r\n\r\n${p.body ?? ''}`;
  }

  test(`${RUNS} generated requests (seed ${SEED})`, async () => {
    const statuses = new Map<string, number>();
    const secrets = [stack.adminToken, stack.viewerToken, ...SECRETS];
    console.log(`# fuzz seed ${SEED} (replay: CHANGO_FUZZ_SEED=${SEED})`);
    const property = fc.asyncProperty(probe, async (p) => {
      const answer = await rawExchange(port, [raw(p)], { giveUpMs: SAFETY_NET_MS });
      const status = answer.status;
      statuses.set(String(status ?? 'none'), (statuses.get(String(status ?? 'none')) ?? 0) + 1);
      assert.ok(status !== undefined, `an answer came (${p.method} ${p.path.slice(0, 80)})`);
      for (const secret of secrets) assert.ok(!answer.text.includes(secret), 'no secret in the answer');
      if (status >= 500) assert.ok(status === 502 || status === 503, `a ${status} is not one of the documented 5xx: ${answer.text.slice(0, 300)}`);
      if (status < 400) return;
      const json = rawJson(answer);
      assert.ok(json, `the ${status} answer is JSON: ${answer.text.slice(0, 300)}`);
      assert.equal(typeof json.message, 'string', 'the error says what went wrong');
      const documented = p.template ? document.paths[p.template]?.[p.method.toLowerCase()]?.responses[String(status)] : undefined;
      const schema = documented ? resolveResponse(documented).content?.['application/json']?.schema : undefined;
      const validate = schema ? validatorFor(schema) : componentValidator('Error');
      assert.ok(validate(json), `the ${status} body matches ${schema ? 'the documented schema' : 'Error'}: ${JSON.stringify(json).slice(0, 300)}`);
    });
    // Half the requests before any destination is saved (409s, 404s), half after one whose S3 is a closed port (502s).
    await fc.assert(property, { numRuns: Math.ceil(RUNS / 2), seed: SEED, endOnFailure: true, includeErrorInReport: true });
    const saved = await stack.request('PUT', '/admin/api/backup/config', { body: JSON.parse(fc.sample(validDestination, { seed: SEED, numRuns: 1 })[0]!) });
    assert.equal(saved.status, 200, JSON.stringify(saved.body));
    await fc.assert(property, { numRuns: Math.floor(RUNS / 2), seed: SEED + 1, endOnFailure: true, includeErrorInReport: true });
    console.log(`# fuzz status counts: ${[...statuses.entries()].sort().map(([s, n]) => `${s}: ${n}`).join(', ')}`);
    const healthy = await stack.request('GET', '/healthz', { token: null });
    assert.equal(healthy.status, 200, 'the api still answers');
    assert.ok(!stack.transcript().includes(stack.adminToken) && !SECRETS.some((secret) => stack.transcript().includes(secret)), 'no secret in any log');
  });
});
