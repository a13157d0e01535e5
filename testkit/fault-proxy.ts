/**
 * A fault-injecting TCP proxy in front of a real server (Ceph RGW, Redis), for the chaos suite
 * (`npm run chaos`) and any test that needs a network that misbehaves on cue. It forwards bytes
 * untouched (SigV4 is still checked by the server behind it) until told otherwise; a mode set
 * with `set()` takes effect at once, on connections already open as well as new ones.
 *
 * Modes, and what they model:
 * - `pass`: a healthy link.
 * - `cut`: every open connection is reset (RST, `socket.resetAndDestroy()`), and so is every new
 *   one as soon as it is accepted: a peer that crashed, a firewall that rejects.
 * - `blackhole`: connections stay open and every byte, both ways, is swallowed: a partition where
 *   packets vanish and nothing is refused. A connection open during a blackhole is DEAD for good,
 *   both ways, even after `pass` — as when a stateful middlebox (NAT, firewall) lost it: nothing
 *   on it passes again, not even the server's FIN or RST when the server gives up on it. Only a
 *   client-side timeout ends such a request (a server's own request timeout must not rescue a
 *   client that has none). New connections after `pass` work.
 * - `slow`: each direction is a link of `bytesPerSecond` shared by all connections (a slow WAN
 *   link, not a per-flow shaper), paced in slices of 1/20 s so a mode change lands within 50 ms;
 *   it buffers about a second of the link, so a sender sees its bytes move at the link's rate.
 * - `stall-after`: `bytes` more bytes go through in `direction` (default `up`, client→server),
 *   then that direction swallows everything; the other direction keeps flowing, so a server that
 *   gives up and answers is still heard. The budget is OVERALL, shared by all connections and
 *   counted from the moment the mode is set — "the upload stops after N more bytes" whichever
 *   connection carries them; a connection opened after the budget is spent stalls at once.
 *   `direction: 'down'` stalls server→client instead (a download that stops mid-way).
 *
 * A direction of a connection that has lost bytes (a stall) is BROKEN for good: its byte stream
 * has a hole, so forwarding later bytes would hand the peer garbage; switching back to `pass`
 * heals new connections only. A side that closes (FIN, RST) over a swallowing direction is not
 * heard of either. The other direction of a stalled connection keeps working: a server that
 * gives up on a stalled upload and answers (RGW: after its request timeout) is heard.
 *
 * Counters (`stats()`): per direction the bytes received from the source, forwarded, and
 * swallowed; connections accepted, open, and reset by the proxy.
 */
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';

export type Direction = 'up' | 'down';

export type FaultMode =
  | { mode: 'pass' }
  | { mode: 'cut' }
  | { mode: 'blackhole' }
  | { mode: 'slow'; bytesPerSecond: number }
  | { mode: 'stall-after'; bytes: number; direction?: Direction };

export interface DirectionCounters {
  received: number;
  forwarded: number;
  swallowed: number;
}

/** A chunk as it arrives from its source, before the mode decides its fate (see `tap`). */
export interface TappedChunk {
  direction: Direction;
  /** Numbers the proxy's connections in accept order, from 1. */
  connection: number;
  chunk: Buffer;
}

export interface ProxyStats {
  /** client → server */
  up: DirectionCounters;
  /** server → client */
  down: DirectionCounters;
  connections: { accepted: number; open: number; reset: number };
}

/** Bytes queued in one direction of one connection before its source is paused (backpressure); resumed at half. */
const HIGH_WATER = 1024 * 1024;
/**
 * Slow mode queues about a second of the link (at least this, at most HIGH_WATER): a source paused
 * at 1 MiB and resumed at 512 KiB would see nothing move for 512 KiB at the link's rate (4 s at
 * 128 KiB/s, 32 s at 16 KiB/s) — a stall, not a slow link, and a client's idle bound would end it.
 */
const SLOW_HIGH_WATER_MIN = 64 * 1024;
const DEFAULT_PORTS: Record<string, number> = { 'http:': 80, 'https:': 443, 'redis:': 6379 };
/** Slow mode paces in slices of this fraction of a second. */
const SLICES_PER_SECOND = 20;

export function describeMode(m: FaultMode): string {
  switch (m.mode) {
    case 'slow':
      return `slow ${m.bytesPerSecond} B/s`;
    case 'stall-after':
      return `stall-after ${m.bytes} B ${m.direction ?? 'up'}`;
    default:
      return m.mode;
  }
}

