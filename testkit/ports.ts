import { createServer } from 'node:net';

/** Ceph picks its daemons' own ports in this range (ms bind port min/max): a port we hand out stays out of it. */
const CEPH_PORT_RANGE = { min: 6800, max: 7300 };

/**
 * A loopback port free right now (the kernel's pick), not one already in
 * `taken` (which it joins) and never in Ceph's own range, so the servers a
 * test starts side by side (RGW daemons, Redis, sentinels, Prometheus) never
 * pick the same one. A port taken by someone else between the pick and the
 * bind fails that server's start, which says so.
 */
export async function freeLoopbackPort(taken: Set<number> = new Set()): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const server = createServer();
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        const address = server.address();
        const p = typeof address === 'object' && address ? address.port : 0;
        server.close(() => resolve(p));
      });
    });
    if (port > 0 && !taken.has(port) && (port < CEPH_PORT_RANGE.min || port > CEPH_PORT_RANGE.max)) {
      taken.add(port);
      return port;
    }
  }
}
