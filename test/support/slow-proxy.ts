import { createServer, connect, type AddressInfo, type Server } from 'node:net';
import { Transform } from 'node:stream';
import type { CleanupScope } from './fixtures.js';

/**
 * A TCP proxy that passes bytes to a real S3 endpoint at a capped rate: a slow
 * network link, so a backup lasts long enough for a scheduled tick to fire
 * while it runs. It forwards bytes untouched, so SigV4 is still verified by
 * the server behind it.
 */
export async function startSlowProxy(t: CleanupScope, upstream: string, bytesPerSecond: number): Promise<string> {
  const target = new URL(upstream);
  const sockets = new Set<{ destroy(): void }>();
  const server: Server = createServer((client) => {
    const server = connect(Number(target.port), target.hostname);
    sockets.add(client);
    sockets.add(server);
    const throttle = () =>
      new Transform({
        transform(chunk: Buffer, _encoding, done) {
          setTimeout(() => done(null, chunk), Math.ceil((chunk.length / bytesPerSecond) * 1000));
        },
      });
    client.pipe(throttle()).pipe(server);
    server.pipe(client);
    const close = () => {
      client.destroy();
      server.destroy();
    };
    client.on('error', close);
    server.on('error', close);
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
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}