export class FaultProxy {
  private current: FaultMode = { mode: 'pass' };
  /** stall-after: bytes still allowed through in the stalled direction (overall). */
  private stallBudget = 0;
  /** slow: when each direction's link is next free (ms since epoch). */
  private readonly linkFree: Record<Direction, number> = { up: 0, down: 0 };
  private readonly connections = new Set<Connection>();
  /** Every socket the proxy holds, whatever its connection's state: close() ends them all. */
  private readonly sockets = new Set<Socket>();
  private readonly counters: ProxyStats = {
    up: { received: 0, forwarded: 0, swallowed: 0 },
    down: { received: 0, forwarded: 0, swallowed: 0 },
    connections: { accepted: 0, open: 0, reset: 0 },
  };
  private readonly taps = new Set<(event: TappedChunk) => void>();
  private closed = false;

  private constructor(
    private readonly server: Server,
    readonly upstreamHost: string,
    readonly upstreamPort: number,
    /** The loopback port it listens on. */
    readonly port: number,
    readonly url: string,
  ) {}

  /** Starts a proxy on a free loopback port in front of `upstream` (`http://host:port`, `redis://host:port`). */
  static async start(upstream: string, initial: FaultMode = { mode: 'pass' }): Promise<FaultProxy> {
    const target = new URL(upstream);
    const port = Number(target.port) || DEFAULT_PORTS[target.protocol];
    if (!port) throw new Error(`fault proxy: the upstream ${upstream} has no port`);
    const server = createServer({ allowHalfOpen: true });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    server.unref();
    const address = server.address() as AddressInfo;
    const url = `${target.protocol}//127.0.0.1:${address.port}`;
    const proxy = new FaultProxy(server, target.hostname, port, address.port, url);
    proxy.set(initial);
    server.on('connection', (client) => proxy.accept(client));
    return proxy;
  }

  /**
   * `start`, with `close` handed to `scope` (a test's context, a SuiteScope, a chaos case's scope)
   * so the proxy and its connections end with the test that made it, pass or fail.
   */
  static async startIn(scope: { after(fn: () => unknown): void }, upstream: string, initial: FaultMode = { mode: 'pass' }): Promise<FaultProxy> {
    const proxy = await FaultProxy.start(upstream, initial);
    scope.after(() => proxy.close());
    return proxy;
  }

  get mode(): FaultMode {
    return this.current;
  }

  /** Switches the mode; it applies to open connections at once. */
  set(mode: FaultMode): void {
    if (mode.mode === 'slow' && !(mode.bytesPerSecond > 0)) throw new Error('fault proxy: slow needs bytesPerSecond > 0');
    if (mode.mode === 'stall-after' && !(mode.bytes >= 0)) throw new Error('fault proxy: stall-after needs bytes >= 0');
    this.current = mode;
    this.stallBudget = mode.mode === 'stall-after' ? mode.bytes : 0;
    const now = Date.now();
    this.linkFree.up = now;
    this.linkFree.down = now;
    if (mode.mode === 'cut') for (const c of [...this.connections]) c.reset();
    if (mode.mode === 'blackhole') for (const c of this.connections) c.dead = true;
    // Wake every pump: queued bytes are handled under the new mode.
    for (const c of this.connections) c.kick();
  }

  stats(): ProxyStats {
    return structuredClone({ ...this.counters, connections: { ...this.counters.connections, open: this.connections.size } });
  }

  /**
   * Calls `fn` synchronously with every chunk as it arrives, before it is forwarded (or not):
   * a chaos case uses it to act at an exact point of a protocol exchange — e.g. kill a process
   * the moment it sends a given command — since nothing is forwarded until `fn` returns.
   * Returns the function that removes the tap. A tap that throws is removed.
   */
  tap(fn: (event: TappedChunk) => void): () => void {
    this.taps.add(fn);
    return () => this.taps.delete(fn);
  }

  /** Closes the listener and resets every connection. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const c of [...this.connections]) c.reset(false);
    for (const socket of [...this.sockets]) if (!socket.destroyed) socket.resetAndDestroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  // --- used by Connection ---------------------------------------------------------------

  /** @internal */
  count(direction: Direction, what: keyof DirectionCounters, bytes: number): void {
    this.counters[direction][what] += bytes;
  }

  /** @internal */
  notifyTaps(event: TappedChunk): void {
    for (const fn of [...this.taps]) {
      try {
        fn(event);
      } catch {
        this.taps.delete(fn);
      }
    }
  }

  /** @internal A connection the proxy reset. */
  countReset(): void {
    this.counters.connections.reset++;
  }

  /** @internal */
  forget(c: Connection): void {
    this.connections.delete(c);
  }

  /** @internal Takes up to `wanted` bytes of the stall budget; returns how many may pass. */
  takeStallBudget(wanted: number): number {
    const n = Math.min(wanted, this.stallBudget);
    this.stallBudget -= n;
    return n;
  }

