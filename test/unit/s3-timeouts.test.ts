import assert from 'node:assert/strict';
import * as http from 'node:http';
import { Socket, type AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { describe, test } from 'node:test';
import {
  BoundedHttpAgent,
  DEFAULT_S3_TIMEOUTS,
  describeS3Error,
  resolveS3Timeouts,
  S3_TIMEOUT_CODE,
  S3Failure,
  s3TimeoutsFromEnv,
  S3TimeoutError,
  transferDeadlineMs,
} from '@chango/s3';
import { formatDuration } from '@chango/telemetry';
import { settled } from '../../testkit/liveness.js';

const ctx = { endpoint: 'http://127.0.0.1:4567', bucket: 'backups', accessKey: 'AKIA', operation: 'uploading prod/chango-20250101T000000Z-x.tar.gz' };

describe('s3TimeoutsFromEnv', () => {
  test('defaults: connect 10 s, idle 30 s, call 120 s, 256 KiB/s', () => {
    const expected = { connectMs: 10_000, idleMs: 30_000, callMs: 120_000, minBytesPerSec: 262_144 };
    assert.deepEqual(s3TimeoutsFromEnv({}), expected);
    assert.deepEqual({ ...DEFAULT_S3_TIMEOUTS }, expected);
    // An empty variable counts as unset, as for every other setting.
    assert.deepEqual(s3TimeoutsFromEnv({ CHANGO_S3_IDLE_TIMEOUT_MS: '' }), expected);
  });

  test('reads each variable', () => {
    assert.deepEqual(
      s3TimeoutsFromEnv({
        CHANGO_S3_CONNECT_TIMEOUT_MS: '2500',
        CHANGO_S3_IDLE_TIMEOUT_MS: '45000',
        CHANGO_S3_CALL_TIMEOUT_MS: '600000',
        CHANGO_S3_MIN_BYTES_PER_SEC: '1048576',
      }),
      { connectMs: 2500, idleMs: 45_000, callMs: 600_000, minBytesPerSec: 1_048_576 },
    );
  });

  test('a bad value is refused with the name of its variable', () => {
    assert.throws(() => s3TimeoutsFromEnv({ CHANGO_S3_IDLE_TIMEOUT_MS: 'soon' }), /CHANGO_S3_IDLE_TIMEOUT_MS must be a whole number .*"soon"/);
    assert.throws(() => s3TimeoutsFromEnv({ CHANGO_S3_CONNECT_TIMEOUT_MS: '0' }), /CHANGO_S3_CONNECT_TIMEOUT_MS/);
    assert.throws(() => s3TimeoutsFromEnv({ CHANGO_S3_CALL_TIMEOUT_MS: '-5' }), /CHANGO_S3_CALL_TIMEOUT_MS/);
    assert.throws(() => s3TimeoutsFromEnv({ CHANGO_S3_MIN_BYTES_PER_SEC: '1.5' }), /CHANGO_S3_MIN_BYTES_PER_SEC/);
  });

  test('resolveS3Timeouts fills in defaults and refuses a bound that is not positive', () => {
    assert.deepEqual(resolveS3Timeouts({ idleMs: 1500 }), { ...DEFAULT_S3_TIMEOUTS, idleMs: 1500 });
    assert.throws(() => resolveS3Timeouts({ callMs: 0 }), /callMs must be a positive number/);
  });
});

describe('bounds in words', () => {
  test('a bulk transfer gets max(call timeout, size at the minimum rate)', () => {
    assert.equal(transferDeadlineMs(1024, DEFAULT_S3_TIMEOUTS), 120_000, 'small: the call timeout');
    assert.equal(transferDeadlineMs(75 * 1024 * 1024, DEFAULT_S3_TIMEOUTS), 300_000, '75 MiB at 256 KiB/s: 300 s');
  });

  test('durations read as an operator writes them', () => {
    assert.equal(formatDuration(30_000), '30 s');
    assert.equal(formatDuration(1500), '1.5 s');
    assert.equal(formatDuration(120_000), '2 min');
    assert.equal(formatDuration(750), '750 ms');
  });

  test('a bound hit is a transient, retryable S3Failure naming endpoint, operation, bound and its variable', () => {
    const idle = describeS3Error(new S3TimeoutError('idle', 30_000), ctx);
    assert.ok(idle instanceof S3Failure);
    assert.equal(idle.kind, 'transient');
    assert.equal(idle.retryable, true);
    assert.equal(idle.code, S3_TIMEOUT_CODE);
    assert.equal(
      idle.message,
      'S3 endpoint http://127.0.0.1:4567 moved no byte for 30 s while uploading prod/chango-20250101T000000Z-x.tar.gz (CHANGO_S3_IDLE_TIMEOUT_MS): the network or the server stopped answering',
    );
    assert.ok(idle.cause instanceof S3TimeoutError && idle.cause.bound === 'idle' && idle.cause.ms === 30_000);

    const listing = { ...ctx, operation: 'listing backups' };
    assert.match(describeS3Error(new S3TimeoutError('connect', 10_000), listing).message, /^no connection to S3 endpoint http:\/\/127\.0\.0\.1:4567 within 10 s while listing backups \(CHANGO_S3_CONNECT_TIMEOUT_MS\)/);
    assert.match(describeS3Error(new S3TimeoutError('call', 120_000), listing).message, /^S3 endpoint http:\/\/127\.0\.0\.1:4567 did not finish listing backups within 2 min \(CHANGO_S3_CALL_TIMEOUT_MS\)/);
    const transfer = describeS3Error(new S3TimeoutError('transfer', 300_000, { bytes: 78_643_200, minBytesPerSec: 262_144 }), ctx);
    assert.match(transfer.message, /did not finish uploading \S+ within 5 min, the deadline for 78643200 bytes at 262144 B\/s \(CHANGO_S3_MIN_BYTES_PER_SEC; never less than CHANGO_S3_CALL_TIMEOUT_MS\)/);
    for (const failure of [idle, transfer]) assert.equal(failure.kind, 'transient');
  });

  test('a transient failure does not promise a retry: that is the job\'s business', () => {
    const reset = describeS3Error(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }), ctx);
    assert.equal(reset.kind, 'transient');
    assert.equal(reset.retryable, true);
    assert.doesNotMatch(reset.message, /retr/i);
    assert.match(reset.message, /^S3 endpoint http:\/\/127\.0\.0\.1:4567 failed for now while uploading \S+ \(ECONNRESET: socket hang up\)$/);
  });
});

