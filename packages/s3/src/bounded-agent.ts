import { AsyncLocalStorage } from 'node:async_hooks';
import * as http from 'node:http';
import * as https from 'node:https';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { TLSSocket } from 'node:tls';
import { S3TimeoutError, type S3Timeouts } from './timeouts.js';

/**
 * The HTTP requests of one S3 call (or of one download stream), so that the
 * call's deadline, or abortInFlight, can end exactly them. A request joins the
 * scope it is made in (AsyncLocalStorage: minio-js issues every request from
 * the call's own async chain); once a scope has ended, its requests are
 * destroyed and any new one it tries to make is refused, so nothing of a
 * timed-out call keeps running in the background.
 */
export class CallScope {
  private readonly requests = new Set<http.ClientRequest>();
  private readonly listeners = new Set<(err: Error) => void>();
  /** Why the scope ended before its work did (deadline, abortInFlight, a failure): set once. */
  ended: Error | undefined;
  /** A socket bound (connect, idle) hit by one of its requests: what the call failed of, whatever error minio passed on. */
  boundHit: S3TimeoutError | undefined;

  constructor(readonly operation: string) {}

  /** Calls `listener` when the scope ends (at once if it has). Returns a function that removes it. */
  onEnd(listener: (err: Error) => void): () => void {
    if (this.ended) {
      listener(this.ended);
      return () => undefined;
    }
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Ends the scope: listeners first (they say why), then every request still open is destroyed with `err`. */
  end(err: Error): void {
    if (this.ended) return;
    this.ended = err;
    for (const listener of [...this.listeners]) listener(err);
    this.listeners.clear();
    for (const req of [...this.requests]) req.destroy(err);
    this.requests.clear();
  }

  /** @internal Called by the agent for each request made inside the scope. Throws when the scope has ended. */
  adopt(req: http.ClientRequest): void {
    if (this.ended) throw this.ended;
    this.requests.add(req);
    req.once('socket', (socket: Duplex) => socketScopes.set(socket, this));
    req.once('close', () => this.requests.delete(req));
  }
}

const currentScope = new AsyncLocalStorage<CallScope>();
/** The scope whose request is using each socket now (sockets are reused across calls by keep-alive). */
const socketScopes = new WeakMap<Duplex, CallScope>();

/** Runs `work` with `scope` as the scope of every request it makes. */
export function runInScope<T>(scope: CallScope, work: () => Promise<T>): Promise<T> {
  return currentScope.run(scope, async () => work());
}

/** Node's Agent#addRequest: called for every request, in the caller's async context (not in @types/node). */
const nodeAddRequest = (http.Agent.prototype as unknown as { addRequest: (this: http.Agent, req: http.ClientRequest, options: unknown) => void }).addRequest;

/** The socket-level bounds of one agent, shared by its http and https flavours. */
class SocketBounds {
  /** Connections this agent opened (keep-alive reuses them: a test can tell). */
  opened = 0;

  constructor(
    private readonly agent: http.Agent,
    readonly timeouts: Pick<S3Timeouts, 'connectMs' | 'idleMs'>,
  ) {}

  /**
   * A new connection: it must be connected (and, for TLS, through the
   * handshake) within connectMs; from then on, a socket in use on which no
   * byte moved for idleMs is destroyed. Node's socket timer already counts a
   * large write still draining to the kernel as movement.
   */
  arm(socket: Socket): void {
    this.opened += 1;
    socket.setTimeout(0);
    const { connectMs, idleMs } = this.timeouts;
    const timer = setTimeout(() => this.hit(socket, new S3TimeoutError('connect', connectMs)), connectMs);
    socket.once(socket instanceof TLSSocket ? 'secureConnect' : 'connect', () => {
      clearTimeout(timer);
      socket.setTimeout(idleMs);
    });
    socket.once('close', () => clearTimeout(timer));
    socket.on('timeout', () => {
      // A free keep-alive socket timing out is closed by Node's agent (the agent's `timeout` option), quietly.
      if (!this.isFree(socket)) this.hit(socket, new S3TimeoutError('idle', idleMs));
    });
  }

  /** A socket back in use after keep-alive: the full idle bound again (the free-socket timeout may be a server's shorter hint). */
  reused(socket: Socket): void {
    socket.setTimeout(this.timeouts.idleMs);
  }

  /** Destroys every socket of the agent: in use with `reason` (their requests fail with it), free ones quietly. */
  destroyAll(reason: Error): void {
    for (const list of Object.values(this.agent.sockets)) for (const socket of [...(list ?? [])]) socket.destroy(reason);
    for (const list of Object.values(this.agent.freeSockets)) for (const socket of [...(list ?? [])]) socket.destroy();
  }