  /** @internal stall-after: nothing more may pass. */
  stallSpent(): boolean {
    return this.stallBudget <= 0;
  }

  /** @internal How many bytes a direction of a connection may queue before its source is paused. */
  highWater(): number {
    const m = this.current;
    return m.mode === 'slow' ? Math.min(HIGH_WATER, Math.max(SLOW_HIGH_WATER_MIN, m.bytesPerSecond)) : HIGH_WATER;
  }

  /** @internal Slow mode: reserves the link for `bytes` and returns how long to wait before they are "through". */
  reserveLink(direction: Direction, bytes: number, bytesPerSecond: number): number {
    const now = Date.now();
    const start = Math.max(now, this.linkFree[direction]);
    this.linkFree[direction] = start + (bytes / bytesPerSecond) * 1000;
    return this.linkFree[direction] - now;
  }

  private hold(socket: Socket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
  }

  private accept(client: Socket): void {
    this.counters.connections.accepted++;
    client.on('error', () => undefined);
    this.hold(client);
    if (this.closed || this.current.mode === 'cut') {
      this.counters.connections.reset++;
      client.resetAndDestroy();
      return;
    }
    const upstream = connect({ host: this.upstreamHost, port: this.upstreamPort, allowHalfOpen: true });
    this.hold(upstream);
    const c = new Connection(this, this.counters.connections.accepted, client, upstream);
    if (this.current.mode === 'blackhole') c.dead = true;
    this.connections.add(c);
  }
}

/** One proxied connection: two one-way links, and what happens when a side goes away. */
class Connection {
  private readonly up: Link;
  private readonly down: Link;
  private gone = false;
  /** Lived through a blackhole: nothing on it passes again, either way (see the file's comment). */
  dead = false;

  constructor(
    private readonly proxy: FaultProxy,
    readonly id: number,
    readonly client: Socket,
    readonly upstream: Socket,
  ) {
    this.up = new Link(proxy, this, 'up', client, upstream);
    this.down = new Link(proxy, this, 'down', upstream, client);
    // Errors are handled as the 'close' (hadError) that follows them.
    client.on('error', () => undefined);
    upstream.on('error', () => undefined);
    client.on('close', (hadError) => this.sideClosed(upstream, this.up, hadError));
    upstream.on('close', (hadError) => this.sideClosed(client, this.down, hadError));
  }

  /**
   * One side is gone. Over a link that swallows (broken, or a mode that would swallow what it
   * carries) the other side never hears of it — a FIN or RST lost in a blackhole is lost too — and
   * stays open until it gives up by itself. Otherwise: an error resets the other side, a close
   * before both directions finished destroys it, a clean finish closes it once its last bytes are out.
   */
  private sideClosed(other: Socket, toOther: Link, hadError: boolean): void {
    if (this.gone) return;
    if (other.destroyed) {
      this.gone = true;
      return this.forget();
    }
    if (toOther.swallowing()) {
      toOther.markBroken();
      return;
    }
    if (hadError) return this.reset(false);
    if (!(this.up.finished && this.down.finished)) return this.destroy();
    other.destroySoon();
    this.gone = true;
    this.forget();
  }

  get proxyMode(): FaultMode {
    return this.proxy.mode;
  }

  kick(): void {
    this.up.pump();
    this.down.pump();
  }

  /** RST both sides (cut mode, or an error on one side). */
  reset(countIt = true): void {
    if (this.gone) return;
    this.gone = true;
    if (countIt) this.proxy.countReset();
    for (const s of [this.client, this.upstream]) if (!s.destroyed) s.resetAndDestroy();
    this.forget();
  }

  private destroy(): void {
    if (this.gone) return;
    this.gone = true;
    this.client.destroy();
    this.upstream.destroy();
    this.forget();
  }

  get isGone(): boolean {
    return this.gone;
  }

  private forget(): void {
    this.up.drop();
    this.down.drop();
    this.proxy.forget(this);
  }
}

/** One direction of one connection: a queue of bytes read from `from`, handed to `to` under the proxy's mode. */
class Link {
  private readonly queue: Buffer[] = [];
  private queued = 0;
  private ended = false;
  private pumping = false;
  /** Lost bytes: this direction's stream has a hole and never forwards again. */
  private broken = false;

  /** Would this direction swallow what it carries now (broken, blackhole, a spent stall budget)? */
  swallowing(): boolean {
    const mode = this.connection.proxyMode;
    return this.broken || this.connection.dead || mode.mode === 'blackhole' || (mode.mode === 'stall-after' && (mode.direction ?? 'up') === this.direction && this.proxy.stallSpent());
  }

