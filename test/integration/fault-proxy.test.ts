import assert from 'node:assert/strict';
import { createServer, connect, type AddressInfo, type Socket } from 'node:net';
import { test, type TestContext } from 'node:test';
import { FaultProxy } from '../../testkit/fault-proxy.js';

/**
 * The chaos suite's fault proxy against a local echo server: each mode, each switched while a
 * connection is open. Every wait below derives from these settings, with margins wide enough
 * for two busy cores: a quiet window long enough that a byte that was going to arrive would
 * have, and bounds several times what the arithmetic says.
 */
const QUIET_MS = 500; // "nothing more arrives": loopback delivers in well under 1 ms
const ARRIVE_MS = 5_000; // "it arrives": on loopback, plus any pacing the test asks for
const SLOW_RATE = 20_000; // bytes per second for the slow mode
const MARGIN = 4; // upper bounds: this many times the computed duration, plus ARRIVE_MS

/** Server-side sockets of the echo servers, so a test can close one from the server's end. */
const serverSockets = new Set<Socket>();

async function echoServer(t: TestContext): Promise<string> {
  const sockets = serverSockets;
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
    socket.pipe(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(
    () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  );
  return `tcp://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function startProxy(t: TestContext): Promise<FaultProxy> {
  const proxy = await FaultProxy.start(await echoServer(t));
  t.after(() => proxy.close());
  return proxy;
}

/** A client that keeps what it got and how it ended. */
class Client {
  received = Buffer.alloc(0);
  error: NodeJS.ErrnoException | undefined;
  closed = false;

  private constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => (this.received = Buffer.concat([this.received, chunk])));
    socket.on('error', (err) => (this.error = err));
    socket.on('close', () => (this.closed = true));
  }

  static async open(t: TestContext, proxy: FaultProxy): Promise<Client> {
    const socket = connect(proxy.port, '127.0.0.1');
    const client = new Client(socket);
    t.after(() => socket.destroy());
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    return client;
  }

  send(bytes: Buffer | string): void {
    this.socket.write(bytes);
  }

  async waitUntil(what: string, done: () => boolean, timeoutMs = ARRIVE_MS): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!done()) {
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (received ${this.received.length} B, closed ${this.closed}, error ${this.error?.code})`);
      await sleep(10);
    }
  }

  async waitForBytes(n: number, timeoutMs = ARRIVE_MS): Promise<void> {
    await this.waitUntil(`${n} bytes`, () => this.received.length >= n, timeoutMs);
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const bytes = (n: number, fill = 0x61) => Buffer.alloc(n, fill);

test('pass: bytes go through both ways untouched and are counted', async (t) => {
  const proxy = await startProxy(t);
  const client = await Client.open(t, proxy);
  const payload = Buffer.from([...Array(5000).keys()].map((i) => i % 251));
  client.send(payload);
  await client.waitForBytes(payload.length);
  assert.deepEqual(client.received, payload);
  const stats = proxy.stats();
  assert.equal(stats.up.forwarded, payload.length);
  assert.equal(stats.down.forwarded, payload.length);
  assert.equal(stats.up.swallowed + stats.down.swallowed, 0);
  assert.equal(stats.connections.accepted, 1);
  assert.equal(stats.connections.open, 1);
});

test('cut: an open connection is reset; new ones are reset at once; pass lets new ones through again', async (t) => {
  const proxy = await startProxy(t);
  const open = await Client.open(t, proxy);
  open.send('hello');
  await open.waitForBytes(5);

  proxy.set({ mode: 'cut' });
  await open.waitUntil('the open connection to be reset', () => open.closed);
  assert.equal(open.error?.code, 'ECONNRESET', 'an RST, not a clean close');

  // A new connection is accepted by the kernel, then reset before a byte is answered.
  const late = connect(proxy.port, '127.0.0.1');
  const lateError = await new Promise<NodeJS.ErrnoException | undefined>((resolve) => {
    late.on('error', (err) => resolve(err));
    late.on('close', () => resolve(undefined));
    late.on('connect', () => late.write('anyone?'));
  });
  assert.equal(lateError?.code, 'ECONNRESET');
  assert.ok(proxy.stats().connections.reset >= 2);

  proxy.set({ mode: 'pass' });
  const again = await Client.open(t, proxy);
  again.send('back');
  await again.waitForBytes(4);
  assert.equal(again.received.toString(), 'back');
});

test('blackhole: an open connection stays open and silent; after pass it stays broken, new ones work', async (t) => {
  const proxy = await startProxy(t);
  const open = await Client.open(t, proxy);
  open.send('one');
  await open.waitForBytes(3);

  proxy.set({ mode: 'blackhole' });
  open.send('two');
  await sleep(QUIET_MS);
  assert.equal(open.received.toString(), 'one', 'nothing comes back');
  assert.equal(open.closed, false, 'the connection stays open');
  assert.equal(proxy.stats().up.swallowed, 3);

  // Opened during the blackhole: accepted, silent.
  const during = await Client.open(t, proxy);
  during.send('three');
  await sleep(QUIET_MS);
  assert.equal(during.received.length, 0);
  assert.equal(during.closed, false);

  proxy.set({ mode: 'pass' });
  open.send('four');
  during.send('five');
  await sleep(QUIET_MS);
  assert.equal(open.received.toString(), 'one', 'a connection that lost bytes stays broken');
  assert.equal(during.received.length, 0);
  const fresh = await Client.open(t, proxy);
  fresh.send('six');
  await fresh.waitForBytes(3);
  assert.equal(fresh.received.toString(), 'six');
  assert.equal(proxy.stats().up.swallowed, 'two'.length + 'three'.length + 'four'.length + 'five'.length);
});

test('slow: an open connection is capped at the rate; switching back to pass speeds it up', async (t) => {
  const proxy = await startProxy(t);
  const client = await Client.open(t, proxy);
  client.send('x');
  await client.waitForBytes(1);

  proxy.set({ mode: 'slow', bytesPerSecond: SLOW_RATE });
  const n = SLOW_RATE * 1.5; // 1.5 s each way; the two directions pipeline
  const expectedMs = (n / SLOW_RATE) * 1000;
  const started = Date.now();
  client.send(bytes(n));
  await client.waitForBytes(1 + n, expectedMs * MARGIN + ARRIVE_MS);
  const took = Date.now() - started;
  assert.ok(took >= expectedMs * 0.8, `${n} B at ${SLOW_RATE} B/s took ${took} ms, expected at least ${expectedMs * 0.8}`);

  // 20 s worth at the slow rate: pass after a moment must finish it far sooner.
  const big = SLOW_RATE * 20;
  const before = client.received.length;
  client.send(bytes(big, 0x62));
  await sleep(QUIET_MS);
  assert.ok(client.received.length - before < big / 4, 'still slow');
  proxy.set({ mode: 'pass' });
  await client.waitForBytes(before + big, ARRIVE_MS * MARGIN);
  assert.equal(proxy.stats().up.forwarded, 1 + n + big);
});

test('stall-after (up, overall budget): N more bytes reach the server, then nothing; a later connection stalls at once', async (t) => {
  const proxy = await startProxy(t);
  const a = await Client.open(t, proxy);
  a.send('ab');
  await a.waitForBytes(2);

  proxy.set({ mode: 'stall-after', bytes: 600 });
  a.send(bytes(1000));
  await a.waitForBytes(2 + 600);
  await sleep(QUIET_MS);
  assert.equal(a.received.length, 2 + 600, 'exactly the budget went through (and was echoed: the other direction flows)');
  assert.equal(a.closed, false);
  let stats = proxy.stats();
  assert.equal(stats.up.forwarded, 2 + 600);
  assert.equal(stats.up.swallowed, 400);

  const b = await Client.open(t, proxy);
  b.send('late');
  await sleep(QUIET_MS);
  assert.equal(b.received.length, 0, 'the overall budget is spent');
  stats = proxy.stats();
  assert.equal(stats.up.swallowed, 404);

  proxy.set({ mode: 'pass' });
  const c = await Client.open(t, proxy);
  c.send('ok');
  await c.waitForBytes(2);
});

test('stall-after (down): the server gets everything, the client stops hearing after N bytes', async (t) => {
  const proxy = await startProxy(t);
  const a = await Client.open(t, proxy);
  proxy.set({ mode: 'stall-after', bytes: 500, direction: 'down' });
  a.send(bytes(1000));
  await a.waitForBytes(500);
  await sleep(QUIET_MS);
  assert.equal(a.received.length, 500);
  const stats = proxy.stats();
  assert.equal(stats.up.forwarded, 1000);
  assert.equal(stats.down.received, 1000);
  assert.equal(stats.down.forwarded, 500);
  assert.equal(stats.down.swallowed, 500);
});

test('an upstream that refuses: the client is reset', async (t) => {
  // A port with nothing listening: take a free one and close it.
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  const proxy = await FaultProxy.start(`tcp://127.0.0.1:${port}`);
  t.after(() => proxy.close());
  const client = await Client.open(t, proxy);
  client.send('hi');
  await client.waitUntil('the reset', () => client.closed);
  assert.equal(client.error?.code, 'ECONNRESET');
});

test('tap: sees each chunk before its fate is decided, so it can act at an exact point', async (t) => {
  const proxy = await startProxy(t);
  const seen: string[] = [];
  proxy.tap(({ direction, connection, chunk }) => {
    seen.push(`${direction}#${connection}:${chunk.toString()}`);
    // A mode set from the tap applies to the very chunk that triggered it.
    if (direction === 'up' && chunk.includes('STOP')) proxy.set({ mode: 'blackhole' });
  });
  const client = await Client.open(t, proxy);
  client.send('go');
  await client.waitForBytes(2);
  client.send('STOP');
  await sleep(QUIET_MS);
  assert.equal(client.received.toString(), 'go', 'the chunk that tripped the tap was swallowed');
  assert.deepEqual(seen, ['up#1:go', 'down#1:go', 'up#1:STOP']);
  assert.equal(proxy.stats().up.swallowed, 4);
});

test('close: ends every connection, a broken half-closed one too, and stops listening', async (t) => {
  const proxy = await FaultProxy.start(await echoServer(t));
  const client = await Client.open(t, proxy);
  proxy.set({ mode: 'blackhole' });
  client.send('lost');
  client.socket.end(); // its FIN is swallowed with the bytes: the upstream side never hears of it
  await sleep(QUIET_MS);
  const started = Date.now();
  await proxy.close();
  assert.ok(Date.now() - started < ARRIVE_MS, 'close did not wait for the broken connection');
  await client.waitUntil('the client to be closed', () => client.closed);
  const refused = await new Promise<NodeJS.ErrnoException | undefined>((resolve) => {
    const s = connect(proxy.port, '127.0.0.1');
    s.on('error', resolve);
    s.on('connect', () => {
      s.destroy();
      resolve(undefined);
    });
  });
  assert.equal(refused?.code, 'ECONNREFUSED');
});

test('blackhole: a connection that lived through it is dead for good, even after pass: the server giving up is not heard', async (t) => {
  const proxy = await startProxy(t);
  const client = await Client.open(t, proxy);
  client.send('hi');
  await client.waitForBytes(2);
  proxy.set({ mode: 'blackhole' });
  await sleep(QUIET_MS);
  proxy.set({ mode: 'pass' });
  client.send('anyone?');
  for (const s of serverSockets) s.destroy(); // the server gives up on it (a request timeout): its FIN goes nowhere
  await sleep(QUIET_MS);
  assert.equal(client.closed, false, 'no FIN or RST reached the client');
  assert.equal(client.received.toString(), 'hi');
  assert.equal(proxy.stats().connections.open, 1);
  client.socket.destroy(); // only the client's own timeout ends it
  await client.waitUntil('the client to be closed', () => client.closed);
});

test('pass: the server closing reaches the client (a clean end and an abrupt one)', async (t) => {
  const proxy = await startProxy(t);
  const clean = await Client.open(t, proxy);
  clean.send('x');
  await clean.waitForBytes(1);
  for (const s of serverSockets) s.end();
  await clean.waitUntil('the end to reach the client', () => clean.socket.readableEnded);
  const abrupt = await Client.open(t, proxy);
  abrupt.send('y');
  await abrupt.waitForBytes(1);
  for (const s of serverSockets) s.resetAndDestroy();
  await abrupt.waitUntil('the reset to reach the client', () => abrupt.closed);
  assert.equal(abrupt.error?.code, 'ECONNRESET');
});