/** An agent whose TCP connect never completes: a host that drops SYNs (no loopback server can do that for us). */
class NeverConnects extends BoundedHttpAgent {
  readonly made: Socket[] = [];
  protected override connect(): Duplex {
    const socket = new Socket();
    // A socket still connecting: writes queue until 'connect', which never comes.
    // (`connecting` is read-only in the types, a plain field in Node.)
    Object.assign(socket, { connecting: true });
    this.made.push(socket);
    return socket;
  }
}

function get(agent: http.Agent, url: string): Promise<http.IncomingMessage> {
  return new Promise((resolve, reject) => {
    http.get(url, { agent }, resolve).on('error', reject);
  });
}

describe('BoundedHttpAgent', () => {
  test('a connect that never completes is destroyed at the connect bound with a ChangoS3Timeout error', async () => {
    const agent = new NeverConnects({ connectMs: 300, idleMs: 60_000 });
    const started = Date.now();
    const err = await get(agent, 'http://192.0.2.1:9/never').then(
      () => assert.fail('a request over a connection that never connected answered'),
      (e: unknown) => e,
    );
    const elapsed = Date.now() - started;
    assert.ok(err instanceof S3TimeoutError, `got ${String(err)}`);
    assert.equal(err.code, S3_TIMEOUT_CODE);
    assert.equal(err.bound, 'connect');
    assert.equal(err.ms, 300);
    assert.ok(elapsed >= 250, `not before the bound (${elapsed} ms)`);
    assert.ok(elapsed < 5 * 300 + 2000, `soon after the bound (${elapsed} ms)`);
    assert.equal(agent.made.length, 1);
    assert.ok(agent.made[0]?.destroyed, 'the socket is destroyed');
  });

  test('a server that accepts and never answers: destroyed at the idle bound; a free keep-alive socket closes quietly at it', async (t) => {
    const server = http.createServer((req, res) => {
      if (req.url === '/answer') res.end('ok');
      // Anything else: never answered.
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
    t.after(() => server.closeAllConnections());
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const idleMs = 300;
    const agent = new BoundedHttpAgent({ connectMs: 1000, idleMs });
    t.after(() => agent.destroy());

    const answered = await get(agent, `${url}/answer`);
    answered.resume();
    await new Promise((resolve) => answered.once('end', resolve));
    assert.equal(answered.statusCode, 200);
    // Idle in the pool for longer than the bound: closed by the agent, no error anywhere. Polled, so this ends as soon
    // as it is gone; bounded like the other waits here.
    await settled(async () => Object.keys(agent.freeSockets).length === 0 && Object.keys(agent.sockets).length === 0, 5 * idleMs + 2000, 20);
    assert.deepEqual(Object.keys(agent.freeSockets), [], 'the idle free socket was closed');

    const started = Date.now();
    const err = await get(agent, `${url}/silence`).then(
      () => assert.fail('answered'),
      (e: unknown) => e,
    );
    const elapsed = Date.now() - started;
    assert.ok(err instanceof S3TimeoutError && err.bound === 'idle' && err.ms === idleMs, `got ${String(err)}`);
    assert.ok(elapsed >= idleMs - 50 && elapsed < 5 * idleMs + 2000, `at the idle bound (${elapsed} ms)`);
    assert.equal(agent.connectionsOpened, 2);
  });
});
