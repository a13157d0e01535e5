import { createServer, connect, type AddressInfo, type Server } from 'node:net';
import { Transform } from 'node:stream';
import type { CleanupScope } from './fixtures.js';

export interface TcpProxy {
  url: string;
  /** From now on, bytes in both directions are swallowed while connections stay open: a network that stops answering. */
  blackhole(): void;
}

/**
 * A TCP proxy in front of a real server (S3, Redis). It forwards bytes
 * untouched — SigV4 is still verified by the server behind it — optionally at
 * a capped rate (a slow link), and can be made to swallow everything (a
 * partition where packets vanish and no connection is refused).
 */
export async function startTcpProxy(t: CleanupScope, upstream: string, options: { bytesPerSecond?: number } = {}): Promise<TcpProxy> {
  const target = new URL(upstream);
  const sockets = new Set<{ destroy(): void }>();
  let swallowing = false;
  const pass = () =>
    new Transform({
      transform(chunk: Buffer, _encoding, done) {
        if (swallowing) return done();
        if (!options.bytesPerSecond) return done(null, chunk);
        setTimeout(() => done(null, swallowing ? undefined : chunk), Math.ceil((chunk.length / options.bytesPerSecond) * 1000));
      },
    });
  const server: Server = createServer((client) => {
    const upstreamSocket = connect(Number(target.port), target.hostname);
    sockets.add(client);
    sockets.add(upstreamSocket);
    client.pipe(pass()).pipe(upstreamSocket);
    upstreamSocket.pipe(pass()).pipe(client);
    const close = () => {
      client.destroy();
      upstreamSocket.destroy();
    };
    client.on('error', close);
    upstreamSocket.on('error', close);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(
    () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  );
  server.unref();
  return { url: `${target.protocol}//127.0.0.1:${(server.address() as AddressInfo).port}`, blackhole: () => (swallowing = true) };
}

/** A slow link to an S3 endpoint, so a backup lasts long enough for a scheduled tick to fire while it runs. */
export async function startSlowProxy(t: CleanupScope, upstream: string, bytesPerSecond: number): Promise<string> {
  return (await startTcpProxy(t, upstream, { bytesPerSecond })).url;
}