  private hit(socket: Socket, err: S3TimeoutError): void {
    const scope = socketScopes.get(socket);
    if (scope && !scope.boundHit) scope.boundHit = err;
    socket.destroy(err);
  }

  private isFree(socket: Socket): boolean {
    return Object.values(this.agent.freeSockets).some((list) => list?.includes(socket));
  }
}

/** Options for net/tls connect without `timeout`: the agent's timeout is the free-socket one, our bounds are set by arm(). */
function withoutTimeout<T extends { timeout?: number | undefined }>(options: T): T {
  const { timeout: _ignored, ...rest } = options;
  return rest as T;
}

function adopt(req: http.ClientRequest): void {
  currentScope.getStore()?.adopt(req);
}

export interface BoundedAgent extends http.Agent {
  readonly timeouts: Pick<S3Timeouts, 'connectMs' | 'idleMs'>;
  /** Connections opened so far. */
  readonly connectionsOpened: number;
  /** Destroys every socket: those in use with `reason`, free ones quietly. New requests open new connections. */
  destroyAll(reason: Error): void;
}

/** A keep-alive http.Agent whose connections are bounded (connect, idle) and whose requests join the current CallScope. */
export class BoundedHttpAgent extends http.Agent implements BoundedAgent {
  private readonly bounds: SocketBounds;

  constructor(readonly timeouts: Pick<S3Timeouts, 'connectMs' | 'idleMs'>) {
    super({ keepAlive: true, timeout: timeouts.idleMs });
    this.bounds = new SocketBounds(this, timeouts);
  }

  get connectionsOpened(): number {
    return this.bounds.opened;
  }

  override createConnection(options: http.ClientRequestArgs, callback?: (err: Error | null, stream: Duplex) => void): Duplex | null | undefined {
    const socket = this.connect(withoutTimeout(options), callback);
    if (socket) this.bounds.arm(socket as Socket);
    return socket;
  }

  /** Opens the TCP connection (net.createConnection); a test may replace it with one that never connects. */
  protected connect(options: http.ClientRequestArgs, callback?: (err: Error | null, stream: Duplex) => void): Duplex | null | undefined {
    return super.createConnection(options, callback);
  }

  override reuseSocket(socket: Duplex, request: http.ClientRequest): void {
    super.reuseSocket(socket, request);
    this.bounds.reused(socket as Socket);
  }

  addRequest(req: http.ClientRequest, options: unknown): void {
    adopt(req);
    nodeAddRequest.call(this, req, options);
  }

  destroyAll(reason: Error): void {
    this.bounds.destroyAll(reason);
  }
}

/**
 * The https flavour of BoundedHttpAgent: the connect bound covers the TLS handshake.
 * Its few lines mirror BoundedHttpAgent's on purpose: http.Agent and https.Agent are two
 * bases, and a mixin over both costs more clarity than it saves; all behaviour is in SocketBounds.
 */
export class BoundedHttpsAgent extends https.Agent implements BoundedAgent {
  private readonly bounds: SocketBounds;

  constructor(readonly timeouts: Pick<S3Timeouts, 'connectMs' | 'idleMs'>) {
    super({ keepAlive: true, timeout: timeouts.idleMs });
    this.bounds = new SocketBounds(this, timeouts);
  }

  get connectionsOpened(): number {
    return this.bounds.opened;
  }

  override createConnection(options: https.RequestOptions, callback?: (err: Error | null, stream: Duplex) => void): Duplex | null | undefined {
    const socket = super.createConnection(withoutTimeout(options), callback);
    if (socket) this.bounds.arm(socket as Socket);
    return socket;
  }

  override reuseSocket(socket: Duplex, request: http.ClientRequest): void {
    super.reuseSocket(socket, request);
    this.bounds.reused(socket as Socket);
  }

  addRequest(req: http.ClientRequest, options: unknown): void {
    adopt(req);
    nodeAddRequest.call(this, req, options);
  }

  destroyAll(reason: Error): void {
    this.bounds.destroyAll(reason);
  }
}

/** The agent for an endpoint: https for https: URLs, http otherwise. */
export function createBoundedAgent(endpoint: string, timeouts: Pick<S3Timeouts, 'connectMs' | 'idleMs'>): BoundedHttpAgent | BoundedHttpsAgent {
  return new URL(endpoint).protocol === 'https:' ? new BoundedHttpsAgent(timeouts) : new BoundedHttpAgent(timeouts);
}
