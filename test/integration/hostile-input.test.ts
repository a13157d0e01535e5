import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { SuiteScope } from '../../testkit/fixtures.js';
import { SAFETY_NET_MS, TIMER_SLACK_MS, withinLoad } from '../../testkit/liveness.js';
import { rawExchange, rawJson } from '../../testkit/raw-http.js';
import { Stack } from '../../testkit/stack.js';

/** The bounds this api runs with (README "Limits"), small so the tests are quick; what is asserted is the bound itself. */
const HEADERS_TIMEOUT_MS = 1_000;
const REQUEST_TIMEOUT_MS = 2_000;
/** Node checks the bounds this often (apps/api/src/main.ts: connectionsCheckingInterval). */
const CHECK_INTERVAL_MS = 1_000;
const FAILURE_LIMIT = 5;
const FAILURE_WINDOW_MS = 5_000;
const BODY_LIMIT = 64 * 1024;

describe('hostile input: undecodable paths, bodies that lie, slow clients, guessed tokens (real api, worker, Redis)', () => {
  const scope = new SuiteScope();
  let stack: Stack;
  let port: number;

  before(async () => {
    stack = await Stack.start(scope, {
      apiEnv: {
        CHANGO_API_HEADERS_TIMEOUT_MS: String(HEADERS_TIMEOUT_MS),
        CHANGO_API_REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS),
        CHANGO_AUTH_FAILURE_LIMIT: String(FAILURE_LIMIT),
        CHANGO_AUTH_FAILURE_WINDOW_MS: String(FAILURE_WINDOW_MS),
        // The tests play several clients from one host: X-Forwarded-For from loopback names them.
        CHANGO_API_TRUST_PROXY: 'loopback',
      },
    });
    port = Number(new URL(stack.baseUrl).port);
  });
  after(() => scope.run());

  const request = (head: string, token: string | null = stack.adminToken, extra = '') =>
    `${head} HTTP/1.1\r\nHost: 127.0.0.1\r\n${token ? `Authorization: Bearer ${token}\r\n` : ''}${extra}`;

  test('a path that is not valid percent-encoding is a 400 in the JSON error shape, never a 500', async () => {
    for (const id of ['%ff%fe', '%Y-2026', '%:', 'abc%', '%c3%28']) {
      const answer = await rawExchange(port, [request(`GET /admin/api/backup/jobs/${id}`, stack.viewerToken, 'Connection: close\r\n\r\n')], { giveUpMs: SAFETY_NET_MS });
      assert.equal(answer.status, 400, `${id}: ${answer.text}`);
      assert.deepEqual(rawJson(answer), {
        error: 'invalid_path',
        message: 'the path is not valid percent-encoding (a % must be followed by two hex digits of UTF-8)',
        fields: [{ field: '(path)', message: 'is not valid percent-encoding' }],
      });
    }
    assert.doesNotMatch(stack.api.stdout, /"level":50/, 'nothing logged as a failure of the api');
  });

  test('a Content-Length over the limit is refused with 413 at once, before the body comes, and the connection is closed', async () => {
    for (const token of [stack.adminToken, null]) {
      // 7 bytes of a body that claims 9,999,999: waiting for the rest would hold the connection until the request bound (408).
      const answer = await rawExchange(port, [request('PUT /admin/api/backup/config', token, 'Content-Type: application/json\r\nContent-Length: 9999999\r\n\r\n{"a":1}')], { giveUpMs: SAFETY_NET_MS });
      assert.equal(answer.status, 413, answer.text);
      assert.equal(rawJson(answer)?.error, 'body_too_large');
      assert.match(String(rawJson(answer)?.message), new RegExp(`declared as 9999999 bytes; at most ${BODY_LIMIT}`));
      assert.equal(answer.closedByServer, true);
    }
  });

  test('a client that trickles its headers is cut off at the headers bound', async () => {
    // One byte every 100 ms of a request that would take a minute to send.
    const bytes = [...request('GET /admin/api/backup/status', stack.viewerToken, `X-Padding: ${'x'.repeat(600)}\r\n\r\n`)];
    const answer = await rawExchange(port, bytes, { pauseMs: 100, giveUpMs: withinLoad(HEADERS_TIMEOUT_MS) });
    assert.equal(answer.closedByServer, true, 'the server closed the connection');
    assert.ok(answer.ms <= HEADERS_TIMEOUT_MS + CHECK_INTERVAL_MS + TIMER_SLACK_MS, `closed after ${Math.round(answer.ms)} ms (bound ${HEADERS_TIMEOUT_MS} ms, checked every ${CHECK_INTERVAL_MS} ms)`);
  });

  test('a body that stops coming is cut off at the request bound, and a connection that sends nothing at the headers bound', async () => {
    const stalled = await rawExchange(port, [request('PUT /admin/api/backup/config', stack.adminToken, 'Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"a":1}')], { giveUpMs: withinLoad(REQUEST_TIMEOUT_MS) });
    assert.equal(stalled.closedByServer, true);
    assert.equal(stalled.status, 408, stalled.text);
    assert.ok(stalled.ms <= REQUEST_TIMEOUT_MS + CHECK_INTERVAL_MS + TIMER_SLACK_MS, `closed after ${Math.round(stalled.ms)} ms (bound ${REQUEST_TIMEOUT_MS} ms)`);

    const silent = await rawExchange(port, [], { giveUpMs: withinLoad(HEADERS_TIMEOUT_MS) });
    assert.equal(silent.closedByServer, true);
    assert.ok(silent.ms <= HEADERS_TIMEOUT_MS + CHECK_INTERVAL_MS + TIMER_SLACK_MS, `closed after ${Math.round(silent.ms)} ms (bound ${HEADERS_TIMEOUT_MS} ms)`);
    assert.equal((await stack.request('GET', '/healthz', { token: null })).status, 200, 'the api still answers');
  });

  test('wrong tokens from one address are throttled (429, Retry-After) until the window passes; other addresses and their valid tokens are not; counted; never logged', async () => {
    const from = (address: string) => ({ 'X-Forwarded-For': address });
    const guesser = '10.9.9.9';
    const guesses = Array.from({ length: FAILURE_LIMIT }, (_, i) => `chb_guess-number-${i}-${'q'.repeat(20)}`);
    for (const guess of guesses) {
      assert.equal((await stack.request('GET', '/admin/api/backup/status', { token: guess, headers: from(guesser) })).status, 401);
    }
    const locked = await stack.request<{ error: string; message: string }>('GET', '/admin/api/backup/status', { token: 'chb_one-more-guess', headers: from(guesser) });
    assert.equal(locked.status, 429);
    assert.equal(locked.body.error, 'too_many_failed_attempts');
    const retryAfter = Number(locked.headers.get('retry-after'));
    assert.ok(retryAfter >= 1 && retryAfter <= FAILURE_WINDOW_MS / 1000, `Retry-After: ${retryAfter}`);
    // Locked out before the token is looked at: even a valid one learns nothing from this address.
    assert.equal((await stack.request('GET', '/admin/api/backup/status', { token: stack.adminToken, headers: from(guesser) })).status, 429);
    // Another client is not slowed, and neither is a request without a token (health, metrics).
    assert.equal((await stack.request('GET', '/admin/api/backup/status', { token: stack.viewerToken, headers: from('10.1.1.1') })).status, 200);
    assert.equal((await stack.request('GET', '/healthz', { token: null, headers: from(guesser) })).status, 200);

    // The window passes (it began with the first wrong token): the address may try again.
    await new Promise((resolve) => setTimeout(resolve, retryAfter * 1000 + TIMER_SLACK_MS));
    assert.equal((await stack.request('GET', '/admin/api/backup/status', { token: stack.viewerToken, headers: from(guesser) })).status, 200);

    const metrics = await stack.request<string>('GET', '/metrics', { token: null });
    assert.match(metrics.body, new RegExp(`^chango_backup_auth_failures_total ${FAILURE_LIMIT}$`, 'm'), 'every wrong token checked is counted');
    assert.match(metrics.body, /^chango_backup_auth_throttled_total 2$/m);
    assert.match(stack.api.stdout, /authentication throttled: too many wrong tokens from this address/);
    assert.match(stack.api.stdout, /"address":"10\.9\.9\.9"/);
    for (const guess of [...guesses, 'chb_one-more-guess']) assert.ok(!stack.transcript().includes(guess), 'a presented token is never logged nor answered');
  });
});