  markBroken(): void {
    this.broken = true;
  }
  /** Source ended and the end was passed on (or swallowed). */
  finished = false;

  constructor(
    private readonly proxy: FaultProxy,
    private readonly connection: Connection,
    private readonly direction: Direction,
    private readonly from: Socket,
    private readonly to: Socket,
  ) {
    from.on('data', (chunk: Buffer) => {
      proxy.count(direction, 'received', chunk.length);
      proxy.notifyTaps({ direction, connection: connection.id, chunk });
      this.queue.push(chunk);
      this.queued += chunk.length;
      if (this.queued > proxy.highWater()) from.pause();
      this.pump();
    });
    from.on('end', () => {
      this.ended = true;
      this.pump();
    });
  }

  /** The connection is gone: whatever is queued is lost (not counted as swallowed: the sockets are dead). */
  drop(): void {
    this.queue.length = 0;
    this.queued = 0;
  }

  pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    this.run()
      .catch(() => this.connection.reset(false))
      .finally(() => {
        this.pumping = false;
        // Data may have arrived while the last await was pending.
        if (!this.connection.isGone && (this.queue.length > 0 || (this.ended && !this.finished))) setImmediate(() => this.pump());
      });
  }

  private async run(): Promise<void> {
    while (this.queue.length > 0 && !this.connection.isGone) {
      const head = this.queue[0] as Buffer;
      const mode = this.connection.proxyMode;
      if (this.broken || this.connection.dead || mode.mode === 'blackhole') {
        this.broken = true;
        this.swallow(head.length);
        continue;
      }
      if (mode.mode === 'cut') {
        this.connection.reset();
        return;
      }
      if (mode.mode === 'stall-after' && (mode.direction ?? 'up') === this.direction) {
        const allowed = this.proxy.takeStallBudget(head.length);
        if (allowed > 0) await this.write(head.subarray(0, allowed));
        if (this.connection.isGone) return;
        if (allowed < head.length) {
          this.broken = true;
          this.proxy.count(this.direction, 'swallowed', head.length - allowed);
        }
        this.shift(head.length);
        continue;
      }
      if (mode.mode === 'slow') {
        const slice = Math.max(1, Math.floor(mode.bytesPerSecond / SLICES_PER_SECOND));
        const piece = head.subarray(0, Math.min(head.length, slice));
        const waitMs = this.proxy.reserveLink(this.direction, piece.length, mode.bytesPerSecond);
        if (waitMs > 0) await new Promise((resolve) => setTimeout(resolve, waitMs));
        // The mode may have changed while the piece was "on the wire": a swallowing mode takes it.
        const now = this.connection.proxyMode;
        if (now.mode !== 'slow' && now.mode !== 'pass') continue;
        if (this.connection.isGone) return;
        await this.write(piece);
        if (this.connection.isGone) return;
        this.shiftPartial(piece.length);
        continue;
      }
      // pass, or stall-after in the other direction
      await this.write(head);
      if (this.connection.isGone) return;
      this.shift(head.length);
    }
    if (this.ended && !this.finished && this.queue.length === 0 && !this.connection.isGone) {
      this.finished = true;
      // A FIN over a swallowing direction is swallowed too (and a stream with a hole is not ended cleanly).
      if (this.swallowing()) this.markBroken();
      else if (!this.to.destroyed) this.to.end();
    }
  }

  private swallow(bytes: number): void {
    this.proxy.count(this.direction, 'swallowed', bytes);
    this.shift(bytes);
  }

  private shift(bytes: number): void {
    this.queue.shift();
    this.queued -= bytes;
    if (this.queued <= this.proxy.highWater() / 2 && this.from.isPaused()) this.from.resume();
  }

  private shiftPartial(bytes: number): void {
    const head = this.queue[0] as Buffer;
    if (bytes >= head.length) return this.shift(head.length);
    this.queue[0] = head.subarray(bytes);
    this.queued -= bytes;
    if (this.queued <= this.proxy.highWater() / 2 && this.from.isPaused()) this.from.resume();
  }

  /** Writes with backpressure; never waits on a socket that is gone. */
  private async write(bytes: Buffer): Promise<void> {
    if (this.to.destroyed || this.to.writableEnded) {
      // The peer is gone (a side closed over a swallowing link stays open): these bytes go nowhere.
      this.proxy.count(this.direction, 'swallowed', bytes.length);
      return;
    }
    this.proxy.count(this.direction, 'forwarded', bytes.length);
    if (this.to.write(bytes)) return;
    await new Promise<void>((resolve) => {
      const done = () => {
        this.to.off('drain', done);
        this.to.off('close', done);
        resolve();
      };
      this.to.on('drain', done);
      this.to.on('close', done);
    });
  }
}
